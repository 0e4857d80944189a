/**
 * Limits fail with clear codes instead of collapse, and an app that stops reading is counted and
 * disconnected while ferryd and the other apps keep working. Real ferryd, real app processes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { close as closeFd, connectUnix, unixSocket } from '@ferry/sdk/internal';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { RawApp } from '../testing/hostile.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-limits-'));
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  for (const r of running.reverse()) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
async function daemon(doc: unknown): Promise<DaemonHandle> {
  const file = join(dir, `ferryd-${++files}.json`);
  writeFileSync(file, JSON.stringify(doc));
  const d = await startDaemon(['--config', file]);
  running.push(d);
  return d;
}

async function app(d: DaemonHandle): Promise<AppHandle> {
  const a = await startApp(d.socket);
  running.push({
    stop: async () => {
      a.proc.kill('SIGCONT');
      await a.kill();
    },
  });
  return a;
}

async function listen(a: AppHandle, behavior = 'echo'): Promise<string> {
  return String((await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior }))['uri']);
}

async function echoes(a: AppHandle, uri: string, tag: string): Promise<void> {
  await a.ok({ op: 'connect', tag, uri });
  await a.ok({ op: 'end', tag, data: 'ping' });
  const end = await a.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['rxBytes'], 4);
}

const limitHits = async (d: DaemonHandle) =>
  ((await d.stats())['policy'] as { limitHits: Record<string, number> }).limitHits;

describe('limits', () => {
  it('maxApps and maxSessionsPerApp refuse with ERR_FERRY_LIMIT naming the limit', async () => {
    const d = await daemon({ maxApps: 2, maxSessionsPerApp: 3 });
    const server = await app(d);
    const uri = await listen(server, 'hold');
    const client = await app(d);
    for (let i = 0; i < 3; i++) await client.ok({ op: 'connect', tag: `s${i}`, uri });
    const r = await client.call({ op: 'connect', tag: 's3', uri });
    assert.equal(r['code'], 'ERR_FERRY_LIMIT');
    assert.match(String(r['message']), /maxSessionsPerApp \(3\)/);
    // The server's app is at its limit too: a new client is refused by it, not by its own limit.
    const third = await app(d);
    const r3 = await third.call({ op: 'connect', tag: 'x', uri });
    assert.equal(r3['code'], 'ERR_FERRY_LIMIT');
    assert.match(String(r3['message']), /maxApps \(2\)/);
    assert.deepEqual(await limitHits(d), {
      maxApps: 1,
      maxSessionsPerApp: 1,
      maxSegmentBytesPerApp: 0,
      maxSegmentBytesTotal: 0,
    });
    // Closing sessions makes room again (a reset: the 'hold' server never reads, so after an
    // orderly close its own end would stay open, as a paused net.Socket's does).
    await client.ok({ op: 'reset', tag: 's0' });
    await eventually(
      async () => (await client.call({ op: 'connect', tag: 's4', uri }))['ok'] === true,
      10_000,
      'room',
    );
  });

  it('at maxSessionsPerApp, close notices already sent but not yet rung for count as closed', async () => {
    // The SDK sends an orderly close without ringing ferryd (the next request's ring carries it).
    // A connect that finds an app at its limit reads the notices its sessions' apps already sent.
    const d = await daemon({ maxSessionsPerApp: 1 });
    const server = await RawApp.attach(d.socket, 'limit-server');
    const client = await RawApp.attach(d.socket, 'limit-client');
    try {
      const l = await server.request({ t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0' });
      assert.ok(l.t === 'listen-reply' && l.st === 0, JSON.stringify(l));
      for (let round = 0; round < 3; round++) {
        const r = await client.request({ t: 'connect', id: 0, uri: l.uri, rxFifoSize: 0, txFifoSize: 0 });
        assert.ok(r.t === 'connect-reply' && r.st === 0, `round ${round}: ${JSON.stringify(r)}`);
        const acc = await server.next((m) => m.t === 'accepted');
        assert.ok(acc.t === 'accepted');
        // Both ends let go, and neither rings: the server never sends anything else.
        client.send({ t: 'close', id: 0, session: r.session }, [], false);
        server.send({ t: 'close', id: 0, session: acc.session }, [], false);
      }
      assert.deepEqual((await limitHits(d))['maxSessionsPerApp'], 0);
    } finally {
      client.close();
      server.close();
    }
  });

  it('connections that never say HELLO count against maxApps and are closed after 5 s', async () => {
    const d = await daemon({ maxApps: 2 });
    const silent = [0, 1, 2].map(() => {
      const fd = unixSocket('seqpacket', { nonblock: true });
      connectUnix(fd, d.socket);
      return fd;
    });
    try {
      await eventually(
        async () =>
          ((await d.stats())['policy'] as { limitHits: Record<string, number> }).limitHits['maxApps'] === 1,
        10_000,
        'the third silent connection refused',
      );
      await eventually(
        async () => ((await d.stats())['ctrl'] as Record<string, number>)['helloTimeouts'] === 2,
        15_000,
        'silent connections closed',
      );
      const a = await app(d);
      await listen(a);
    } finally {
      for (const fd of silent) closeFd(fd);
    }
  });

  it('maxSegmentBytesPerApp and maxSegmentBytesTotal bound shared memory', async () => {
    const MiB = 1024 * 1024;
    const d = await daemon({
      segmentSizeBytes: 4 * MiB,
      maxFifoSizeBytes: MiB,
      maxSegmentBytesPerApp: 4 * MiB,
      maxSegmentBytesTotal: 8 * MiB,
    });
    const server = await app(d);
    const uri = await listen(server, 'hold');
    const client = await app(d);
    // One 4 MiB segment holds one pair of 1 MiB fifos (plus headers); the next needs a second one.
    await client.ok({ op: 'connect', tag: 'm0', uri, fifoSize: MiB });
    const r = await client.call({ op: 'connect', tag: 'm1', uri, fifoSize: MiB });
    assert.equal(r['code'], 'ERR_FERRY_LIMIT', JSON.stringify(r));
    assert.match(String(r['message']), /maxSegmentBytesPerApp \(4194304\)/);
    // Small fifos still fit in the segment the pair has.
    await client.ok({ op: 'connect', tag: 'm2', uri, fifoSize: 4096 });
    // A second pair of apps gets its own segment: 8 MiB in all, the total limit.
    const other = await app(d);
    const uri2 = await listen(other, 'hold');
    const c2 = await app(d);
    await c2.ok({ op: 'connect', tag: 'n0', uri: uri2, fifoSize: MiB });
    const third = await app(d);
    const r3 = await third.call({ op: 'connect', tag: 'o0', uri: uri2, fifoSize: 4096 });
    assert.equal(r3['code'], 'ERR_FERRY_LIMIT', JSON.stringify(r3));
    assert.match(String(r3['message']), /maxSegmentBytes(Total|PerApp)/);
    const hits = await limitHits(d);
    assert.equal(hits['maxSegmentBytesPerApp'], hits['maxSegmentBytesTotal'] === 1 ? 1 : 2);
    assert.equal((await d.stats())['segmentBytes'], 8 * MiB);
  });
});

describe('stalled apps', () => {
  it('an app that stops reading is counted, then disconnected; ferryd and the others keep working', async () => {
    const d = await daemon({ stallTimeoutMs: 1500, maxCtrlBacklog: 4000 });
    const stuck = await app(d);
    const uri = await listen(stuck, 'hold');
    const client = await app(d);
    await client.ok({ op: 'connect', tag: 'before', uri, fifoSize: 4096 });
    // Stopped: it reads nothing, so every session announced to it queues in ferryd.
    stuck.proc.kill('SIGSTOP');
    const made = await floodUntilGone(d, client, uri);
    const policy = (await d.stats())['policy'] as Record<string, number>;
    // Counted (at least the stopped app; a peer busy with a burst of resets may be seen too).
    assert.ok(policy['stalledApps'] !== undefined && policy['stalledApps'] >= 1);
    const apps = (await d.show('apps')) as Record<string, unknown>[];
    assert.ok(!apps.some((a) => a['pid'] === stuck.proc.pid), 'the stalled app is gone');
    assert.match(d.output(), /is not reading: \d+ control messages waiting/);
    assert.match(d.output(), /disconnected: .* \(stallTimeoutMs 1500\)/);
    // Its peer's sessions were reset, like after a death.
    await client.waitFor((e) => e.event === 'error' && e.tag === 'before' && e['code'] === 'ECONNRESET');
    // ferryd serves everyone else.
    const fresh = await app(d);
    const uri2 = await listen(fresh);
    await echoes(client, uri2, 'after');
    assert.ok(made > 0);
  });

  it('an app whose event queue fills and does not drain is disconnected', async () => {
    // 16 entries per event queue; a stopped app's queue overflows after 16 notices.
    const d = await daemon({ queueCapacity: 16, stallTimeoutMs: 1500, maxCtrlBacklog: 4000 });
    const stuck = await app(d);
    const uri = await listen(stuck, 'sink');
    const client = await app(d);
    const n = 12;
    for (let i = 0; i < n; i++) await client.ok({ op: 'connect', tag: `q${i}`, uri, fifoSize: 4096 });
    await eventually(
      async () => stuck.events.filter((e) => e.event === 'accepted').length === n,
      10_000,
      'accepted',
    );
    stuck.proc.kill('SIGSTOP');
    // Data then FIN on each session: two notices each into the stopped app's queue, no control
    // message (FIN travels in the fifo).
    for (let i = 0; i < n; i++) await client.ok({ op: 'end', tag: `q${i}`, data: 'x' });
    await eventually(
      async () => ((await d.stats())['policy'] as Record<string, number>)['stalledDisconnected'] === 1,
      15_000,
      'the app with a full event queue disconnected',
    );
    assert.match(d.output(), /event queue of segment \d+ full and not drained/);
    const apps = (await d.show('apps')) as Record<string, unknown>[];
    assert.ok(!apps.some((a) => a['pid'] === stuck.proc.pid));
    await client.waitFor((e) => e.event === 'error' && e.tag === 'q0' && e['code'] === 'ECONNRESET');
  });

  it('an app that reads is not disconnected by a burst of one notice per session', async () => {
    // Its peer dies holding 4600 sessions with it: ferryd tells it of each at once, far more than
    // a socket buffer (and a control channel's default queue of 4096) holds. The app is busy
    // meanwhile (stopped a moment), so the whole burst queues in ferryd.
    const d = await daemon({ maxCtrlBacklog: 100_000 });
    const server = await app(d);
    const uri = await listen(server, 'hold');
    const client = await app(d);
    const n = 4600;
    assert.equal((await client.ok({ op: 'connect-many', uri, count: n, fifoSize: 4096 }, 60_000))['open'], n);
    const idOf = async () =>
      ((await d.show('apps')) as Record<string, unknown>[]).find((a) => a['pid'] === client.proc.pid)?.['id'];
    const clientId = await idOf();
    client.proc.kill('SIGSTOP');
    await server.kill();
    await eventually(
      async () =>
        !((await d.show('apps')) as Record<string, unknown>[]).some((a) => a['pid'] === server.proc.pid),
      10_000,
      'ferryd saw the server die',
    );
    client.proc.kill('SIGCONT');
    await eventually(
      async () =>
        ((await client.ok({ op: 'many-stat' }))['errors'] as Record<string, number>)['ECONNRESET'] === n,
      30_000,
      'every session reset',
    );
    // Still the same attachment (an app that lost ferryd would reattach under a new id).
    assert.equal(await idOf(), clientId, `the client stayed attached: ${d.output()}`);
    assert.equal(((await d.stats())['policy'] as Record<string, number>)['stalledDisconnected'], 0);
    const fresh = await app(d);
    await echoes(client, await listen(fresh), 'after-burst');
  });

  it('more than maxCtrlBacklog queued messages disconnects at once', async () => {
    const d = await daemon({ stallTimeoutMs: 0, maxCtrlBacklog: 16 });
    const stuck = await app(d);
    const uri = await listen(stuck, 'hold');
    const client = await app(d);
    stuck.proc.kill('SIGSTOP');
    const made = await floodUntilGone(d, client, uri);
    const policy = (await d.stats())['policy'] as Record<string, number>;
    assert.equal(policy['stalledDisconnected'], 1, `after ${made} connects: ${d.output()}`);
    assert.match(d.output(), /control messages queued \(maxCtrlBacklog 16\)/);
  });
});

/**
 * Connects to the stopped app's listener until ferryd disconnects it (each connect queues an
 * `accepted` for it), bounded in count and time; returns the connects made.
 */
async function floodUntilGone(d: DaemonHandle, client: AppHandle, uri: string): Promise<number> {
  const disconnected = async () =>
    ((await d.stats())['policy'] as Record<string, number>)['stalledDisconnected'] === 1;
  let made = 0;
  let failed = '';
  const end = Date.now() + 20_000;
  while (made < 3000 && Date.now() < end) {
    const r = await client.call({ op: 'connect', tag: `c${made}`, uri, fifoSize: 4096 });
    if (!r['ok']) {
      failed = `${r['code']} ${r['message']}`;
      break;
    }
    made++;
    if (made % 100 === 0 && (await disconnected())) break;
  }
  await eventually(
    disconnected,
    15_000,
    `the stalled app disconnected (after ${made} connects, then ${failed}): ${d.output()}`,
  );
  return made;
}
