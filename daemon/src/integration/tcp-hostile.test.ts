/** Raw apps that misuse their TCP segment: ferryd resets their sessions, frees memory, keeps calm. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ring } from '@ferry/sdk/internal';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { closeAll, cpuSecondsOver, RawApp } from '../testing/hostile.js';
import { collect, netConnect, type Received } from '../testing/net-peer.js';

let d: DaemonHandle;

before(async () => {
  d = await startDaemon();
});

after(async () => {
  await d?.stop();
  closeAll();
});

/** A listener of `app` and one kernel connection to it, accepted (segment-add, accepted). */
async function acceptedTcp(app: RawApp) {
  app.send({ t: 'listen', id: 2, uri: 'tcp://127.0.0.1:0' });
  const lr = await app.next();
  assert.ok(lr.t === 'listen-reply' && lr.st === 0);
  const sock = await netConnect(Number(lr.uri.split(':').pop()));
  const got = collect(sock);
  const add = await app.next();
  assert.ok(add.t === 'segment-add');
  const acc = await app.next();
  assert.ok(acc.t === 'accepted' && acc.transport === 'tcp');
  return { sock, got, add, acc };
}

function within(p: Promise<Received>, ms: number): Promise<string> {
  return Promise.race([
    p.then((r) => r.how),
    new Promise<string>((resolve) => setTimeout(() => resolve(`nothing within ${ms} ms`), ms).unref()),
  ]);
}

test('segment-released for a segment ferryd never deleted: TCP sessions reset, segment freed', async () => {
  const base = await d.stats();
  const app = await RawApp.attach(d.socket);
  const { got, acc } = await acceptedTcp(app);
  assert.equal(Number((await d.stats())['daemonSegments']), 1);
  app.send({ t: 'segment-released', id: 3, segment: acc.fifos?.segment ?? 0 });
  assert.ok((await app.next()).t === 'status');
  assert.equal(await within(got, 5000), 'ECONNRESET');
  await eventually(
    async () => {
      const s = await d.stats();
      return s['sessions'] === base['sessions'] && s['segments'] === 0 && s['daemonSegments'] === 0;
    },
    5000,
    'the session and both sides of the segment to go',
  );
});

test('an app that corrupts the event queue ferryd drains: its sessions reset, ferryd does not spin', async () => {
  const app = await RawApp.attach(d.socket);
  const { got, add } = await acceptedTcp(app);
  // RawApp mapped the segment on the way; it releases it (and the doorbell) on close.
  const mapped = app.segments.get(add.segment);
  assert.ok(mapped);
  const { segment: seg, peerDoorbellFd: bellFd } = mapped;
  // The queue we post to is the one ferryd drains: move its tail beyond head + capacity.
  const ctl = new Uint32Array(seg.buffer, add.txQueueOffset, 48);
  const TAIL = 128 / 4;
  Atomics.store(ctl, TAIL, (Atomics.load(ctl, TAIL) + add.queueCapacity * 4) >>> 0);
  ring(bellFd);
  assert.equal(await within(got, 5000), 'ECONNRESET');
  const pid = d.proc.pid ?? 0;
  const used = await cpuSecondsOver(pid, 1000);
  assert.ok(used < 0.3, `ferryd used ${used.toFixed(2)} s of CPU in 1 s after the corruption`);
  app.close();
});
