/**
 * Hostile apps against a real ferryd and well-behaved app processes (testing/hostile.ts): replay,
 * flood, fds passed and never taken back, many idle connections, and a peer that scribbles over
 * the shared segment it was given. Each misbehaviour costs only the hostile app and the sessions
 * it shares; ferryd and the other apps keep serving, and ferryd's fds come back to baseline.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  addSeals,
  close,
  EventQueueProducer,
  FIFO_HEADER_BYTES,
  type FifoPairRef,
  ftruncate,
  ring,
  SEAL,
} from '@ferry/sdk/internal';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { closeAll, junkFds, prng, RawApp, RawChannel, randomDatagram } from '../testing/hostile.js';

let d: DaemonHandle;
let echo: AppHandle;
let user: AppHandle;
let uri = '';
let baseFds = 0;

before(async () => {
  d = await startDaemon();
  echo = await startApp(d.socket);
  user = await startApp(d.socket);
  uri = String((await echo.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' }))['uri']);
  // A session between the good apps that must survive everything below.
  await user.ok({ op: 'connect', tag: 'long', uri });
  baseFds = await settledFds();
});

after(async () => {
  closeAll();
  await echo?.kill();
  await user?.kill();
  await d?.stop();
});

async function settledFds(): Promise<number> {
  let prev = -1;
  let now = -2;
  await eventually(
    async () => {
      prev = now;
      now = Number((await d.stats())['fds']);
      return prev === now;
    },
    10_000,
    'a settled fd count',
  );
  return now;
}

async function backToBaseline(what: string): Promise<void> {
  let last: Record<string, unknown> = {};
  await eventually(
    async () => {
      last = await d.stats();
      return Number(last['fds']) === baseFds && last['apps'] === 2 && last['pendingChannels'] === 0;
    },
    10_000,
    `${what}: ferryd back to baseline`,
  ).catch((e: Error) => {
    throw new Error(
      `${e.message}: fds ${last['fds']} (base ${baseFds}), apps ${last['apps']}, pending ${last['pendingChannels']}`,
    );
  });
}

let round = 0;
async function goodAppsStillServe(): Promise<void> {
  const tag = `check-${++round}`;
  await user.ok({ op: 'connect', tag, uri });
  const sent = await user.ok({
    op: 'send',
    tag,
    bytes: 64 * 1024 + round,
    seed: round,
    chunk: 4096,
    end: true,
  });
  const end = await user.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['sha256'], sent['sha256']);
  // And the long-lived session still echoes.
  await user.ok({ op: 'send', tag: 'long', bytes: 1000, seed: 1000 + round, chunk: 1000 });
  await eventually(
    async () => Number((await user.ok({ op: 'stat', tag: 'long' }))['rxBytes']) === 1000 * round,
    10_000,
    'the long session echoed',
  );
}

test('garbage with fds attached, on many channels: each closed, every fd released', async () => {
  const rnd = prng(0xbad);
  for (let i = 0; i < 40; i++) {
    const ch = new RawChannel(d.socket);
    const fds = i % 2 === 0 ? junkFds(1 + (i % 4)) : [];
    ch.sendBytes(randomDatagram(rnd), fds);
    for (const fd of fds) closeFd(fd);
    assert.ok(await ch.closedByPeer(), 'ferryd closed the channel');
    ch.close();
  }
  await goodAppsStillServe();
  await backToBaseline('garbage');
});

test('replay: a second hello, requests on sessions the app does not own, a replayed connect', async () => {
  const raw = await RawApp.attach(d.socket, 'replayer');
  try {
    const again = await raw.request({
      t: 'hello',
      id: 0,
      version: 1,
      minVersion: 1,
      features: 0,
      name: 'again',
      namespace: 'default',
      token: '',
      fds: [],
    });
    assert.ok('st' in again && again.st < 0, 'a second hello is refused');
    // Sessions of the good apps (ids are small integers): closing or resetting them is refused.
    for (let id = 1; id <= 60; id++) {
      for (const t of ['close', 'reset', 'shutdown'] as const) {
        const r = await raw.request({ t, id: 0, session: id });
        assert.ok('st' in r && r.st < 0, `${t} of session ${id} was refused`);
      }
    }
    const r = await raw.request({ t: 'unlisten', id: 0, listener: 1 });
    assert.ok('st' in r && r.st < 0, 'unlisten of a listener it does not own is refused');
    // The same connect replayed: each is a fresh session (ids are not capabilities).
    const ids = new Set<number>();
    for (let i = 0; i < 5; i++) {
      const c = await raw.request({ t: 'connect', id: 0, uri, rxFifoSize: 4096, txFifoSize: 4096 });
      assert.ok(c.t === 'connect-reply' && c.st === 0);
      ids.add(c.session);
    }
    assert.equal(ids.size, 5);
  } finally {
    raw.close();
  }
  await goodAppsStillServe();
  await backToBaseline('replay');
});

test('flood: an app that sends without ever reading is cut off; ferryd stays bounded', async () => {
  const raw = await RawApp.attach(d.socket, 'flooder');
  const ping = { t: 'ping' as const, id: 7 };
  const end = Date.now() + 20_000;
  let sent = 0;
  let cut = false;
  while (Date.now() < end && !cut) {
    for (let i = 0; i < 200; i++) {
      try {
        if (raw.send({ ...ping, id: 1 + (sent % 1000) }, [], i % 50 === 0)) sent++;
      } catch {
        cut = true; // EPIPE / ECONNRESET: ferryd closed the channel.
        break;
      }
    }
    raw.ring();
    const st = await d.stats();
    cut ||= Number(st['apps']) === 2;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(cut, `ferryd cut the flooder off (sent ${sent})`);
  // (How many it got to send depends on ferryd's limits: its bounded send queue, or the
  // stalled-app policy, whichever cuts first.)
  const st = await d.stats();
  assert.ok(Number(st['rssBytes']) < 300 * 1024 * 1024, `ferryd rss ${st['rssBytes']}`);
  raw.close();
  await goodAppsStillServe();
  await backToBaseline('flood');
});

test('fds passed with every message are closed by ferryd, never kept', async () => {
  const raw = await RawApp.attach(d.socket, 'fd-passer');
  try {
    for (let i = 0; i < 100; i++) {
      const fds = junkFds(3);
      raw.send({ t: 'ping', id: 1000 + i }, fds);
      for (const fd of fds) closeFd(fd);
    }
    await raw.next((m) => m.id === 1099, 10_000);
    // Only the raw app's own attachment fds remain on ferryd's side.
    const st = await d.stats();
    assert.ok(Number(st['fds']) < baseFds + 10, `ferryd holds ${st['fds']} fds (base ${baseFds})`);
  } finally {
    raw.close();
  }
  await backToBaseline('fd passing');
});

test('many connections that never say hello: ferryd keeps serving and releases them all', async () => {
  const chans: RawChannel[] = [];
  try {
    for (let i = 0; i < 300; i++) chans.push(new RawChannel(d.socket));
    await eventually(
      async () => Number((await d.stats())['pendingChannels']) === 300,
      10_000,
      '300 pending channels',
    );
    await goodAppsStillServe();
  } finally {
    for (const c of chans) c.close();
  }
  await backToBaseline('idle connections');
});

/** A raw listener, one cut-through session to it from `user`, and the raw side's fifos. */
async function hostileServer(tag: string) {
  const raw = await RawApp.attach(d.socket, 'scribbler');
  const l = await raw.request({ t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0' });
  assert.ok(l.t === 'listen-reply' && l.st === 0);
  await user.ok({ op: 'connect', tag, uri: l.uri, fifoSize: 4096 });
  const acc = await raw.next((m) => m.t === 'accepted');
  assert.ok(acc.t === 'accepted' && acc.fifos);
  const seg = raw.segments.get(acc.fifos.segment);
  assert.ok(seg, 'the segment arrived before accepted');
  return { raw, acc, seg, fifos: acc.fifos as FifoPairRef, uri: l.uri };
}

/** Posts `slot` on the queue toward the user and rings it, as a peer announcing news does. */
function announce(
  seg: {
    msg: { txQueueOffset: number; queueCapacity: number };
    segment: { buffer: ArrayBuffer };
    peerDoorbellFd: number;
  },
  slot: number,
): void {
  const q = new EventQueueProducer(seg.segment.buffer, seg.msg.txQueueOffset, seg.msg.queueCapacity);
  q.push(slot);
  ring(seg.peerDoorbellFd);
}

test('a peer that scribbles over a fifo header fails that session with ERR_FERRY_FIFO_CORRUPT', async () => {
  const { raw, seg, fifos } = await hostileServer('fifo-victim');
  try {
    // The fifo the user reads (the raw side's tx): a tail far past the head.
    const ctl = new Uint32Array(seg.segment.buffer, fifos.txOffset, FIFO_HEADER_BYTES / 4);
    ctl[32] = (ctl[16] as number) + 3 * fifos.txSize;
    announce(seg, fifos.slot);
    const err = await user.waitFor((e) => e.event === 'error' && e.tag === 'fifo-victim', 10_000);
    assert.equal(err['code'], 'ERR_FERRY_FIFO_CORRUPT');
  } finally {
    raw.close();
  }
  await goodAppsStillServe();
  await backToBaseline('fifo scribbler');
});

test('a peer that corrupts the event queue fails only the sessions it shares (ERR_FERRY_QUEUE_CORRUPT)', async () => {
  const { raw, seg, uri: rawUri } = await hostileServer('queue-victim-1');
  try {
    await user.ok({ op: 'connect', tag: 'queue-victim-2', uri: rawUri, fifoSize: 4096 });
    // An entry naming a slot beyond the segment: the queue is broken.
    announce(seg, seg.msg.maxSlot + 1000);
    for (const tag of ['queue-victim-1', 'queue-victim-2']) {
      const err = await user.waitFor((e) => e.event === 'error' && e.tag === tag, 10_000);
      assert.equal(err['code'], 'ERR_FERRY_QUEUE_CORRUPT');
    }
  } finally {
    raw.close();
  }
  await goodAppsStillServe();
  await backToBaseline('queue scribbler');
});

test('segments are sealed: a peer can neither shrink nor grow one, nor lift the seals', async () => {
  const { raw, seg } = await hostileServer('sealed');
  try {
    assert.throws(() => ftruncate(seg.fd, seg.msg.size / 2), { code: 'EPERM' });
    assert.throws(() => ftruncate(seg.fd, 0), { code: 'EPERM' });
    assert.throws(() => ftruncate(seg.fd, seg.msg.size * 2), { code: 'EPERM' });
    assert.throws(() => addSeals(seg.fd, SEAL.WRITE), { code: 'EPERM' });
    // The session between the two is unharmed by the attempts.
    await user.ok({ op: 'send', tag: 'sealed', bytes: 100, seed: 5, chunk: 100 });
  } finally {
    raw.close();
  }
  const err = await user.waitFor((e) => e.event === 'error' && e.tag === 'sealed', 10_000);
  assert.equal(err['code'], 'ECONNRESET');
  await goodAppsStillServe();
  await backToBaseline('sealed');
});

function closeFd(fd: number): void {
  try {
    close(fd);
  } catch {}
}
