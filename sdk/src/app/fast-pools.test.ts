// Fast-connect pools, the app's side, over a real segment: the client's take and the server's
// accept through the event queue, and a client (or anything else mapping the segment) that writes
// the pool words and the queue as it likes: the server accepts only pairs ferryd described, only
// when the word says taken, and each generation at most once; a pair reused in place once both ends
// let go; revocation and ferryd's loss as the protocol says.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { FerryError } from '../errors.js';
import type { Accepted, PoolPair } from '../proto/ctrl/messages.js';
import { formatUri, parseUri } from '../proto/uri.js';
import {
  eventQueueFootprint,
  fifoFootprint,
  initEventQueue,
  initFifo,
  POOL_FREE,
  POOL_REVOKED,
  POOL_TAKEN,
  poolLend,
  poolLock,
  poolState,
  REUSE_GEN_SHIFT,
  REUSE_LOCKED,
  Segment,
} from '../shm/index.js';
import { Doorbell, dup } from '../sys/index.js';
import { AppSegment } from './app-segment.js';
import { AppSession } from './app-session.js';
import type { PoolAccepted } from './control-messages.js';
import { FastPools, type PoolOwner } from './fast-pools.js';

const SIZE = 4 * 1024 * 1024;
const CAP = 64;
const FIFO = 4096;
const URI = 'tcp://127.0.0.1:8080';

interface World {
  creator: Segment;
  bell: Doorbell;
  client: AppSegment;
  server: AppSegment;
  /** Pairs from the client's side and the server's, same order. */
  grant: PoolPair[];
  serve: PoolPair[];
  cp: FastPools;
  sp: FastPools;
  accepted: Accepted[];
  notices: { t: string; session?: number; pool?: number }[];
  /** How each notice asked ferryd to be rung. */
  rings: ('soon' | 'lazy')[];
  failed: { id: number; err: FerryError }[];
  close(): void;
}

function world(pairs = 4, opts: { accept?: boolean } = {}): World {
  const creator = Segment.create('fast-pools-test', SIZE);
  const toServer = creator.alloc(eventQueueFootprint(CAP));
  const toClient = creator.alloc(eventQueueFootprint(CAP));
  initEventQueue(creator.buffer, toServer, CAP);
  initEventQueue(creator.buffer, toClient, CAP);
  const bell = Doorbell.create({ unref: true });
  const add = (rx: number, tx: number) => ({
    t: 'segment-add' as const,
    id: 0 as const,
    segment: 1,
    size: SIZE,
    rxQueueOffset: rx,
    txQueueOffset: tx,
    queueCapacity: CAP,
    maxSlot: CAP - 1,
    fds: ['segment' as const, 'doorbell' as const],
  });
  const client = new AppSegment(add(toClient, toServer), dup(creator.fd), dup(bell.ringFd));
  const server = new AppSegment(add(toServer, toClient), dup(creator.fd), dup(bell.ringFd));
  const grant: PoolPair[] = [];
  const serve: PoolPair[] = [];
  for (let i = 0; i < pairs; i++) {
    const c2s = creator.alloc(fifoFootprint(FIFO));
    const s2c = creator.alloc(fifoFootprint(FIFO));
    initFifo(creator.buffer, c2s, FIFO);
    initFifo(creator.buffer, s2c, FIFO);
    poolLend(creator.buffer, c2s);
    const slot = 10 + i;
    const f = { segment: 1, rxSize: FIFO, txSize: FIFO, slot };
    grant.push({ session: 100 + i, port: 50000 + i, fifos: { ...f, txOffset: c2s, rxOffset: s2c } });
    serve.push({ session: 200 + i, port: 50000 + i, fifos: { ...f, txOffset: s2c, rxOffset: c2s } });
  }
  const accepted: Accepted[] = [];
  const notices: World['notices'] = [];
  const rings: World['rings'] = [];
  const failed: World['failed'] = [];
  const owner = (seg: AppSegment): PoolOwner => ({
    segment: (id) => (id === 1 ? seg : undefined),
    notify: (msg, ring) => {
      notices.push(msg);
      rings.push(ring);
    },
    accept: (msg) => {
      accepted.push(msg);
      return opts.accept ?? true;
    },
    fail: (id, err) => failed.push({ id, err }),
  });
  const cp = new FastPools(owner(client));
  const sp = new FastPools(owner(server));
  return {
    creator,
    bell,
    client,
    server,
    grant,
    serve,
    cp,
    sp,
    accepted,
    notices,
    rings,
    failed,
    close() {
      client.release();
      server.release();
      bell.close();
      creator.release();
    },
  };
}

const grantMsg = (w: World) => ({
  t: 'pool-grant' as const,
  id: 0 as const,
  pool: 7,
  uri: URI,
  remoteUri: URI,
  pairs: w.grant,
});
const serveMsg = (w: World, pairs = w.serve) => ({
  t: 'pool-serve' as const,
  id: 0 as const,
  pool: 7,
  listener: 3,
  localUri: URI,
  pairs,
});

test('a client takes a pair, the server accepts it from the event queue, once', () => {
  const w = world(2);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    const fast = w.cp.take(URI);
    assert.ok(fast);
    assert.equal(formatUri(fast.remote), URI);
    assert.match(formatUri(fast.local), /^tcp:\/\/127\.0\.0\.1:5000[01]$/);
    assert.equal(w.accepted.length, 0, 'nothing before the server polls');
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    const a = w.accepted[0];
    assert.equal(a?.listener, 3);
    assert.equal(a?.transport, 'ct');
    const i = w.grant.findIndex((p) => p.session === fast.session.id);
    assert.equal(a?.session, w.serve[i]?.session);
    assert.deepEqual(a?.fifos, w.serve[i]?.fifos);
    // Its ends come parsed and say what its URIs say; the server's remote end is the client's local.
    const ends = (a as PoolAccepted).ends;
    assert.deepEqual(ends.local, parseUri(a?.localUri ?? ''));
    assert.deepEqual(ends.remote, parseUri(a?.remoteUri ?? ''));
    assert.deepEqual(ends.remote, fast.local);
    // The same slot posted again (data, FIN): no second connection.
    w.client.post(a?.fifos?.slot ?? 0);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    // ferryd is not told: it reads the pair's words when it samples.
    assert.deepEqual(w.notices, []);
    fast.session.detach();
  } finally {
    w.close();
  }
});

test('a pair taken before the server heard of it is accepted when pool-serve comes', () => {
  const w = world(1);
  try {
    w.cp.onGrant(grantMsg(w));
    const fast = w.cp.take(URI);
    assert.ok(fast);
    w.server.poll(); // the event finds nothing: the server knows no pool yet
    assert.equal(w.accepted.length, 0);
    w.sp.onServe(serveMsg(w), () => w.server);
    assert.equal(w.accepted.length, 1);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    fast.session.detach();
  } finally {
    w.close();
  }
});

test('a grant whose remoteUri does not parse lends nothing: the connect asks ferryd instead', () => {
  const w = world(2);
  try {
    for (const remoteUri of ['', 'tcp://127.0.0.1', 'gopher://a:1', 'tcp://127.0.0.1:70000']) {
      w.cp.onGrant({ ...grantMsg(w), remoteUri });
      assert.equal(w.cp.available(URI), 0, remoteUri);
      assert.equal(w.cp.take(URI), null, remoteUri);
    }
    assert.equal(w.notices.length, 0, 'no pair taken, so no fast-open');
    w.cp.onGrant(grantMsg(w));
    assert.equal(w.cp.available(URI), 2);
  } finally {
    w.close();
  }
});

test('an event for a pool slot whose word is not TAKEN is no connection (free, revoked, garbage)', () => {
  const w = world(4);
  try {
    w.sp.onServe(serveMsg(w), () => w.server);
    const words = [POOL_FREE, POOL_REVOKED, 0, 0xdead_beef];
    w.serve.forEach((p, i) => {
      new Uint32Array(w.creator.buffer, p.fifos.rxOffset, 4)[2] = words[i] ?? 0;
      w.client.post(p.fifos.slot);
    });
    // Slots nobody described: ignored as well.
    for (const slot of [0, 1, 9, 14, CAP - 1]) w.client.post(slot);
    assert.doesNotThrow(() => w.server.poll());
    assert.equal(w.accepted.length, 0);
  } finally {
    w.close();
  }
});

test('pool-serve naming a slot beyond the segment is ignored', () => {
  const w = world(1);
  try {
    const bad = { ...w.serve[0], fifos: { ...w.serve[0]?.fifos, slot: CAP + 5 } } as PoolPair;
    w.sp.onServe(serveMsg(w, [bad]), () => w.server);
    assert.equal(w.server.poolSlots?.has(CAP + 5) ?? false, false);
  } finally {
    w.close();
  }
});

test('a client skips pairs it lost to revocation (or garbage) and says so by returning null', () => {
  const w = world(3);
  try {
    w.cp.onGrant(grantMsg(w));
    for (const p of w.grant) new Uint32Array(w.creator.buffer, p.fifos.txOffset, 4)[2] = POOL_REVOKED;
    (new Uint32Array(w.creator.buffer, w.grant[1]?.fifos.txOffset ?? 0, 4) as Uint32Array)[2] = 77;
    assert.equal(w.cp.take(URI), null);
    assert.equal(w.cp.take('tcp://127.0.0.1:9'), null);
    assert.equal(w.notices.length, 0, 'no fast-open for what was not taken');
  } finally {
    w.close();
  }
});

test('pool-revoke: listed taken pairs are accepted, the rest dropped, an unlisted accept is failed, release after the last chunk', () => {
  const w = world(4);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    // Pair 0: taken and accepted normally.
    const a = w.cp.take(URI);
    assert.ok(a);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    const acceptedSlot = w.accepted[0]?.fifos?.slot ?? -1;
    // Another: taken but its event not seen yet; ferryd lists it.
    const b = w.cp.take(URI);
    assert.ok(b);
    const bSlot = b.session.slot;
    w.sp.onRevoke({ t: 'pool-revoke', id: 0, pool: 7, taken: [bSlot], more: true });
    assert.equal(w.notices.filter((n) => n.t === 'pool-release').length, 0, 'not before the last chunk');
    w.sp.onRevoke({ t: 'pool-revoke', id: 0, pool: 7, taken: [] });
    w.cp.onRevoke({ t: 'pool-revoke', id: 0, pool: 7, taken: [] });
    assert.deepEqual(
      w.accepted.map((m) => m.fifos?.slot),
      [acceptedSlot, bSlot],
    );
    // The first was accepted but ferryd does not list it: a hostile client's pair.
    assert.equal(w.failed.length, 1);
    assert.equal(w.failed[0]?.err.code, 'ERR_FERRY_DENIED');
    assert.equal(w.notices.filter((n) => n.t === 'pool-release').length, 2, 'one from each side');
    // After the revoke nothing in the pool is accepted any more, whatever the words say.
    const c = w.cp.take(URI);
    assert.equal(c, null, 'the client dropped the pool too');
    for (const p of w.serve) {
      new Uint32Array(w.creator.buffer, p.fifos.rxOffset, 4)[2] = POOL_TAKEN;
      w.client.post(p.fifos.slot);
    }
    w.server.poll();
    assert.equal(w.accepted.length, 2);
    a.session.detach();
    b.session.detach();
  } finally {
    w.close();
  }
});

test('ferryd lost: the server voids free pairs (a racing client then fails to take) and accepts taken ones', () => {
  const w = world(3);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    const a = w.cp.take(URI);
    assert.ok(a);
    w.sp.onLost();
    assert.equal(w.accepted.length, 1);
    for (const p of w.serve) {
      const st = poolState(w.creator.buffer, p.fifos.rxOffset);
      assert.ok(st === POOL_TAKEN || st === POOL_REVOKED, `word ${st}`);
    }
    assert.equal(w.cp.take(URI), null, 'every other pair was voided');
    a.session.detach();
  } finally {
    w.close();
  }
});

test('an accept no listener takes is reset (the client sees the reset in its fifo, ferryd hears reset)', () => {
  const w = world(1, { accept: false });
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    const fast = w.cp.take(URI);
    assert.ok(fast);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    assert.ok(w.notices.some((n) => n.t === 'reset' && n.session === w.serve[0]?.session));
    let failure: FerryError | null = null;
    fast.session.open({ onReadable: () => {}, onWritable: () => {}, onFailure: (e) => (failure = e) });
    assert.equal((failure as FerryError | null)?.code, 'ECONNRESET');
    fast.session.detach();
  } finally {
    w.close();
  }
});

test('scribbles over pool words and the event queue: accepts are only described pairs, each at most once', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({
            k: fc.constant('word' as const),
            i: fc.nat(7),
            v: fc.integer({ min: 0, max: 0xffff_ffff }),
          }),
          fc.record({ k: fc.constant('post' as const), slot: fc.nat(CAP - 1) }),
          fc.record({ k: fc.constant('take' as const) }),
          fc.record({ k: fc.constant('poll' as const) }),
        ),
        { maxLength: 60 },
      ),
      (ops) => {
        const w = world(8);
        try {
          w.cp.onGrant(grantMsg(w));
          w.sp.onServe(serveMsg(w), () => w.server);
          const taken = [];
          for (const op of ops) {
            if (op.k === 'word') {
              const p = w.serve[op.i];
              if (p) new Uint32Array(w.creator.buffer, p.fifos.rxOffset, 4)[2] = op.v;
            } else if (op.k === 'post') w.client.post(op.slot);
            else if (op.k === 'take') {
              const f = w.cp.take(URI);
              if (f) taken.push(f);
            } else w.server.poll();
          }
          w.server.poll();
          const slots = w.accepted.map((m) => m.fifos?.slot);
          assert.equal(new Set(slots).size, slots.length, 'a pair accepted twice');
          const described = new Set(w.serve.map((p) => p.fifos.slot));
          for (const s of slots) assert.ok(described.has(s ?? -1), `slot ${s} was never described`);
          for (const m of w.accepted) {
            const p = w.serve.find((x) => x.fifos.slot === m.fifos?.slot);
            assert.equal(m.session, p?.session, 'the session id is ferryd’s, not the memory’s');
          }
          for (const f of taken) f.session.detach();
        } finally {
          w.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

/** The session the server accepted last, opened from its `accepted` as the listener would. */
function acceptedSession(w: World): AppSession {
  const m = w.accepted.at(-1) as PoolAccepted | undefined;
  assert.ok(m?.fifos);
  const s = new AppSession(m.session, w.server, m.fifos, 'ct');
  s.poolTie = m.tie ?? null;
  return s;
}

/** One end lets go as endSession does: its last write, detach, then the reuse word. */
function letGo(s: AppSession, how: 'clean' | 'reset' = 'clean'): boolean {
  if (how === 'clean') s.stopReading();
  else s.reset();
  const tie = s.poolTie;
  s.detach();
  assert.ok(tie, 'a pool session has a tie');
  return tie.end();
}

test('a pair is reused in place: taken again only once both ends let go, fifos empty, no notice to ferryd', () => {
  const w = world(1);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    for (let round = 0; round < 3; round++) {
      const fast = w.cp.take(URI);
      assert.ok(fast, `round ${round}: taken`);
      const own = fast.session;
      assert.equal(own.write(new Uint8Array(100).fill(round + 1)), 100);
      own.fin();
      w.server.poll();
      assert.equal(w.accepted.length, round + 1, 'accepted once per connection');
      const srv = acceptedSession(w);
      assert.equal(srv.readableBytes, 100, 'the new connection reads only its own bytes');
      assert.equal(
        srv.read(1000)?.every((b) => b === round + 1),
        true,
      );
      assert.equal(letGo(own), true, 'the client let go through shared memory');
      // The server still holds it: the one pair is not free yet.
      assert.equal(w.cp.take(URI), null);
      w.server.poll();
      assert.equal(w.accepted.length, round + 1, 'no second accept of a held pair');
      assert.equal(letGo(srv, round === 1 ? 'reset' : 'clean'), true);
    }
    assert.deepEqual(w.notices, [], 'ferryd heard nothing');
    assert.equal(w.cp.taken, 3);
  } finally {
    w.close();
  }
});

test('a pair ferryd locked is never taken again, and its ends tell ferryd', () => {
  const w = world(1);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    const fast = w.cp.take(URI);
    assert.ok(fast);
    w.server.poll();
    const srv = acceptedSession(w);
    const pair = w.grant[0];
    assert.ok(pair);
    poolLock(w.creator.buffer, pair.fifos.rxOffset);
    assert.equal(fast.session.poolTie?.locked(), true);
    assert.equal(letGo(fast.session), false, 'locked: the caller sends its close to ferryd');
    assert.equal(letGo(srv), false);
    assert.equal(w.cp.take(URI), null);
    w.client.post(pair.fifos.slot);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
  } finally {
    w.close();
  }
});

test('a generation whose reuse word says locked is accepted only when ferryd lists it at revoke', () => {
  const w = world(2);
  try {
    w.cp.onGrant(grantMsg(w));
    w.sp.onServe(serveMsg(w), () => w.server);
    // One connection on a pair; both ends let go; then ferryd locks it (a notice named it: void).
    const first = w.cp.take(URI);
    assert.ok(first);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    assert.equal(letGo(first.session), true);
    assert.equal(letGo(acceptedSession(w)), true);
    const p0 = w.grant.find((p) => p.session === first.session.id);
    assert.ok(p0);
    poolLock(w.creator.buffer, p0.fifos.rxOffset);
    // A hostile client moves the word to the next generation, the lock left set, and posts.
    const words = new Uint32Array(w.creator.buffer, p0.fifos.rxOffset, 4);
    words[2] = ((((words[2] ?? 0) >>> REUSE_GEN_SHIFT) + 1) << REUSE_GEN_SHIFT) | REUSE_LOCKED;
    w.client.post(p0.fifos.slot);
    w.server.poll();
    assert.equal(w.accepted.length, 1, 'a locked generation is no connection');
    // Another pair: taken, then locked by ferryd's revoke before the server saw its event; the
    // event is not an accept, ferryd's list of taken pairs is.
    const second = w.cp.take(URI);
    assert.ok(second);
    const p1 = w.grant.find((p) => p.session === second.session.id);
    assert.ok(p1 && p1 !== p0);
    poolLock(w.creator.buffer, p1.fifos.rxOffset);
    w.server.poll();
    assert.equal(w.accepted.length, 1);
    w.sp.onRevoke({ t: 'pool-revoke', id: 0, pool: 7, taken: [p1.fifos.slot] });
    assert.deepEqual(
      w.accepted.map((m) => m.fifos?.slot),
      [p0.fifos.slot, p1.fifos.slot],
    );
    second.session.detach();
  } finally {
    w.close();
  }
});

test('scribbles over reuse words while connections come and go: one live accept per pair, nothing throws', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.record({
            k: fc.constant('reuse' as const),
            i: fc.nat(3),
            v: fc.integer({ min: 0, max: 0xffff_ffff }),
          }),
          fc.record({ k: fc.constant('take' as const) }),
          fc.record({ k: fc.constant('poll' as const) }),
          fc.record({ k: fc.constant('endClient' as const), i: fc.nat(7) }),
          fc.record({ k: fc.constant('endServer' as const), i: fc.nat(7) }),
        ),
        { maxLength: 80 },
      ),
      (ops) => {
        const w = world(4);
        const clients: AppSession[] = [];
        const servers: AppSession[] = [];
        let seen = 0;
        try {
          w.cp.onGrant(grantMsg(w));
          w.sp.onServe(serveMsg(w), () => w.server);
          const pollServer = () => {
            w.server.poll();
            for (; seen < w.accepted.length; seen++) {
              const m = w.accepted[seen] as PoolAccepted;
              assert.ok(m.fifos);
              const slot = m.fifos.slot;
              assert.ok(!servers.some((x) => x.slot === slot), `slot ${slot} accepted while held`);
              const s = new AppSession(m.session, w.server, m.fifos, 'ct');
              s.poolTie = m.tie ?? null;
              servers.push(s);
            }
          };
          for (const op of ops) {
            if (op.k === 'reuse') {
              const p = w.grant[op.i];
              if (p) new Uint32Array(w.creator.buffer, p.fifos.rxOffset, 4)[2] = op.v;
            } else if (op.k === 'take') {
              const f = w.cp.take(URI);
              if (f) clients.push(f.session);
            } else if (op.k === 'poll') pollServer();
            else {
              const list = op.k === 'endClient' ? clients : servers;
              const s = list.splice(op.i % Math.max(1, list.length), 1)[0];
              if (s) letGo(s);
            }
          }
          pollServer();
          for (const s of [...clients, ...servers]) s.detach();
        } finally {
          w.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});
