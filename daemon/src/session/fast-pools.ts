/**
 * Fast-connect pools: fifo pairs ferryd lends a (client app, listener, URI) so that the client's
 * next connects there need no round trip through ferryd (docs/control-protocol.md, "Fast
 * connects"). ferryd grants a pool only after a connect on that very URI passed every check a
 * connect passes (rules, limits, the listener admitting cut-through), and revokes it whenever one
 * of those inputs may have changed (a reload, a listener appearing or going, a limit reached, an
 * app's death): policy holds as on the ferryd path.
 *
 * Ownership of each pair is decided by its pool word (shm/fifo-pool.ts): the client swaps
 * FREE -> TAKEN, ferryd swaps FREE -> REVOKED; exactly one wins. A taken pair then serves the same
 * two apps again and again without ferryd: its reuse word counts generations and says which end
 * let go of the current one; the client takes it again once both did. A pair ferryd lent stays
 * reserved (counted as one session of each app against maxSessionsPerApp, free or in use) for as
 * long as it is in the pool. ferryd learns of the connections afterwards, when it samples the words
 * (`ferry show`, metrics, a revoke): opens are counted then, and live ones are shown. A pair leaves
 * the pool when ferryd locks it (a revoke, or a notice naming its reserved ids): its current
 * generation, if live, enters the table under those ids (once: a locked pair is never reused), and
 * an idle or free one is voided. Void pairs go back to the segment once both apps let go of the pool.
 */
import {
  FEATURE,
  formatUri,
  POOL_FREE,
  POOL_MAX_PAIRS,
  POOL_MAX_SLOTS,
  POOL_REVOKED,
  POOL_TAKEN,
  type PoolPair,
  parseUri,
  poolLend,
  poolLock,
  poolReuseWord,
  poolState,
  poolSwap,
  REUSE_CLIENT_DONE,
  REUSE_SERVER_DONE,
  reuseGen,
  reuseIdle,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener } from '../app/listener-table.js';
import { type DaemonConfig, fifoSizeFor } from '../config.js';
import type { PairSegment } from '../segment/pair-segment.js';
import type { Session } from './session.js';

/** One lent pair, as ferryd keeps it. */
export interface PoolPairRec {
  readonly slot: number;
  /** Session ids reserved for the client's and the server's end. */
  readonly clientId: number;
  readonly serverId: number;
  readonly port: number;
  /** Offset of the client's tx fifo (the pool word's home) and rx fifo (the reuse word's). */
  readonly clientTx: number;
  readonly clientRx: number;
  readonly fifoSize: number;
  /**
   * lent: in the pool (free, in use or idle; ferryd's table does not hold it); open: locked, its
   * last generation in the table; revoked: void.
   */
  state: 'lent' | 'open' | 'revoked';
  /** Connections on it ferryd has counted, and of those, how many it counted as ended. */
  seen: number;
  ended: number;
  /**
   * The generation (24 bits, shm/fifo-pool.ts) of the last connection counted in `seen`, -1 before
   * the first: new opens are the generations since, modulo 2^24, since the words wrap after 2^24
   * connections on one pair (minutes for a busy pool pair).
   */
  gen: number;
  /** When it entered the table: the server's end had let go already (not listed as taken). */
  serverDone: boolean;
}

/** What ferryd's last look at a lent pair found (`FastPools.sample`). */
export interface PoolPairLook {
  /** Taken at least once, and not idle: a connection is on it now. */
  live: boolean;
  clientDone: boolean;
  serverDone: boolean;
}

export class FastPool {
  readonly id: number;
  readonly client: App;
  readonly server: App;
  readonly listener: Listener;
  readonly seg: PairSegment;
  /** The URI the client named (its key for the pool), and the two sides' addresses. */
  readonly uri: string;
  readonly serverUri: string;
  readonly scheme: string;
  /** Pairs lent (and, once revoked, void ones until freed), by the client's session id. */
  readonly pairs = new Map<number, PoolPairRec>();
  /** Pairs taken whose sessions may still be in the table, oldest first (pruned as they go). */
  readonly open = new Map<number, PoolPairRec>();
  revoked = false;
  /**
   * Pairs the pool aims to hold: `fastConnectPool` at first, doubled (up to POOL_GROWTH times
   * that) each time the client asks ferryd for a connect the pool could have served: it ran dry,
   * so more connects are in flight at once than it holds.
   */
  size: number;
  /** A top-up is under way (reading the apps' channels inside it must not start another). */
  filling = false;
  /** Apps that have not answered pool-revoke yet. */
  readonly awaiting = new Set<number>();

  constructor(
    id: number,
    client: App,
    server: App,
    listener: Listener,
    seg: PairSegment,
    uri: string,
    serverUri: string,
    size: number,
  ) {
    this.id = id;
    this.size = size;
    this.client = client;
    this.server = server;
    this.listener = listener;
    this.seg = seg;
    this.uri = uri;
    this.serverUri = serverUri;
    this.scheme = parseUri(uri).scheme;
  }

  clientUri(port: number): string {
    return formatUri({ scheme: this.scheme as never, host: '127.0.0.1', port });
  }

  get lent(): number {
    let n = 0;
    for (const p of this.pairs.values()) if (p.state === 'lent') n++;
    return n;
  }
}

/** A pool grows to at most this many times `fastConnectPool`... */
export const POOL_GROWTH = 4;

/** ...and never beyond what one pool-grant carries (POOL_MAX_PAIRS), nor below fastConnectPool. */
function growthCap(fastConnectPool: number): number {
  return Math.max(fastConnectPool, Math.min(fastConnectPool * POOL_GROWTH, POOL_MAX_PAIRS));
}

/** What the pools need of the session layer. */
export interface PoolHost {
  readonly config: DaemonConfig;
  readonly counters: {
    connects: number;
    accepted: number;
    fastConnects: number;
    poolsGranted: number;
    poolsRevoked: number;
    poolsGrown: number;
    poolReclaims: number;
  };
  attached(app: App): boolean;
  /** A session id nobody has (reserved for a pool pair). */
  reserveSessionId(): number;
  clientPort(): number;
  /** The segment if it is still in use (ferryd frees a pair only in a live segment). */
  liveSegment(id: number): PairSegment | undefined;
  /**
   * Puts both ends of a taken pair in the table (established cut-through sessions); `counted`: its
   * opening is in `pooledOpened` already (the metrics must not count it again).
   */
  materialize(pool: FastPool, rec: PoolPairRec, counted: boolean): void;
  /** An end of a pair that entered the table had let go already: as if its close notice came. */
  closeEnd(app: App, sessionId: number): void;
  /**
   * Reads what the pool's two apps already sent (their close notices go lazily): the fifo pairs of
   * sessions both ends have let go of return to the segment. Messages are handled in order, as if
   * they had been read a moment earlier.
   */
  reclaim(pool: FastPool): void;
  /** Runs `fn` once the reply of the request being handled went out (SessionLayer.afterReply). */
  afterReply(fn: () => void): void;
  session(id: number): Session | undefined;
}

export class FastPools {
  readonly #host: PoolHost;
  readonly #byId = new Map<number, FastPool>();
  /** Live (not revoked) pools by client app and URI. */
  readonly #byClient = new Map<number, Map<string, FastPool>>();
  /** Reserved session ids of lent pairs -> their pool and pair. */
  readonly #reserved = new Map<number, { pool: FastPool; rec: PoolPairRec }>();
  /** Lent pairs each app is charged for (as client or as server). */
  readonly #charged = new Map<number, number>();
  #nextPool = 1;
  /**
   * Connections on pool pairs that never entered the table, counted when sampled: opened, and of
   * those ended (for the metrics of session ends opened and closed, which see table sessions).
   */
  pooledOpened = 0;
  pooledEnded = 0;

  constructor(host: PoolHost) {
    this.#host = host;
  }

  /** Pairs lent to or for `app` and not yet taken into the table: counted as its sessions. */
  reservedOf(app: App): number {
    return this.#charged.get(app.id) ?? 0;
  }

  get size(): number {
    return this.#byId.size;
  }

  /** For `ferry show stats`: pools and their lent pairs. */
  stats(): { pools: number; lentPairs: number } {
    let lent = 0;
    for (const p of this.#byId.values()) if (!p.revoked) lent += p.lent;
    let live = 0;
    for (const p of this.#byId.values()) if (!p.revoked) live++;
    return { pools: live, lentPairs: lent };
  }

  /**
   * Reads every lent pair's words and counts what happened on them since the last look: each new
   * generation is a fast connect (and an accept of the listener), each finished one an ended
   * connection. The words are hostile: a count that goes backwards or jumps by 2^23 or more is
   * ignored (nothing else depends on it). Calls `live` for each pair a connection is on now.
   */
  sample(live?: (pool: FastPool, rec: PoolPairRec, look: PoolPairLook) => void): void {
    for (const pool of this.#byId.values()) {
      if (pool.revoked) continue;
      for (const rec of pool.pairs.values()) {
        if (rec.state !== 'lent') continue;
        const look = this.#look(pool, rec);
        if (look.live && live) live(pool, rec, look);
      }
    }
  }

  /** One pair: counts new opens and ends; what it found. */
  #look(pool: FastPool, rec: PoolPairRec): PoolPairLook {
    const h = this.#host;
    const w = pool.seg.fifoHeader(rec.clientTx);
    const taken = poolState(w.buffer, rec.clientTx - w.base) === POOL_TAKEN;
    const r = pool.seg.fifoHeader(rec.clientRx);
    const reuse = poolReuseWord(r.buffer, rec.clientRx - r.base);
    if (!taken || reuse < 0) return { live: false, clientDone: false, serverDone: false };
    const gen = reuseGen(reuse);
    const idle = reuseIdle(reuse);
    // Generations wrap: the distance is taken modulo 2^24 (a full wrap between two looks is not
    // seen; a scribble backwards reads as a jump of 2^23 or more and is ignored).
    const newOpens = (gen - rec.gen) & 0xff_ffff;
    if (newOpens > 0 && newOpens < 0x80_0000) {
      rec.gen = gen;
      rec.seen += newOpens;
      h.counters.fastConnects += newOpens;
      h.counters.connects += newOpens;
      h.counters.accepted += newOpens;
      pool.listener.accepted += newOpens;
      this.pooledOpened += newOpens;
    }
    // Every connection counted has ended but the last, which has if the word is idle in its
    // generation (not in one a scribble jumped to, which was not counted).
    const ends = idle && gen === rec.gen ? rec.seen : rec.seen - 1;
    const newEnds = ends - rec.ended;
    if (newEnds > 0) {
      rec.ended += newEnds;
      this.pooledEnded += newEnds;
    }
    return {
      live: !idle,
      clientDone: (reuse & REUSE_CLIENT_DONE) !== 0,
      serverDone: (reuse & REUSE_SERVER_DONE) !== 0,
    };
  }

  /**
   * A cut-through connect from `client` on `uri` (as it named it) to `listener` just passed every
   * check: lend the pair a pool (or top up the one it has).
   */
  afterConnect(
    client: App,
    server: App,
    listener: Listener,
    uri: string,
    serverUri: string,
    seg: PairSegment,
  ): void {
    const h = this.#host;
    if (h.config.fastConnectPool === 0) return;
    if (!hasFastConnect(client) || !hasFastConnect(server)) return;
    let pool = this.#byClient.get(client.id)?.get(uri);
    // A connect placed in another segment (this one was full) leaves the pool where it is: only a
    // different listener or address makes it stale.
    if (pool && (pool.listener !== listener || pool.server !== server || pool.serverUri !== serverUri)) {
      this.revoke(pool);
      pool = undefined;
    }
    if (pool) {
      // The client asked ferryd although it holds a pool for this URI: the pool was empty (or its
      // pairs were taken by connects still in flight). Grow it to the demand, bounded.
      const cap = growthCap(h.config.fastConnectPool);
      if (pool.size < cap) {
        pool.size = Math.min(cap, pool.size * 2);
        h.counters.poolsGrown++;
      }
    } else {
      if (!seg.mappedBy.has(client.id) || !seg.mappedBy.has(server.id)) return;
      pool = new FastPool(
        this.#nextPool++,
        client,
        server,
        listener,
        seg,
        uri,
        serverUri,
        h.config.fastConnectPool,
      );
      this.#byId.set(pool.id, pool);
      let m = this.#byClient.get(client.id);
      if (!m) {
        m = new Map();
        this.#byClient.set(client.id, m);
      }
      m.set(uri, pool);
      h.counters.poolsGranted++;
    }
    this.#topUp(pool);
  }

  /**
   * The first notice naming session `id` of `app`, when it is a reserved one: both ends enter the
   * table. True when it did (the caller finds the session now).
   */
  open(app: App, id: number): boolean {
    const r = this.#reserved.get(id);
    if (r?.rec.state !== 'lent') return false;
    const { pool, rec } = r;
    const own = id === rec.clientId ? pool.client : pool.server;
    if (own !== app) return false;
    // An app names a pool pair only when ferryd must hold its session (the SDK found it locked, or
    // could not open it). The words decide: a pair still free was taken by nobody, so the notice is
    // a lie (or a bug), and the pair is voided rather than trusted; so is one both ends let go of.
    const entered = this.#lock(pool, rec);
    this.#prune(pool);
    if (!pool.revoked) this.#topUp(pool);
    return entered;
  }

  /**
   * Takes a lent pair out of the pool: free or idle, it is voided; with a connection on it, that
   * connection enters the table (its ends that let go already are closed there). True when it did.
   */
  #lock(pool: FastPool, rec: PoolPairRec): boolean {
    if (swapRevoked(pool, rec) === POOL_FREE) {
      this.#void(pool, rec);
      return false;
    }
    const r = pool.seg.fifoHeader(rec.clientRx);
    const before = poolLock(r.buffer, rec.clientRx - r.base);
    // Counts every generation up to the one locked (a locked word is never idle: that one counts
    // as not ended yet).
    this.#look(pool, rec);
    if (before >= 0 && reuseIdle(before) && rec.seen > 0) {
      // Both ends had let go of it: nothing to put in the table.
      if (rec.ended < rec.seen) {
        rec.ended++;
        this.pooledEnded++;
      }
      this.#void(pool, rec);
      return false;
    }
    const counted = rec.seen > 0;
    if (!counted) {
      // Not TAKEN by its pool word (a scribble) yet not free: trusted as the notice says, as before.
      rec.seen = 1;
      this.#host.counters.fastConnects++;
      this.#host.counters.connects++;
      this.#host.counters.accepted++;
      pool.listener.accepted++;
    }
    const clientDone = before >= 0 && (before & REUSE_CLIENT_DONE) !== 0;
    const serverDone = before >= 0 && (before & REUSE_SERVER_DONE) !== 0;
    rec.serverDone = serverDone;
    this.#take(pool, rec, counted);
    if (clientDone) this.#host.closeEnd(pool.client, rec.clientId);
    if (serverDone) this.#host.closeEnd(pool.server, rec.serverId);
    return true;
  }

  /** The app answered pool-revoke. */
  release(app: App, poolId: number): void {
    const pool = this.#byId.get(poolId);
    if (!pool?.revoked || !pool.awaiting.delete(app.id)) return;
    this.#maybeFree(pool);
  }

  /** Revokes every pool (a reload changed rules, limits or namespaces). */
  revokeAll(): void {
    for (const p of [...this.#byId.values()]) if (!p.revoked) this.revoke(p);
  }

  /** Revokes the pools of a listener that went away. */
  revokeListener(listenerId: number): void {
    for (const p of [...this.#byId.values()]) if (!p.revoked && p.listener.id === listenerId) this.revoke(p);
  }

  /**
   * A listener appeared on `port` of `scheme`: a URI that reached another listener may now reach
   * this one (own namespace first), so pools whose URI names that port go.
   */
  revokePort(scheme: string, port: number): void {
    for (const p of [...this.#byId.values()]) {
      if (p.revoked) continue;
      const u = parseUri(p.uri);
      if (u.scheme === scheme && (u.port === port || port === 0)) this.revoke(p);
    }
  }

  /** Revokes the pools `app` takes part in (it is at its session limit, or gone). */
  revokeApp(app: App): void {
    for (const p of [...this.#byId.values()]) {
      if (!p.revoked && (p.client === app || p.server === app)) this.revoke(p);
    }
  }

  /** The app is gone: its pools are revoked and it answers nothing more. */
  appGone(app: App): void {
    this.revokeApp(app);
    for (const p of [...this.#byId.values()]) {
      if (p.awaiting.delete(app.id)) this.#maybeFree(p);
    }
  }

  /**
   * Closes a pool: every pair not taken is voided (after which no client can take it), every taken
   * one enters the table, and both apps hear pool-revoke (the server before any teardown notice for
   * those sessions, so it has accepted them when their reset comes).
   */
  revoke(pool: FastPool): void {
    if (pool.revoked) return;
    const h = this.#host;
    pool.revoked = true;
    h.counters.poolsRevoked++;
    this.#byClient.get(pool.client.id)?.delete(pool.uri);
    for (const rec of [...pool.pairs.values()]) {
      if (rec.state === 'lent') this.#lock(pool, rec);
    }
    // Taken pairs whose sessions are still in the table: the server may not have accepted them yet.
    const taken: number[] = [];
    for (const rec of pool.open.values())
      if (h.session(rec.serverId) && !rec.serverDone) taken.push(rec.slot);
    pool.open.clear();
    for (const app of new Set([pool.server, pool.client])) {
      if (!h.attached(app)) continue;
      pool.awaiting.add(app.id);
      // Chunks: all but the last say `more`, so the server finishes the pool after the last one.
      for (let i = 0; i === 0 || i < taken.length; i += POOL_MAX_SLOTS) {
        const chunk = taken.slice(i, i + POOL_MAX_SLOTS);
        const more = i + POOL_MAX_SLOTS < taken.length;
        app.send(
          { t: 'pool-revoke', id: 0, pool: pool.id, taken: chunk, ...(more ? { more } : {}) },
          [],
          'soon',
        );
      }
    }
    this.#maybeFree(pool);
  }

  #take(pool: FastPool, rec: PoolPairRec, counted: boolean): void {
    this.#uncharge(pool, rec);
    rec.state = 'open';
    pool.pairs.delete(rec.clientId);
    pool.open.set(rec.clientId, rec);
    this.#host.materialize(pool, rec, counted);
  }

  /** Forgets a few taken pairs whose sessions have left the table (amortised: a few per connect). */
  #prune(pool: FastPool): void {
    let n = 0;
    for (const [id, rec] of pool.open) {
      if (n++ >= 4) break;
      pool.open.delete(id);
      // Still in use: to the back of the line.
      if (this.#host.session(rec.serverId)) pool.open.set(id, rec);
    }
  }

  #void(pool: FastPool, rec: PoolPairRec): void {
    this.#uncharge(pool, rec);
    rec.state = 'revoked';
  }

  #uncharge(pool: FastPool, rec: PoolPairRec): void {
    this.#reserved.delete(rec.clientId);
    this.#reserved.delete(rec.serverId);
    for (const app of [pool.client, pool.server]) {
      const n = (this.#charged.get(app.id) ?? 0) - 1;
      if (n > 0) this.#charged.set(app.id, n);
      else this.#charged.delete(app.id);
    }
  }

  /** Once nobody holds the pool any more, its void pairs return to the segment. */
  #maybeFree(pool: FastPool): void {
    if (!pool.revoked || pool.awaiting.size > 0) return;
    const seg = this.#host.liveSegment(pool.seg.id) === pool.seg ? pool.seg : null;
    for (const rec of pool.pairs.values()) if (rec.state === 'revoked') seg?.freePair(rec.slot);
    this.#byId.delete(pool.id);
  }

  /**
   * Lends pairs up to the pool size, within both apps' session headroom. When the segment has no
   * room left, most of it is often held by connections both apps closed whose close notices ferryd
   * has not read yet (they are sent lazily): it reads them and tries once more, after the reply of
   * the request under way (the connect that asked for this top-up): what it reads may be the death
   * of the server, which resets that connect's session, and the client must have its reply first.
   */
  #topUp(pool: FastPool, reclaim = true): void {
    if (pool.filling) return;
    pool.filling = true;
    let short = false;
    try {
      short = this.#lend(pool);
    } finally {
      pool.filling = false;
    }
    if (!short || !reclaim || pool.revoked) return;
    this.#host.afterReply(() => {
      if (pool.revoked) return;
      this.#host.counters.poolReclaims++;
      this.#host.reclaim(pool);
      if (!pool.revoked) this.#topUp(pool, false);
    });
  }

  /** One top-up; true when the segment ran out of room before the pool was full. */
  #lend(pool: FastPool): boolean {
    const h = this.#host;
    const c = h.config;
    if (!h.attached(pool.client) || !h.attached(pool.server)) return false;
    if (!pool.seg.mappedBy.has(pool.client.id) || !pool.seg.mappedBy.has(pool.server.id)) return false;
    const self = pool.client === pool.server;
    const room = (a: App) => c.maxSessionsPerApp - a.sessions.size - this.reservedOf(a);
    // A reload may have lowered fastConnectPool (it also revokes the pool; this is belt and braces).
    const target = Math.min(pool.size, growthCap(c.fastConnectPool));
    let want = Math.min(target - pool.lent, room(pool.client), room(pool.server));
    if (self) want = Math.min(want, Math.floor(room(pool.client) / 2));
    // Below half full only: one grant tops up several pairs, not one message per connect.
    if (want <= 0 || (pool.lent > 0 && want < Math.ceil(target / 2))) return false;
    const size = fifoSizeFor(c, 0);
    const clientSide = pool.seg.sideOf(pool.client.id);
    const grant: PoolPair[] = [];
    const serve: PoolPair[] = [];
    let short = false;
    for (let i = 0; i < want; i++) {
      const pair = pool.seg.allocPair(size, size);
      if (!pair) {
        short = true;
        break;
      }
      const aSide = clientSide === 'a';
      const clientTx = aSide ? pair.a2bOffset : pair.b2aOffset;
      const clientRx = aSide ? pair.b2aOffset : pair.a2bOffset;
      const w = pool.seg.fifoHeader(clientTx);
      poolLend(w.buffer, clientTx - w.base);
      const rec: PoolPairRec = {
        slot: pair.slot,
        clientId: h.reserveSessionId(),
        serverId: h.reserveSessionId(),
        port: h.clientPort(),
        clientTx,
        clientRx,
        fifoSize: size,
        state: 'lent',
        seen: 0,
        ended: 0,
        gen: -1,
        serverDone: false,
      };
      pool.pairs.set(rec.clientId, rec);
      this.#reserved.set(rec.clientId, { pool, rec });
      this.#reserved.set(rec.serverId, { pool, rec });
      for (const app of [pool.client, pool.server]) this.#charged.set(app.id, this.reservedOf(app) + 1);
      const seg = pool.seg.id;
      grant.push({
        session: rec.clientId,
        port: rec.port,
        fifos: {
          segment: seg,
          txOffset: clientTx,
          rxOffset: clientRx,
          txSize: size,
          rxSize: size,
          slot: pair.slot,
        },
      });
      serve.push({
        session: rec.serverId,
        port: rec.port,
        fifos: {
          segment: seg,
          txOffset: clientRx,
          rxOffset: clientTx,
          txSize: size,
          rxSize: size,
          slot: pair.slot,
        },
      });
    }
    if (grant.length === 0) return short;
    // The server hears first: a client that takes a pair at once finds the server knowing it, most
    // of the time (when not, the server catches the pair when pool-serve comes).
    pool.server.send(
      {
        t: 'pool-serve',
        id: 0,
        pool: pool.id,
        listener: pool.listener.id,
        localUri: pool.serverUri,
        pairs: serve,
      },
      [],
      'soon',
    );
    pool.client.send(
      { t: 'pool-grant', id: 0, pool: pool.id, uri: pool.uri, remoteUri: pool.serverUri, pairs: grant },
      [],
      'soon',
    );
    return short;
  }
}

/** ferryd's swap FREE -> REVOKED on a pair's pool word; the value found (POOL_FREE: ferryd won). */
function swapRevoked(pool: FastPool, rec: PoolPairRec): number {
  const w = pool.seg.fifoHeader(rec.clientTx);
  return poolSwap(w.buffer, rec.clientTx - w.base, POOL_REVOKED);
}

function hasFastConnect(app: App): boolean {
  return (app.features & FEATURE.FAST_CONNECT) !== 0;
}
