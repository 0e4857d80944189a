/**
 * ferryd's observer: follows the sessions of one daemon through the diagnostics channels of
 * events.ts, meters their fifos (traffic.ts) and keeps the totals of sessions that left the table,
 * for `ferry show`, `ferry top` and the metrics. Always on: a sample is a few loads per live fifo,
 * on a timer that does not keep the process alive.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FifoPairRef } from '@ferry/sdk/internal';
import type { Session } from '../session/session.js';
import type { SessionLayer } from '../session/session-layer.js';
import { sessionFreed, sessionOpened } from './events.js';
import { TrafficLedger } from './traffic.js';

export const SAMPLE_INTERVAL_MS = 250;
/**
 * Every this many samples (10 s), the fast-connect pools' words are read too (FastPools.sample):
 * ferryd counts a pair's connections by the distance between two looks at its 24-bit generation,
 * which stops being readable once a pair served 2^23 connections between looks (minutes on a busy
 * pair); scrapes and `ferry show` look too, but nothing guarantees either comes.
 */
export const POOL_SAMPLE_EVERY = 40;

/** What ferryd's end of a session it carries counts (tcp-pump.ts, udp-relay.ts). */
interface EndCounts {
  bytesIn: number;
  bytesOut: number;
  datagramsIn?: number;
  datagramsOut?: number;
  dropsIn?: number;
}

export interface CarriedTotals {
  /** Payload bytes ferryd moved: from the app to the network (tx) and back (rx). */
  tx: number;
  rx: number;
  datagramsTx: number;
  datagramsRx: number;
  drops: number;
}

export class DaemonObserver {
  readonly traffic = new TrafficLedger();
  /** Session ends opened, and closed by result ('closed', 'reset'), by transport. */
  readonly opened = new Map<string, number>();
  readonly closed = new Map<string, Map<string, number>>();
  #carriedRetired = new Map<string, CarriedTotals>();
  #layer: SessionLayer;
  #timer: NodeJS.Timeout | null = null;
  #ticks = 0;
  #onOpened = (msg: unknown) => {
    const { owner, session } = msg as { owner: unknown; session: Session };
    if (owner !== this.#layer) return;
    this.opened.set(session.transport, (this.opened.get(session.transport) ?? 0) + 1);
    const ref = this.#ref(session);
    const seg = this.#layer.segments.get(session.segmentId);
    if (ref && seg) this.traffic.open(session, seg, ref);
  };
  #onFreed = (msg: unknown) => {
    const { owner, session } = msg as { owner: unknown; session: Session };
    if (owner !== this.#layer) return;
    const result = session.state === 'reset' ? 'reset' : 'closed';
    let byResult = this.closed.get(session.transport);
    if (!byResult) {
      byResult = new Map();
      this.closed.set(session.transport, byResult);
    }
    byResult.set(result, (byResult.get(result) ?? 0) + 1);
    const ref = this.#ref(session);
    if (ref) this.traffic.close(session, ref);
    const end = endOf(session);
    if (end) addCarried(totalsFor(this.#carriedRetired, session.transport), end);
  };

  constructor(layer: SessionLayer) {
    this.#layer = layer;
    subscribe(sessionOpened.name, this.#onOpened);
    subscribe(sessionFreed.name, this.#onFreed);
  }

  start(intervalMs = SAMPLE_INTERVAL_MS): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.tick(), intervalMs);
    this.#timer.unref();
  }

  /** One sample (the timer's): the traffic meters, and the pools' words every POOL_SAMPLE_EVERY. */
  tick(): void {
    this.traffic.sample();
    if (++this.#ticks >= POOL_SAMPLE_EVERY) {
      this.#ticks = 0;
      this.#layer.pools.sample();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    unsubscribe(sessionOpened.name, this.#onOpened);
    unsubscribe(sessionFreed.name, this.#onFreed);
  }

  /** What ferryd carried (tcp, tls, udp), by transport: sessions gone plus live ones. */
  carried(): Map<string, CarriedTotals> {
    const out = new Map<string, CarriedTotals>();
    for (const [k, v] of this.#carriedRetired) out.set(k, { ...v });
    for (const s of this.#layer.sessions.values()) {
      const end = endOf(s);
      if (end) addCarried(totalsFor(out, s.transport), end);
    }
    return out;
  }

  /** The fifo pair of a session end as its app sees it; null when it has none (or no longer). */
  refOf(s: Session): FifoPairRef | null {
    return this.#ref(s);
  }

  #ref(s: Session): FifoPairRef | null {
    if (!s.hasFifos) return null;
    try {
      return this.#layer.fifoRef(s);
    } catch {
      return null;
    }
  }
}

function endOf(s: Session): EndCounts | null {
  // A relay also counts datagrams (udp-relay.ts); SessionEnd declares only the bytes.
  return s.end as EndCounts | null;
}

function totalsFor(map: Map<string, CarriedTotals>, transport: string): CarriedTotals {
  let t = map.get(transport);
  if (!t) {
    t = { tx: 0, rx: 0, datagramsTx: 0, datagramsRx: 0, drops: 0 };
    map.set(transport, t);
  }
  return t;
}

function addCarried(t: CarriedTotals, end: EndCounts): void {
  t.tx += end.bytesOut;
  t.rx += end.bytesIn;
  t.datagramsTx += end.datagramsOut ?? 0;
  t.datagramsRx += end.datagramsIn ?? 0;
  t.drops += end.dropsIn ?? 0;
}
