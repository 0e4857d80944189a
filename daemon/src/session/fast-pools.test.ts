/**
 * Fast-connect pools in ferryd's session layer, with two fake apps: a pool is lent only after a
 * cut-through connect passed its checks, its pairs count against both apps' session limit, a pair
 * enters the table only if the client really took it (the pool word says so), revocation voids
 * every free pair at once and puts the taken ones in the table, and revoked pairs go back to the
 * segment once both apps let go.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ConnectReply,
  type CtrlChannel,
  type CtrlMessage,
  FEATURE,
  POOL_FREE,
  POOL_REVOKED,
  POOL_TAKEN,
  type PoolGrant,
  type PoolRevoke,
  type PoolServe,
  poolLock,
  poolReuseWord,
  poolState,
  poolSwap,
  REUSE_CLIENT_DONE,
  REUSE_GEN_SHIFT,
  REUSE_LOCKED,
  REUSE_SERVER_DONE,
} from '@ferry/sdk/internal';
import { App } from '../app/app.js';
import { type DaemonConfig, defaultConfig } from '../config.js';
import { silentLogger } from '../log/logger.js';
import { DaemonObserver, POOL_SAMPLE_EVERY } from '../obs/observer.js';
import { SessionLayer } from './session-layer.js';

interface Fake {
  layer: SessionLayer;
  client: App;
  server: App;
  sent: Map<number, CtrlMessage[]>;
  uri: string;
}

function setup(opts: Partial<DaemonConfig> = {}, features: number = FEATURE.FAST_CONNECT): Fake {
  const config = { ...defaultConfig({}), ...opts };
  const apps = new Map<number, App>();
  const sent = new Map<number, CtrlMessage[]>();
  const mk = (id: number) => {
    const out: CtrlMessage[] = [];
    sent.set(id, out);
    const channel = { send: (m: CtrlMessage) => out.push(m), drain: () => {} } as unknown as CtrlChannel;
    const app = new App(id, `app${id}`, 'default', { pid: id, uid: 0, gid: 0 }, channel, -1);
    app.features = features;
    apps.set(id, app);
    return app;
  };
  const client = mk(1);
  const server = mk(2);
  const layer = new SessionLayer(config, apps, silentLogger);
  const l = layer.listeners.add(server.id, 'default', { scheme: 'tcp', host: '127.0.0.1', port: 8080 });
  assert.ok(l);
  server.listeners.add(l.id);
  return { layer, client, server, sent, uri: 'tcp://127.0.0.1:8080' };
}

const connectReq = (uri: string, id = 1, fifo = 0) => ({
  t: 'connect' as const,
  id,
  uri,
  rxFifoSize: fifo,
  txFifoSize: fifo,
});

function of<T extends CtrlMessage['t']>(f: Fake, app: App, t: T): Extract<CtrlMessage, { t: T }>[] {
  return (f.sent.get(app.id) ?? []).filter((m) => m.t === t) as Extract<CtrlMessage, { t: T }>[];
}

function segBuf(f: Fake): ArrayBufferLike {
  const seg = [...f.layer.segments.values()][0];
  assert.ok(seg);
  return seg.segment.buffer;
}

test('a cut-through connect lends a pool: the server hears first, both see the same slots, the pairs count', () => {
  const f = setup({ fastConnectPool: 4 });
  const reply = f.layer.connect(f.client, connectReq(f.uri)) as ConnectReply;
  assert.equal(reply.st, 0);
  const [grant] = of(f, f.client, 'pool-grant') as PoolGrant[];
  const [serve] = of(f, f.server, 'pool-serve') as PoolServe[];
  assert.ok(grant && serve);
  assert.equal(grant.uri, f.uri);
  assert.equal(grant.pairs.length, 4);
  assert.deepEqual(
    grant.pairs.map((p) => p.fifos.slot),
    serve.pairs.map((p) => p.fifos.slot),
  );
  for (const [i, p] of grant.pairs.entries()) {
    // Mirror images: what the client writes the server reads.
    assert.equal(p.fifos.txOffset, serve.pairs[i]?.fifos.rxOffset);
    assert.equal(poolState(segBuf(f), p.fifos.txOffset), POOL_FREE);
  }
  const serverSent = f.sent.get(f.server.id) ?? [];
  assert.ok(serverSent.indexOf(serve) < serverSent.length, 'pool-serve sent');
  assert.equal(f.layer.pools.reservedOf(f.client), 4);
  assert.equal(f.layer.pools.reservedOf(f.server), 4);
  assert.equal(f.layer.sessions.size, 2, 'lent pairs are not sessions yet');
});

test('no pool without FAST_CONNECT on both sides, with fifo sizes asked for, or with fastConnectPool 0', () => {
  for (const f of [setup({}, 0), setup({ fastConnectPool: 0 })]) {
    f.layer.connect(f.client, connectReq(f.uri));
    assert.equal(of(f, f.client, 'pool-grant').length, 0);
  }
  const f = setup();
  f.layer.connect(f.client, connectReq(f.uri, 1, 65536));
  assert.equal(of(f, f.client, 'pool-grant').length, 0);
});

test('fast-open: a pair the client took enters the table (both ends, peers); one still free is refused and voided', () => {
  const f = setup({ fastConnectPool: 4 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const [serve] = of(f, f.server, 'pool-serve');
  assert.ok(grant && serve);
  const [a, b] = grant.pairs;
  assert.ok(a && b);
  // The client takes a.
  assert.equal(poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN), POOL_FREE);
  f.layer.fastOpen(f.client, a.session);
  const c = f.layer.sessions.get(a.session);
  const s = f.layer.sessions.get(serve.pairs[0]?.session ?? -1);
  assert.ok(c && s);
  assert.equal(c.peer, s);
  assert.equal(s.peer, c);
  assert.equal(c.transport, 'ct');
  assert.equal(s.listenerId, [...f.layer.listeners.values()][0]?.id);
  assert.equal(f.layer.counters.fastConnects, 1);
  // b was not taken: a fast-open for it is a lie.
  assert.throws(() => f.layer.fastOpen(f.client, b.session), { code: 'ERR_FERRY_SESSION_NOT_FOUND' });
  assert.equal(f.layer.sessions.has(b.session), false);
  assert.equal(poolState(segBuf(f), b.fifos.txOffset), POOL_REVOKED, 'voided, nobody can take it now');
  // The server may not name the client's session, nor the client the server's.
  assert.throws(() => f.layer.fastOpen(f.server, grant.pairs[2]?.session ?? -1), {
    code: 'ERR_FERRY_SESSION_NOT_FOUND',
  });
});

test("the server's close may come first: it puts the pair in the table too", () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const [serve] = of(f, f.server, 'pool-serve');
  assert.ok(grant?.pairs[0] && serve?.pairs[0]);
  poolSwap(segBuf(f), grant.pairs[0].fifos.txOffset, POOL_TAKEN);
  f.layer.close(f.server, serve.pairs[0].session);
  const s = f.layer.sessions.get(serve.pairs[0].session);
  assert.equal(s?.state, 'closed');
  assert.equal(f.layer.sessions.get(grant.pairs[0].session)?.state, 'remote-fin');
});

test('a reload revokes every pool: free pairs are voided at once, taken ones enter the table and are listed', () => {
  const f = setup({ fastConnectPool: 4 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  assert.ok(grant?.pairs[1]);
  poolSwap(segBuf(f), grant.pairs[1].fifos.txOffset, POOL_TAKEN);
  const before = f.layer.sessions.size;
  f.layer.policyChanged();
  for (const [i, p] of grant.pairs.entries()) {
    assert.equal(poolState(segBuf(f), p.fifos.txOffset), i === 1 ? POOL_TAKEN : POOL_REVOKED);
    // A client that tries now loses the swap.
    assert.notEqual(poolSwap(segBuf(f), p.fifos.txOffset, POOL_TAKEN), POOL_FREE);
  }
  assert.equal(f.layer.sessions.size, before + 2, 'the taken pair is in the table');
  const [revoke] = of(f, f.server, 'pool-revoke') as PoolRevoke[];
  assert.deepEqual(revoke?.taken, [grant.pairs[1].fifos.slot]);
  assert.equal(of(f, f.client, 'pool-revoke').length, 1);
  assert.equal(f.layer.pools.reservedOf(f.client), 0);
  assert.equal(f.layer.counters.poolsRevoked, 1);
  // The void pairs go back to the segment only once both apps let go of the pool.
  const seg = [...f.layer.segments.values()][0];
  const live = seg?.liveSessions;
  f.layer.poolRelease(f.client, grant.pool);
  assert.equal(seg?.liveSessions, live);
  f.layer.poolRelease(f.server, grant.pool);
  assert.equal(seg?.liveSessions, (live ?? 0) - 3);
});

test('maxSessionsPerApp: a pool never exceeds either app’s headroom, and a connect that needs the room voids it', () => {
  const f = setup({ fastConnectPool: 8, maxSessionsPerApp: 4 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  assert.equal(grant?.pairs.length, 3, 'the client holds 1 session of 4: room for 3');
  // A second connect (another URI form, same listener): the limit counts the lent pairs, so the
  // pool gives way rather than the connect failing.
  const r = f.layer.connect(f.client, connectReq('tcp://localhost:8080', 2)) as ConnectReply;
  assert.equal(r.st, 0);
  assert.equal(f.client.sessions.size, 2);
  assert.ok(f.client.sessions.size + f.layer.pools.reservedOf(f.client) <= 4);
  assert.ok(f.server.sessions.size + f.layer.pools.reservedOf(f.server) <= 4);
});

test("an app's death revokes its pools: taken pairs enter the table and are torn down with it", () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  assert.ok(grant?.pairs[0]);
  poolSwap(segBuf(f), grant.pairs[0].fifos.txOffset, POOL_TAKEN);
  f.layer.appGone(f.client);
  const serverMsgs = (f.sent.get(f.server.id) ?? []).map((m) => m.t);
  // pool-revoke (so the server accepts the taken pair) before that pair's session-reset.
  const rv = serverMsgs.indexOf('pool-revoke');
  assert.ok(rv >= 0);
  assert.ok(serverMsgs.indexOf('session-reset', rv) > rv);
  assert.equal(f.layer.pools.reservedOf(f.server), 0);
});

test('a pool grows with demand: a connect ferryd answers although the pool exists doubles it, up to 4x', () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const lent = () => (of(f, f.client, 'pool-grant') as PoolGrant[]).flatMap((g) => g.pairs);
  assert.equal(f.layer.pools.reservedOf(f.client), 2);
  const held: number[] = [];
  for (let i = 0; i < 4; i++) {
    // The client takes every pair it holds (connects in flight), then asks ferryd: the pool ran dry.
    for (const p of lent()) {
      if (poolSwap(segBuf(f), p.fifos.txOffset, POOL_TAKEN) === POOL_FREE)
        f.layer.fastOpen(f.client, p.session);
    }
    const r = f.layer.connect(f.client, connectReq(f.uri, 2 + i)) as ConnectReply;
    assert.equal(r.st, 0);
    held.push(f.layer.pools.reservedOf(f.client));
    assert.ok(f.layer.pools.reservedOf(f.client) <= 8, 'never above 4 x fastConnectPool');
  }
  // 2 -> 4 -> 8, then the cap (4 x fastConnectPool): each grant fills the pool to its new size.
  assert.deepEqual(held.slice(0, 2), [4, 8]);
  assert.equal(f.layer.counters.poolsGrown, 2);
  assert.equal(f.layer.pools.reservedOf(f.server), f.layer.pools.reservedOf(f.client));
  // A reload revokes it; the next pool starts at fastConnectPool again.
  f.layer.policyChanged();
  f.layer.connect(f.client, connectReq(f.uri, 9));
  const grants = of(f, f.client, 'pool-grant') as PoolGrant[];
  assert.equal(grants[grants.length - 1]?.pairs.length, 2);
});

test('a grown pool still gives way to the session limit', () => {
  const f = setup({ fastConnectPool: 4, maxSessionsPerApp: 10 });
  f.layer.connect(f.client, connectReq(f.uri));
  for (const p of (of(f, f.client, 'pool-grant') as PoolGrant[]).flatMap((g) => g.pairs)) {
    if (poolSwap(segBuf(f), p.fifos.txOffset, POOL_TAKEN) === POOL_FREE)
      f.layer.fastOpen(f.client, p.session);
  }
  f.layer.connect(f.client, connectReq(f.uri, 2));
  assert.ok(f.client.sessions.size + f.layer.pools.reservedOf(f.client) <= 10);
  assert.ok(f.server.sessions.size + f.layer.pools.reservedOf(f.server) <= 10);
});

test('a full segment: the top-up reads the apps’ pending close notices, then lends the pairs they freed', () => {
  const MiB = 1024 * 1024;
  // Room for 3 pairs of 1 MiB fifos.
  const f = setup({
    fastConnectPool: 4,
    segmentSizeBytes: 7 * MiB,
    maxFifoSizeBytes: MiB,
    defaultFifoSizeBytes: MiB,
  });
  const first = f.layer.connect(f.client, connectReq(f.uri)) as ConnectReply;
  assert.equal(first.st, 0);
  const grants = () => (of(f, f.client, 'pool-grant') as PoolGrant[]).flatMap((g) => g.pairs);
  const lentBefore = grants().length;
  assert.ok(lentBefore >= 1 && lentBefore < 4, `the segment holds only a few pairs (${lentBefore})`);
  // The client takes every pair; both ends of those connections are closed, but their notices are
  // still unread in the apps' channels when the next top-up finds the segment full.
  const pending: (() => void)[] = [];
  (f.server.channel as unknown as { drain: () => void }).drain = () => {
    for (const fn of pending.splice(0)) fn();
  };
  const serveOf = (clientId: number) => {
    const g = grants().findIndex((p) => p.session === clientId);
    return (of(f, f.server, 'pool-serve') as PoolServe[]).flatMap((s) => s.pairs)[g]?.session ?? -1;
  };
  const acc = of(f, f.server, 'accepted')[0];
  assert.ok(acc);
  f.layer.close(f.client, first.session);
  pending.push(() => f.layer.close(f.server, acc.session));
  const taken = grants().slice();
  for (const p of taken) {
    assert.equal(poolSwap(segBuf(f), p.fifos.txOffset, POOL_TAKEN), POOL_FREE);
    f.layer.close(f.client, p.session);
    const sid = serveOf(p.session);
    pending.push(() => f.layer.close(f.server, sid));
  }
  const reclaimsBefore = f.layer.counters.poolReclaims;
  // The next top-up (a fast-open notice would trigger it) runs through a connect here.
  const r = f.layer.connect(f.client, connectReq(f.uri, 7)) as ConnectReply;
  assert.equal(r.st, 0);
  assert.ok(f.layer.counters.poolReclaims > reclaimsBefore, 'the top-up read the pending notices');
  assert.equal(pending.length, 0);
  assert.ok(grants().length > taken.length, `pairs lent again after the reclaim (${grants().length})`);
  assert.ok(f.layer.pools.reservedOf(f.client) >= 1);
});

test('growth never lends more pairs than one pool-grant carries', () => {
  const f = setup({ fastConnectPool: 32 });
  f.layer.connect(f.client, connectReq(f.uri));
  for (let i = 0; i < 3; i++) {
    for (const p of (of(f, f.client, 'pool-grant') as PoolGrant[]).flatMap((g) => g.pairs)) {
      if (poolSwap(segBuf(f), p.fifos.txOffset, POOL_TAKEN) === POOL_FREE)
        f.layer.fastOpen(f.client, p.session);
    }
    const r = f.layer.connect(f.client, connectReq(f.uri, 2 + i)) as ConnectReply;
    assert.equal(r.st, 0);
  }
  for (const g of of(f, f.client, 'pool-grant') as PoolGrant[]) assert.ok(g.pairs.length <= 32);
  assert.ok(f.layer.pools.reservedOf(f.client) <= 32);
  assert.equal(f.layer.counters.poolsGrown, 0, 'already at the cap');
});

/** Writes a pair's reuse word as the apps would (generation `gen`, flags). */
function setReuse(f: Fake, grantPair: { fifos: { rxOffset: number } }, gen: number, flags: number): void {
  new Uint32Array(segBuf(f), grantPair.fifos.rxOffset, 4)[2] = ((gen << REUSE_GEN_SHIFT) | flags) >>> 0;
}

test('pairs reused in place: ferryd counts each connection when it samples, shows live ones, keeps nothing in its table', () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const a = grant?.pairs[0];
  assert.ok(a);
  const sessions = f.layer.sessions.size;
  const listener = [...f.layer.listeners.values()][0];
  const acceptedBefore = listener?.accepted ?? 0;
  poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN);
  // Five connections on it since; the sixth is live, its client end let go already.
  setReuse(f, a, 5, REUSE_CLIENT_DONE);
  const live: number[] = [];
  f.layer.pools.sample((_pool, rec, look) => {
    live.push(rec.slot);
    assert.equal(look.clientDone, true);
    assert.equal(look.serverDone, false);
  });
  assert.deepEqual(live, [a.fifos.slot]);
  assert.equal(f.layer.counters.fastConnects, 6);
  assert.equal(listener?.accepted, acceptedBefore + 6);
  assert.equal(f.layer.pools.pooledEnded, 5);
  // A second look counts nothing twice; the pair stays reserved, not in the table.
  f.layer.pools.sample();
  assert.equal(f.layer.counters.fastConnects, 6);
  assert.equal(f.layer.sessions.size, sessions);
  assert.equal(f.layer.pools.reservedOf(f.client), 2);
  // A count that runs backwards (a scribble) is ignored.
  setReuse(f, a, 2, 0);
  f.layer.pools.sample();
  assert.equal(f.layer.counters.fastConnects, 6);
});

test('a revoke: an idle pair is voided, a live one enters the table with the ends that let go closed, none reused', () => {
  const f = setup({ fastConnectPool: 3 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const [serve] = of(f, f.server, 'pool-serve');
  const [idle, live] = grant?.pairs ?? [];
  assert.ok(idle && live && serve);
  poolSwap(segBuf(f), idle.fifos.txOffset, POOL_TAKEN);
  setReuse(f, idle, 3, REUSE_CLIENT_DONE | REUSE_SERVER_DONE);
  poolSwap(segBuf(f), live.fifos.txOffset, POOL_TAKEN);
  setReuse(f, live, 1, REUSE_SERVER_DONE);
  const before = f.layer.sessions.size;
  f.layer.policyChanged();
  assert.equal(f.layer.sessions.size, before + 2, 'only the live connection entered the table');
  const c = f.layer.sessions.get(live.session);
  const liveServer = serve.pairs.find((p) => p.fifos.slot === live.fifos.slot);
  const s = f.layer.sessions.get(liveServer?.session ?? -1);
  assert.ok(c && s);
  assert.equal(s.state, 'closed', 'the server had let go: closed in the table');
  for (const p of [idle, live]) {
    assert.equal(poolReuseWord(segBuf(f), p.fifos.rxOffset) & REUSE_LOCKED, REUSE_LOCKED, 'locked');
  }
  // The server end had let go: not listed as taken (the server must not accept it again).
  const [revoke] = of(f, f.server, 'pool-revoke') as PoolRevoke[];
  assert.deepEqual(revoke?.taken, []);
  assert.equal(f.layer.counters.fastConnects, 4 + 2);
  assert.equal(f.layer.pools.reservedOf(f.client), 0);
});

test('a notice naming a pair both ends let go of is refused and voids the pair', () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const a = grant?.pairs[0];
  assert.ok(a);
  poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN);
  setReuse(f, a, 0, REUSE_CLIENT_DONE | REUSE_SERVER_DONE);
  assert.throws(() => f.layer.close(f.client, a.session), { code: 'ERR_FERRY_SESSION_NOT_FOUND' });
  assert.equal(f.layer.sessions.has(a.session), false);
  assert.equal(poolLock(segBuf(f), a.fifos.rxOffset) & REUSE_LOCKED, REUSE_LOCKED, 'locked: never reused');
});

test('a connection sampled, then locked into the table, is marked counted (the metrics count its opening once)', () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const [a, b] = grant?.pairs ?? [];
  assert.ok(a && b);
  poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN);
  f.layer.pools.sample();
  assert.equal(f.layer.pools.pooledOpened, 1);
  // b: garbage in its pool word, never counted by a sample: the table counts it when it enters.
  new Uint32Array(segBuf(f), b.fifos.txOffset, 4)[2] = 77;
  f.layer.policyChanged();
  assert.equal(f.layer.sessions.get(a.session)?.openCounted, true);
  assert.equal(f.layer.sessions.get(b.session)?.openCounted, false);
  assert.equal(f.layer.pools.pooledOpened, 1, 'not taken back: the metrics saw it');
});

test('generations that wrap past 2^24 keep counting (a busy pair wraps in minutes)', () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const a = grant?.pairs[0];
  assert.ok(a);
  poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN);
  // Looked at often enough (each step under 2^23), up to the last generation before the wrap.
  for (const gen of [0x40_0000, 0x80_0000, 0xc0_0000, 0xff_fff0]) {
    setReuse(f, a, gen, REUSE_CLIENT_DONE | REUSE_SERVER_DONE);
    f.layer.pools.sample();
  }
  const opened = f.layer.pools.pooledOpened;
  assert.equal(opened, 0xff_fff1);
  assert.equal(f.layer.pools.pooledEnded, 0xff_fff1);
  // 18 connections later the 24-bit generation has wrapped to 2; the third of them is live.
  setReuse(f, a, 2, 0);
  const live: number[] = [];
  f.layer.pools.sample((_pool, rec) => live.push(rec.slot));
  assert.deepEqual(live, [a.fifos.slot]);
  assert.equal(f.layer.pools.pooledOpened, opened + 18);
  assert.equal(f.layer.pools.pooledEnded, opened + 17);
  // And a scribble backwards across the wrap is still ignored.
  setReuse(f, a, 0xff_fff0, 0);
  f.layer.pools.sample();
  assert.equal(f.layer.pools.pooledOpened, opened + 18);
  assert.equal(f.layer.pools.pooledEnded, opened + 17);
});

test('hostile pool and reuse words: samples, notices and a revoke never throw, and the revoke leaves nothing lent', () => {
  let seed = 0x2545f491;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const interesting = [
    0,
    REUSE_CLIENT_DONE,
    REUSE_SERVER_DONE,
    REUSE_LOCKED,
    REUSE_CLIENT_DONE | REUSE_SERVER_DONE,
    REUSE_LOCKED | REUSE_CLIENT_DONE | REUSE_SERVER_DONE,
    REUSE_LOCKED | REUSE_SERVER_DONE,
  ];
  for (let round = 0; round < 40; round++) {
    const f = setup({ fastConnectPool: 6 });
    f.layer.connect(f.client, connectReq(f.uri));
    const [grant] = of(f, f.client, 'pool-grant');
    assert.ok(grant);
    const buf = segBuf(f);
    for (const p of grant.pairs) {
      // Pool word: free, taken, revoked, or anything; reuse word: any flags, generation, or garbage.
      const pw = [POOL_FREE, POOL_TAKEN, POOL_TAKEN, POOL_REVOKED, rnd()][rnd() % 5] as number;
      new Uint32Array(buf, p.fifos.txOffset, 4)[2] = pw;
      const flags = interesting[rnd() % interesting.length] as number;
      const reuse = rnd() % 4 === 0 ? rnd() : (((rnd() % 5) << REUSE_GEN_SHIFT) | flags) >>> 0;
      new Uint32Array(buf, p.fifos.rxOffset, 4)[2] = reuse;
    }
    f.layer.pools.sample(() => {});
    const named = grant.pairs[rnd() % grant.pairs.length];
    assert.ok(named);
    // A notice naming a pair (the app says ferryd must hold it): taken in, or refused, never thrown past.
    try {
      f.layer.close(f.client, named.session);
    } catch (e) {
      assert.equal((e as { code?: string }).code, 'ERR_FERRY_SESSION_NOT_FOUND');
    }
    f.layer.policyChanged();
    assert.equal(f.layer.pools.reservedOf(f.client), 0, `round ${round}: nothing lent after the revoke`);
    assert.equal(f.layer.pools.reservedOf(f.server), 0);
    for (const p of grant.pairs) {
      const w = poolReuseWord(buf, p.fifos.rxOffset);
      const pool = poolState(buf, p.fifos.txOffset);
      assert.ok(pool === POOL_REVOKED || (w & REUSE_LOCKED) !== 0, `round ${round}: a pair left reusable`);
    }
    // Both apps going after it tears down what entered the table, without a throw.
    f.layer.appGone(f.client);
    f.layer.appGone(f.server);
  }
});

test("ferryd's own sampling timer reads the pools' words: counts stay exact with no scrape and no ferry show across wraps", () => {
  const f = setup({ fastConnectPool: 2 });
  f.layer.connect(f.client, connectReq(f.uri));
  const [grant] = of(f, f.client, 'pool-grant');
  const a = grant?.pairs[0];
  assert.ok(a);
  const observer = new DaemonObserver(f.layer);
  try {
    poolSwap(segBuf(f), a.fifos.txOffset, POOL_TAKEN);
    // 0x60_0000 connections between two of its pool samples, three times: past 2^24 in all, each
    // step under the 2^23 a look can read.
    let total = 0;
    for (let step = 1; step <= 3; step++) {
      total += 0x60_0000;
      setReuse(f, a, (total - 1) & 0xff_ffff, REUSE_CLIENT_DONE | REUSE_SERVER_DONE);
      for (let i = 0; i < POOL_SAMPLE_EVERY; i++) observer.tick();
      assert.equal(f.layer.pools.pooledOpened, total, `step ${step}`);
      assert.equal(f.layer.pools.pooledEnded, total);
    }
  } finally {
    observer.stop();
  }
});
