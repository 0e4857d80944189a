/**
 * Fast connects, the app's side (docs/control-protocol.md, "Fast connects"). As a client, the
 * attachment keeps the pools ferryd lent it, by the URI it named: a connect there takes a pair
 * (compare-and-swap on its pool word, or, for a pair used before, on its reuse word once both ends
 * let go of it) and posts the pair's slot to the server on the event queue; ferryd is not told (it
 * reads the words when it samples). As a server, it keeps the pairs of the pools lent for its
 * listeners, by segment and slot: an event on such a slot whose words say taken, in a generation it
 * has not accepted, is a new connection. Each end marks its own let-go in the reuse word when its
 * session ends, so the same pair serves the next connect without ferryd (shm/fifo-pool.ts).
 *
 * Everything read from shared memory is hostile: the server trusts only the pairs ferryd described
 * (offsets, slots, session ids come from the control channel), and a pool word is only a hint that
 * is re-read, never a way to reach memory ferryd did not name.
 */
import { type FerryError, ferryError } from '../errors.js';
import type {
  Accepted,
  AppRequest,
  FifoPairRef,
  PoolGrant,
  PoolPair,
  PoolRevoke,
  PoolServe,
} from '../proto/ctrl/messages.js';
import { formatUri, parseUri, type SessionUri } from '../proto/uri.js';
import {
  fifoMemory,
  POOL_FREE,
  POOL_REVOKED,
  POOL_TAKEN,
  poolEndAt,
  poolLock,
  poolLockAt,
  poolRetakeAt,
  poolStateAt,
  poolSwap,
  poolSwapAt,
  REUSE_CLIENT_DONE,
  REUSE_LOCKED,
  REUSE_SERVER_DONE,
  rearmFifoAt,
  reuseGen,
} from '../shm/index.js';
import type { AppSegment } from './app-segment.js';
import { AppSession, type PairMemory, type PoolTie } from './app-session.js';
import {
  type PoolAccepted,
  poolAccepted,
  poolReleaseMessage,
  sessionNoticeMessage,
} from './control-messages.js';

/** What the pools need of their attachment. */
export interface PoolOwner {
  segment(id: number): AppSegment | undefined;
  /** One-way notices to ferryd (built in control-messages.ts). */
  notify(msg: AppRequest, ring: 'soon' | 'lazy'): void;
  /** Hands an accepted session to the listener (as ferryd's `accepted` would); true if one took it. */
  accept(msg: Accepted): boolean;
  /** Fails a session this app holds (its reset handler). */
  fail(sessionId: number, err: FerryError): void;
}

interface ClientPool {
  id: number;
  /** The grant's `remoteUri`, parsed once per pool (not once per connect). */
  remote: SessionUri;
  scheme: string;
  /**
   * Pairs not in use by this client, oldest let go first: never taken, or taken before and let go
   * by this end (the server may still hold them: a take skips those for now).
   */
  pairs: ClientPair[];
}

interface ClientPair {
  pair: PoolPair;
  /** This end of each session on it (the pair's port on 127.0.0.1), made once. */
  local: SessionUri;
  /** Its fifos' views, made at its first take and kept while the pair is this client's. */
  mem: PairMemory | null;
  /** Re-arms both fifos before a take of the pair again (made with `mem`). */
  rearm: (() => void) | null;
  /** The generation this client took last, and the tie of its session (one at a time per pair). */
  gen: number;
  tie: PoolTie | null;
}

interface ServedPair {
  pool: ServedPool;
  pair: PoolPair;
  /** The generation of the pair this server accepted last (-1: none): never accepted twice. */
  lastGen: number;
  /** Its fifos' views, made at the first look and kept with the entry (the words and the session's). */
  mem: PairMemory | null;
  /** The client's end of each session on it (the pair's port on 127.0.0.1), parsed and formatted once. */
  remote: SessionUri;
  remoteUri: string;
  /** The tie of the session accepted last (one at a time per pair), made with `mem`. */
  tie: PoolTie | null;
  /** The accept announced for it, the same for each session on the pair: made once with `tie`. */
  msg: PoolAccepted | null;
}

/**
 * The views of a pair's two fifos in `buf` (the pool and reuse words are in their headers), kept
 * by the pair's entry: `kept` when it is still of `buf`, else made anew; null when the pair cannot
 * be there (ferryd placed it: never for a pair ferryd lent).
 */
function pairMemory(kept: PairMemory | null, buf: ArrayBufferLike, f: FifoPairRef): PairMemory | null {
  if (kept !== null && kept.tx.ctl.buffer === buf) return kept;
  const tx = fifoMemory(buf, f.txOffset, f.txSize);
  const rx = fifoMemory(buf, f.rxOffset, f.rxSize);
  return tx !== null && rx !== null ? { tx, rx } : null;
}

interface ServedPool {
  id: number;
  listener: number;
  localUri: string;
  /** `localUri` parsed once per pool (not once per accept). */
  local: SessionUri;
  /** Pairs not accepted yet, by segment id then slot. */
  pending: Map<number, Map<number, ServedPair>>;
  /** Sessions accepted from it, by slot (to check against ferryd's list at revoke). */
  accepted: Map<number, number>;
  revoked: boolean;
  /** Taken slots gathered from pool-revoke messages until the last one. */
  taken: Set<number>;
}

/**
 * A fast connect's session, ready to bind to a socket, with its two ends already parsed (ferryd
 * named them in the grant; formatting and parsing them again per connect cost the client a
 * regular expression per end).
 */
export interface FastSession {
  session: AppSession;
  local: SessionUri;
  remote: SessionUri;
}

export class FastPools {
  readonly #owner: PoolOwner;
  readonly #clients = new Map<string, ClientPool>();
  readonly #served = new Map<number, ServedPool>();
  /** Server side, per segment: slot -> pending pair (what AppSegment looks up on each event). */
  readonly #bySegment = new Map<number, Map<number, ServedPair>>();
  /** Fast connects made and server-side accepts (tests and diagnostics). */
  taken = 0;
  acceptedCount = 0;

  constructor(owner: PoolOwner) {
    this.#owner = owner;
  }

  /** Pairs on hand for `uri` (tests and diagnostics). */
  available(uri: string): number {
    return this.#clients.get(uri)?.pairs.length ?? 0;
  }

  // ---- client ----

  onGrant(msg: PoolGrant): void {
    let p = this.#clients.get(msg.uri);
    if (p && p.id !== msg.pool) {
      // A newer pool for the same URI: the old one was revoked (its pool-revoke may come later).
      this.#clients.delete(msg.uri);
      p = undefined;
    }
    if (!p) {
      let scheme: string;
      let remote: SessionUri;
      try {
        scheme = parseUri(msg.uri).scheme;
        remote = parseUri(msg.remoteUri);
      } catch {
        return;
      }
      p = { id: msg.pool, remote, scheme, pairs: [] };
      this.#clients.set(msg.uri, p);
    }
    const scheme = p.scheme as SessionUri['scheme'];
    for (const pair of msg.pairs) {
      const local: SessionUri = { scheme, host: '127.0.0.1', port: pair.port };
      p.pairs.push({ pair, local, mem: null, rearm: null, gen: -1, tie: null });
    }
  }

  /**
   * Takes a pair for `uri` and opens its session (the server hears of it through the event queue;
   * ferryd reads the pair's words when it samples); null when there is none free (the caller asks
   * ferryd instead, which grows the pool).
   */
  take(uri: string): FastSession | null {
    const p = this.#clients.get(uri);
    if (!p) return null;
    // Each pair at most once per call: one the server still holds goes to the back of the line.
    for (let n = p.pairs.length; n > 0; n--) {
      const cp = p.pairs.shift();
      if (cp === undefined) break;
      const pair = cp.pair;
      const seg = this.#owner.segment(pair.fifos.segment);
      if (!seg || seg.deleted || seg.failed) continue;
      const f = pair.fifos;
      const mem = pairMemory(cp.mem, seg.buffer, f);
      if (mem === null) continue;
      if (cp.mem !== mem) {
        cp.mem = mem;
        cp.tie = null;
        cp.rearm = () => {
          rearmFifoAt(mem.tx.ctl, f.txSize);
          rearmFifoAt(mem.rx.ctl, f.rxSize);
        };
      }
      let gen: number;
      const word = poolStateAt(mem.tx.ctl);
      if (word === POOL_FREE) {
        // Whoever swaps first owns the pair: a pair ferryd revoked meanwhile is skipped.
        if (poolSwapAt(mem.tx.ctl, POOL_TAKEN) !== POOL_FREE) continue;
        gen = reuseGen(poolStateAt(mem.rx.ctl));
      } else if (word === POOL_TAKEN) {
        const reuse = poolStateAt(mem.rx.ctl);
        if ((reuse & REUSE_LOCKED) !== 0) continue;
        if ((reuse & REUSE_SERVER_DONE) === 0) {
          // The server has not let go of the last connection on it yet.
          p.pairs.push(cp);
          continue;
        }
        // Both ends let go: nobody touches the fifos, so this end makes them empty again.
        gen = poolRetakeAt(mem.tx.ctl, mem.rx.ctl, cp.rearm as () => void);
        if (gen < 0) continue;
      } else {
        continue;
      }
      let session: AppSession;
      try {
        session = new AppSession(pair.session, seg, f, 'ct', mem);
      } catch {
        // ferryd takes it into its table on this notice and ends it for both sides.
        this.#owner.notify(sessionNoticeMessage('reset', pair.session), 'soon');
        continue;
      }
      session.poolTie = this.#clientTie(uri, p, cp, seg, gen);
      this.taken++;
      // Rung at the end of the turn: the connect's first bytes, written in this turn, go with it.
      seg.postSoon(f.slot);
      return { session, local: cp.local, remote: p.remote };
    }
    return null;
  }

  /**
   * The client's end of generation `gen` of `cp`: let go in the reuse word, then back in line. One
   * tie per pair, made at its first take: the pair is taken again only after this end let go.
   */
  #clientTie(uri: string, p: ClientPool, cp: ClientPair, seg: AppSegment, gen: number): PoolTie {
    cp.gen = gen;
    if (cp.tie !== null) return cp.tie;
    // Taken: its views are made (take), and kept for the pair's life.
    const rx = (cp.mem as PairMemory).rx.ctl;
    cp.tie = {
      end: () => {
        if (this.#clients.get(uri) !== p) {
          // The pool is gone (revoked: ferryd locked the pair; ferryd lost): never reused again.
          poolLockAt(rx);
          return false;
        }
        if (!poolEndAt(rx, cp.gen, REUSE_CLIENT_DONE)) return false;
        if (!seg.deleted && !seg.failed) p.pairs.push(cp);
        return true;
      },
      locked: () => (poolStateAt(rx) & REUSE_LOCKED) !== 0,
    };
    return cp.tie;
  }

  // ---- server ----

  onServe(msg: PoolServe, segments: (id: number) => AppSegment | undefined): void {
    let sp = this.#served.get(msg.pool);
    if (!sp) {
      let local: SessionUri;
      try {
        local = parseUri(msg.localUri);
      } catch {
        return;
      }
      sp = {
        id: msg.pool,
        listener: msg.listener,
        localUri: msg.localUri,
        local,
        pending: new Map(),
        accepted: new Map(),
        revoked: false,
        taken: new Set(),
      };
      this.#served.set(msg.pool, sp);
    }
    if (sp.revoked) return;
    for (const pair of msg.pairs) {
      const segId = pair.fifos.segment;
      const seg = segments(segId);
      if (!seg || pair.fifos.slot > seg.maxSlot) continue;
      let bySlot = this.#bySegment.get(segId);
      if (!bySlot) {
        bySlot = new Map();
        this.#bySegment.set(segId, bySlot);
        seg.poolSlots = bySlot;
        seg.onPoolSlot = (slot) => this.#onSlot(seg, slot);
      }
      const remote: SessionUri = { scheme: sp.local.scheme, host: '127.0.0.1', port: pair.port };
      const entry: ServedPair = {
        pool: sp,
        pair,
        lastGen: -1,
        mem: null,
        remote,
        remoteUri: formatUri(remote),
        tie: null,
        msg: null,
      };
      bySlot.set(pair.fifos.slot, entry);
      let pend = sp.pending.get(segId);
      if (!pend) {
        pend = new Map();
        sp.pending.set(segId, pend);
      }
      pend.set(pair.fifos.slot, entry);
      // The client may have taken it before this message came: its event found nothing then.
      this.#onSlot(seg, pair.fifos.slot);
    }
  }

  /** An event for a pool slot: a connection when the client took the pair. */
  #onSlot(seg: AppSegment, slot: number): void {
    const entry = this.#bySegment.get(seg.id)?.get(slot);
    if (!entry || entry.pool.revoked) return;
    const gen = this.#takenGen(seg, entry, false);
    if (gen >= 0) this.#accept(seg, entry, gen);
  }

  /**
   * The generation a client took the pair in, when it is one this server has not accepted (and has
   * not let go of): -1 otherwise. The words are hostile: at most one accept per generation change,
   * and only of a pair ferryd described. A LOCKED word counts only with `locked` (ferryd listed the
   * pair at revoke, or this server locked it itself after ferryd's loss): on an event it is refused,
   * since ferryd took that pair out of the reuse cycle and a client moving it to a new generation
   * would open a session ferryd neither counts nor will ever reset.
   */
  #takenGen(seg: AppSegment, entry: ServedPair, locked: boolean): number {
    const mem = pairMemory(entry.mem, seg.buffer, entry.pair.fifos);
    if (mem === null) return -1;
    if (entry.mem !== mem) {
      entry.mem = mem;
      entry.tie = null;
    }
    if (poolStateAt(mem.rx.ctl) !== POOL_TAKEN) return -1;
    const reuse = poolStateAt(mem.tx.ctl);
    if ((reuse & REUSE_SERVER_DONE) !== 0) return -1;
    if (!locked && (reuse & REUSE_LOCKED) !== 0) return -1;
    const gen = reuseGen(reuse);
    return gen === entry.lastGen ? -1 : gen;
  }

  #accept(seg: AppSegment, entry: ServedPair, gen: number): void {
    const { pool, pair } = entry;
    const slot = pair.fifos.slot;
    this.#bySegment.get(seg.id)?.delete(slot);
    pool.pending.get(seg.id)?.delete(slot);
    pool.accepted.set(slot, pair.session);
    entry.lastGen = gen;
    this.acceptedCount++;
    const tie = this.#serverTie(seg, entry);
    let msg = entry.msg;
    if (msg === null || msg.tie !== tie) {
      // Nothing keeps or changes an accepted message (its readers take fields): one per pair.
      msg = poolAccepted(pool.listener, pair.session, pair.fifos, pool.localUri, entry.remoteUri, {
        local: pool.local,
        remote: entry.remote,
      });
      msg.tie = tie;
      msg.memory = entry.mem;
      entry.msg = msg;
    }
    if (this.#owner.accept(msg)) return;
    // Nobody listens any more (the server closed meanwhile): reset it, as a closed kernel
    // listener resets the connections in its backlog.
    try {
      const s = new AppSession(pair.session, seg, pair.fifos, 'ct', entry.mem);
      s.reset();
      s.detach();
    } catch {
      // A pair we cannot open: ferryd's reset below still ends it for the client.
    }
    pool.accepted.delete(slot);
    this.#owner.notify(sessionNoticeMessage('reset', pair.session), 'soon');
  }

  /**
   * The server's end of generation `entry.lastGen`: let go in the reuse word, then wait for the next.
   * One tie per pair, made at its first accept: the next is accepted only after this end let go.
   */
  #serverTie(seg: AppSegment, entry: ServedPair): PoolTie {
    if (entry.tie !== null) return entry.tie;
    // Accepted: its views are made (#takenGen), and kept for the entry's life.
    const tx = (entry.mem as PairMemory).tx.ctl;
    entry.tie = {
      end: () => {
        const { pool, pair } = entry;
        const slot = pair.fifos.slot;
        if (pool.accepted.get(slot) === pair.session) pool.accepted.delete(slot);
        if (pool.revoked || this.#served.get(pool.id) !== pool) {
          // Revoked (ferryd locked it) or ferryd lost: the pair is never reused.
          poolLockAt(tx);
          return false;
        }
        const bySlot = this.#bySegment.get(seg.id);
        if (!poolEndAt(tx, entry.lastGen, REUSE_SERVER_DONE)) return false;
        // Single-threaded: the client's next take of it is seen on a later event, after this.
        if (bySlot && !seg.deleted) {
          bySlot.set(slot, entry);
          let pend = pool.pending.get(seg.id);
          if (!pend) {
            pend = new Map();
            pool.pending.set(seg.id, pend);
          }
          pend.set(slot, entry);
        }
        return true;
      },
      locked: () => (poolStateAt(tx) & REUSE_LOCKED) !== 0,
    };
    return entry.tie;
  }

  // ---- both ----

  /**
   * ferryd revoked a pool: a client stops taking from it; a server accepts the pairs ferryd says
   * were taken, and, after the last message of the revoke, drops the rest, resets any connection
   * it accepted that ferryd does not list (a client that wrote the pool word behind ferryd's back),
   * and answers pool-release.
   */
  onRevoke(msg: PoolRevoke): void {
    for (const [uri, p] of this.#clients) if (p.id === msg.pool) this.#clients.delete(uri);
    const sp = this.#served.get(msg.pool);
    if (sp) {
      sp.revoked = true;
      for (const slot of msg.taken) sp.taken.add(slot);
      if (msg.more) return;
      for (const [segId, pend] of sp.pending) {
        const seg = this.#owner.segment(segId);
        for (const [slot, entry] of pend) {
          const gen = seg && sp.taken.has(slot) ? this.#takenGen(seg, entry, true) : -1;
          if (seg && gen >= 0) this.#accept(seg, entry, gen);
          else this.#bySegment.get(segId)?.delete(slot);
        }
      }
      sp.pending.clear();
      const denied = ferryError('ERR_FERRY_DENIED', 'a fast connect on a pair ferryd had revoked');
      for (const [slot, id] of sp.accepted) if (!sp.taken.has(slot)) this.#owner.fail(id, denied);
      this.#served.delete(sp.id);
    } else if (msg.more) {
      return;
    }
    this.#owner.notify(poolReleaseMessage(msg.pool), 'soon');
  }

  /**
   * ferryd is gone: its pools with it. A client takes no more; a server voids every pair no client
   * took (swap FREE -> REVOKED, so a client racing us fails and asks ferryd, which is away) and
   * accepts those taken (they go on as orphan sessions, like any cut-through session).
   */
  onLost(): void {
    this.#clients.clear();
    for (const sp of this.#served.values()) {
      for (const [segId, pend] of sp.pending) {
        const seg = this.#owner.segment(segId);
        for (const entry of [...pend.values()]) {
          if (!seg) continue;
          if (poolSwap(seg.buffer, entry.pair.fifos.rxOffset, POOL_REVOKED) === POOL_FREE) continue;
          // A pair used before: locked, so a client that has not noticed yet cannot take it again.
          poolLock(seg.buffer, entry.pair.fifos.txOffset);
          const gen = this.#takenGen(seg, entry, true);
          if (gen >= 0) this.#accept(seg, entry, gen);
        }
      }
    }
    this.#served.clear();
    for (const [segId] of this.#bySegment) {
      const seg = this.#owner.segment(segId);
      if (seg) {
        seg.poolSlots = null;
        seg.onPoolSlot = null;
      }
    }
    this.#bySegment.clear();
  }

  /** A segment went away: nothing of it can be taken or accepted any more. */
  dropSegment(segId: number): void {
    this.#bySegment.delete(segId);
    for (const p of this.#clients.values()) p.pairs = p.pairs.filter((x) => x.pair.fifos.segment !== segId);
    for (const sp of this.#served.values()) sp.pending.delete(segId);
  }
}
