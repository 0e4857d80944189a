/**
 * Fast connects, the app's side (docs/control-protocol.md, "Fast connects"). As a client, the
 * attachment keeps the pools ferryd lent it, by the URI it named: a connect there takes a pair
 * (compare-and-swap on its pool word), posts the pair's slot to the server on the event queue, and
 * tells ferryd afterwards. As a server, it keeps the pairs of the pools lent for its listeners, by
 * segment and slot: an event on such a slot whose pool word says TAKEN is a new connection.
 *
 * Everything read from shared memory is hostile: the server trusts only the pairs ferryd described
 * (offsets, slots, session ids come from the control channel), and a pool word is only a hint that
 * is re-read, never a way to reach memory ferryd did not name.
 */
import { type FerryError, ferryError } from '../errors.js';
import type {
  Accepted,
  AppRequest,
  PoolGrant,
  PoolPair,
  PoolRevoke,
  PoolServe,
} from '../proto/ctrl/messages.js';
import { formatUri, parseUri, type SessionUri } from '../proto/uri.js';
import { POOL_FREE, POOL_REVOKED, POOL_TAKEN, poolState, poolSwap } from '../shm/index.js';
import type { AppSegment } from './app-segment.js';
import { AppSession } from './app-session.js';
import {
  fastOpenMessage,
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
  pairs: PoolPair[];
  /** Most pairs it held at once: below half of it, fast-open rings ferryd at once (a top-up). */
  most: number;
  /**
   * ferryd was rung for a top-up and has not granted since: later fast-opens go lazily (ferryd
   * tops up when it reads the first; ringing it again per connect only wakes it for nothing).
   */
  asked: boolean;
}

interface ServedPair {
  pool: ServedPool;
  pair: PoolPair;
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
      p = { id: msg.pool, remote, scheme, pairs: [], most: 0, asked: false };
      this.#clients.set(msg.uri, p);
    }
    for (const pair of msg.pairs) p.pairs.push(pair);
    p.most = Math.max(p.most, p.pairs.length);
    p.asked = false;
  }

  /**
   * Takes a pair for `uri` and opens its session (the server hears of it through the event queue,
   * ferryd through `fast-open`); null when there is none (the caller asks ferryd instead).
   */
  take(uri: string): FastSession | null {
    const p = this.#clients.get(uri);
    if (!p) return null;
    for (let pair = p.pairs.pop(); pair !== undefined; pair = p.pairs.pop()) {
      const seg = this.#owner.segment(pair.fifos.segment);
      if (!seg || seg.deleted || seg.failed) continue;
      // Whoever swaps first owns the pair: a pair ferryd revoked meanwhile is skipped.
      if (poolSwap(seg.buffer, pair.fifos.txOffset, POOL_TAKEN) !== POOL_FREE) continue;
      let session: AppSession;
      try {
        session = new AppSession(pair.session, seg, pair.fifos, 'ct');
      } catch {
        this.#owner.notify(sessionNoticeMessage('reset', pair.session), 'soon');
        continue;
      }
      this.taken++;
      // Rung at the end of the turn: the connect's first bytes, written in this turn, go with it.
      seg.postSoon(pair.fifos.slot);
      // Lazily: ferryd needs it only to count and show the session; at once when the pool runs low,
      // so that ferryd tops it up before it is empty.
      const low = p.pairs.length * 2 <= p.most && !p.asked;
      if (low) p.asked = true;
      this.#owner.notify(fastOpenMessage(pair.session), low ? 'soon' : 'lazy');
      return {
        session,
        local: { scheme: p.scheme as SessionUri['scheme'], host: '127.0.0.1', port: pair.port },
        remote: p.remote,
      };
    }
    return null;
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
      const entry = { pool: sp, pair };
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
    if (poolState(seg.buffer, entry.pair.fifos.rxOffset) !== POOL_TAKEN) return;
    this.#accept(seg, entry);
  }

  #accept(seg: AppSegment, entry: ServedPair): void {
    const { pool, pair } = entry;
    const slot = pair.fifos.slot;
    this.#bySegment.get(seg.id)?.delete(slot);
    pool.pending.get(seg.id)?.delete(slot);
    pool.accepted.set(slot, pair.session);
    this.acceptedCount++;
    const remote: SessionUri = { scheme: pool.local.scheme, host: '127.0.0.1', port: pair.port };
    const msg: Accepted = poolAccepted(
      pool.listener,
      pair.session,
      pair.fifos,
      pool.localUri,
      formatUri(remote),
      {
        local: pool.local,
        remote,
      },
    );
    if (this.#owner.accept(msg)) return;
    // Nobody listens any more (the server closed meanwhile): reset it, as a closed kernel
    // listener resets the connections in its backlog.
    try {
      const s = new AppSession(pair.session, seg, pair.fifos, 'ct');
      s.reset();
      s.detach();
    } catch {
      // A pair we cannot open: ferryd's reset below still ends it for the client.
    }
    pool.accepted.delete(slot);
    this.#owner.notify(sessionNoticeMessage('reset', pair.session), 'soon');
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
          if (seg && sp.taken.has(slot)) this.#accept(seg, entry);
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
          if (poolState(seg.buffer, entry.pair.fifos.rxOffset) === POOL_TAKEN) this.#accept(seg, entry);
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
    for (const p of this.#clients.values()) p.pairs = p.pairs.filter((x) => x.fifos.segment !== segId);
    for (const sp of this.#served.values()) sp.pending.delete(segId);
  }
}
