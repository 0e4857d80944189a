/**
 * Bytes through the fifos, counted by ferryd without the apps' help. ferryd placed every fifo and
 * keeps its segments mapped, so it can read the free-running head and tail of each (a few loads,
 * never on the data path): the tail's progress is what the writer enqueued, the head's what the
 * reader consumed. Sampled on a timer, before each `ferry show` and scrape, and once more when a
 * session leaves the table, so totals are exact for sessions that end while their segment is
 * mapped. ferryd carries the bytes of tcp, tls and udp sessions itself and counts them in its pumps
 * (payload bytes); cut-through bytes are only known from the fifos.
 *
 * Hostile input: the indices come from memory the apps write. ferryd reads them at offsets it
 * computed privately, uses them only in arithmetic, and accepts them only when consistent
 * (shm/fifo-probe.ts: magic, the size ferryd chose, fill <= size, indices moving forward); a fifo
 * that fails is marked with the reason and no longer counted. An app can make its own sessions'
 * counts larger than what moved, as it could by really moving the bytes; it cannot make ferryd
 * read outside the fifo's header or throw. A fifo that moves 4 GiB or more between two samples
 * (16 GiB/s at the default 250 ms) is under-counted: the indices are u32.
 */
import {
  checkFifoProbe,
  emptyFifoProbe,
  type FifoPairRef,
  fifoHeaderView,
  readFifoProbe,
} from '@ferry/sdk/internal';
import type { PairSegment } from '../segment/pair-segment.js';
import type { Session } from '../session/session.js';

/** A fifo full this long with no byte consumed is reported as stuck. */
export const STUCK_AFTER_MS = 2000;

interface FifoMeter {
  seg: PairSegment;
  view: Uint32Array;
  size: number;
  transport: string;
  /** Indices last seen (u32) and what they added up to since the fifo was placed. */
  head: number;
  tail: number;
  written: number;
  read: number;
  /** When an index last moved (ms, Date.now()), and since when the fifo has been full (0: not). */
  progressAt: number;
  fullSince: number;
  prodFin: boolean;
  error: string | null;
  /** Session ends that use it (a cut-through fifo is one end's tx and the other's rx). */
  refs: number;
}

export interface FifoView {
  bytes: number;
  fill: number;
  size: number;
  idleMs: number;
  full: boolean;
  stuck: boolean;
  error: string | null;
}

export interface SessionTraffic {
  /** Bytes the app wrote into its tx fifo, and read from its rx fifo. */
  tx: FifoView | null;
  rx: FifoView | null;
}

export interface ByteTotals {
  /** Bytes written into fifos (tx) and consumed from them (rx), by transport. */
  written: number;
  read: number;
}

const probe = emptyFifoProbe();

export class TrafficLedger {
  #meters = new Map<number, FifoMeter>();
  /** Counted bytes of fifos no longer in the table, by transport. */
  #retired = new Map<string, ByteTotals>();
  #corrupt = 0;

  /** Registers the fifos of a session end just placed (`ref` is the app's view of its pair). */
  open(session: Session, seg: PairSegment, ref: FifoPairRef, now = Date.now()): void {
    for (const [offset, size] of [
      [ref.txOffset, ref.txSize],
      [ref.rxOffset, ref.rxSize],
    ] as const) {
      const key = keyOf(seg.id, offset);
      const m = this.#meters.get(key);
      if (m && m.seg === seg) {
        m.refs++;
        continue;
      }
      const w = seg.fifoHeader(offset);
      this.#meters.set(key, {
        seg,
        view: fifoHeaderView(w.buffer, offset - w.base),
        size,
        transport: session.transport,
        head: 0,
        tail: 0,
        written: 0,
        read: 0,
        progressAt: now,
        fullSince: 0,
        prodFin: false,
        error: null,
        refs: 1,
      });
    }
  }

  /** A session end leaves the table: one last sample, then its fifos are retired. */
  close(session: Session, ref: FifoPairRef, now = Date.now()): void {
    for (const offset of [ref.txOffset, ref.rxOffset]) {
      const key = keyOf(session.segmentId, offset);
      const m = this.#meters.get(key);
      if (!m) continue;
      this.#sampleOne(m, now);
      if (--m.refs > 0) continue;
      this.#meters.delete(key);
      const t = this.#totals(this.#retired, m.transport);
      t.written += m.written;
      t.read += m.read;
    }
  }

  sample(now = Date.now()): void {
    for (const m of this.#meters.values()) this.#sampleOne(m, now);
  }

  /** Bytes written into and read from fifos, by transport: retired plus live fifos. */
  totals(): Map<string, ByteTotals> {
    const out = new Map<string, ByteTotals>();
    for (const [k, v] of this.#retired) out.set(k, { ...v });
    for (const m of this.#meters.values()) {
      const t = this.#totals(out, m.transport);
      t.written += m.written;
      t.read += m.read;
    }
    return out;
  }

  /** Bytes waiting in live fifos, by transport. */
  queued(): Map<string, number> {
    const out = new Map<string, number>();
    for (const m of this.#meters.values()) {
      if (m.error === null) out.set(m.transport, (out.get(m.transport) ?? 0) + ((m.tail - m.head) >>> 0));
    }
    return out;
  }

  /** Live fifos that are stuck (full, nothing consumed for STUCK_AFTER_MS), and corrupt ones. */
  health(now = Date.now()): { stuck: number; corrupt: number; fifos: number } {
    let stuck = 0;
    for (const m of this.#meters.values()) if (isStuck(m, now)) stuck++;
    return { stuck, corrupt: this.#corrupt, fifos: this.#meters.size };
  }

  /** One session end's view: its tx fifo (what it wrote) and rx fifo (what it read). */
  view(session: Session, ref: FifoPairRef | null, now = Date.now()): SessionTraffic {
    if (!ref) return { tx: null, rx: null };
    const tx = this.#meters.get(keyOf(session.segmentId, ref.txOffset));
    const rx = this.#meters.get(keyOf(session.segmentId, ref.rxOffset));
    return {
      tx: tx ? fifoView(tx, tx.written, now) : null,
      rx: rx ? fifoView(rx, rx.read, now) : null,
    };
  }

  #sampleOne(m: FifoMeter, now: number): void {
    if (m.error !== null) return;
    if (m.seg.segment.released) return; // unmapped: the last sample stands
    readFifoProbe(m.view, probe);
    const why = checkFifoProbe(probe, m.size, m.head, m.tail);
    if (why !== null) {
      m.error = why;
      this.#corrupt++;
      return;
    }
    const dt = (probe.tail - m.tail) >>> 0;
    const dh = (probe.head - m.head) >>> 0;
    if (dt > 0 || dh > 0) m.progressAt = now;
    m.written += dt;
    m.read += dh;
    m.tail = probe.tail;
    m.head = probe.head;
    m.prodFin = (probe.prodFlags & 1) !== 0;
    const full = (probe.tail - probe.head) >>> 0 === m.size;
    if (!full) m.fullSince = 0;
    else if (m.fullSince === 0 || dh > 0) m.fullSince = now;
  }

  #totals(map: Map<string, ByteTotals>, transport: string): ByteTotals {
    let t = map.get(transport);
    if (!t) {
      t = { written: 0, read: 0 };
      map.set(transport, t);
    }
    return t;
  }
}

function keyOf(segmentId: number, offset: number): number {
  // Offsets are below 2^32 (segments are): the key is exact in a double.
  return segmentId * 0x1_0000_0000 + offset;
}

function isStuck(m: FifoMeter, now: number): boolean {
  return m.error === null && m.fullSince !== 0 && now - m.fullSince >= STUCK_AFTER_MS;
}

function fifoView(m: FifoMeter, bytes: number, now: number): FifoView {
  const fill = (m.tail - m.head) >>> 0;
  return {
    bytes,
    fill,
    size: m.size,
    idleMs: now - m.progressAt,
    full: fill === m.size,
    stuck: isStuck(m, now),
    error: m.error,
  };
}
