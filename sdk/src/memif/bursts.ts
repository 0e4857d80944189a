// Reusable burst objects: typed arrays describing packets that sit in shared memory.
//
// A burst is allocated once and refilled by rxBurst / txAlloc, so the data path allocates nothing
// per packet. Typed arrays hold the validated copy of each descriptor (spec §11.8: the peer can
// rewrite a descriptor at any time, so nothing is read from the ring twice). Views (Uint8Array) are
// only created when asked for.

import { ferryError } from '../errors.js';

/** Where one segment of a received packet lies. */
export interface MemifSegment {
  bytes: Uint8Array;
  offset: number;
  length: number;
}

/** Implemented by the receive queues: hands a burst's buffers back to the peer. */
export interface RxBurstOwner {
  releaseBurst(burst: MemifRxBurst): void;
}

const EMPTY = new Uint8Array(0);

function checkCapacity(capacity: number): void {
  if (!Number.isInteger(capacity) || capacity < 1 || capacity > 65_536) {
    throw ferryError(
      'ERR_OUT_OF_RANGE',
      `burst capacity must be an integer in 1..65536, got ${String(capacity)}`,
    );
  }
}

export class MemifRxBurst {
  readonly capacity: number;
  /** Packets in the burst (0 after release). */
  count = 0;
  /** Total length of packet i (all segments). */
  readonly lengths: Uint32Array;
  /** Offset of packet i's first segment in region `regions[i]`. */
  readonly offsets: Uint32Array;
  /** Region of packet i's first segment. */
  readonly regions: Uint16Array;
  /** Segments of packet i (1 unless chained with NEXT). */
  readonly segCounts: Uint16Array;
  /** For a chained packet: index of its first segment in the seg* arrays. */
  readonly firstSeg: Uint32Array;
  segOffsets: Uint32Array;
  segLengths: Uint32Array;
  segRegions: Uint16Array;
  /** Segments recorded in the seg* arrays (chained packets only). */
  segUsed = 0;
  /** @internal region byte arrays of the connection the burst was filled from. */
  regionBytes: readonly Uint8Array[] = [];
  /** @internal */
  owner: RxBurstOwner | null = null;
  /** @internal ring position to release up to. */
  end = 0;

  constructor(capacity: number) {
    checkCapacity(capacity);
    this.capacity = capacity;
    this.lengths = new Uint32Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.regions = new Uint16Array(capacity);
    this.segCounts = new Uint16Array(capacity);
    this.firstSeg = new Uint32Array(capacity);
    this.segOffsets = new Uint32Array(capacity);
    this.segLengths = new Uint32Array(capacity);
    this.segRegions = new Uint16Array(capacity);
  }

  /** @internal grows the segment arrays (only chained packets use them). */
  growSegments(need: number): void {
    if (need <= this.segOffsets.length) return;
    const n = Math.max(need, this.segOffsets.length * 2);
    const o = new Uint32Array(n);
    o.set(this.segOffsets);
    const l = new Uint32Array(n);
    l.set(this.segLengths);
    const r = new Uint16Array(n);
    r.set(this.segRegions);
    this.segOffsets = o;
    this.segLengths = l;
    this.segRegions = r;
  }

  #check(i: number): void {
    if (!(i >= 0 && i < this.count)) throw ferryError('ERR_OUT_OF_RANGE', `packet ${i} of ${this.count}`);
  }

  /** Total length of packet i. */
  length(i: number): number {
    this.#check(i);
    return this.lengths[i] ?? 0;
  }

  /** The bytes of the region that holds packet i's first segment (no allocation). */
  bytesOf(i: number): Uint8Array {
    return this.regionBytes[this.regions[i] ?? 0] ?? EMPTY;
  }

  /** Number of segments of packet i. */
  segments(i: number): number {
    this.#check(i);
    return this.segCounts[i] ?? 0;
  }

  /** Fills `out` with segment s of packet i and returns it. */
  segment(i: number, s: number, out: MemifSegment = { bytes: EMPTY, offset: 0, length: 0 }): MemifSegment {
    this.#check(i);
    const n = this.segCounts[i] ?? 0;
    if (!(s >= 0 && s < n)) throw ferryError('ERR_OUT_OF_RANGE', `segment ${s} of ${n}`);
    if (n === 1) {
      out.bytes = this.regionBytes[this.regions[i] ?? 0] ?? EMPTY;
      out.offset = this.offsets[i] ?? 0;
      out.length = this.lengths[i] ?? 0;
    } else {
      const k = (this.firstSeg[i] ?? 0) + s;
      out.bytes = this.regionBytes[this.segRegions[k] ?? 0] ?? EMPTY;
      out.offset = this.segOffsets[k] ?? 0;
      out.length = this.segLengths[k] ?? 0;
    }
    return out;
  }

  /**
   * Packet i as a Uint8Array: a zero-copy view into shared memory for a one-segment packet (valid
   * until release), a fresh copy for a chained one.
   */
  packet(i: number): Uint8Array {
    this.#check(i);
    if (this.segCounts[i] === 1) {
      const off = this.offsets[i] ?? 0;
      return this.bytesOf(i).subarray(off, off + (this.lengths[i] ?? 0));
    }
    const out = new Uint8Array(this.lengths[i] ?? 0);
    this.copy(i, out, 0);
    return out;
  }

  /** Copies packet i into dst at dstOffset; returns the bytes copied. Throws if it does not fit. */
  copy(i: number, dst: Uint8Array, dstOffset = 0): number {
    this.#check(i);
    const len = this.lengths[i] ?? 0;
    if (!(dstOffset >= 0) || dstOffset + len > dst.byteLength) {
      throw ferryError('ERR_OUT_OF_RANGE', `packet of ${len} bytes does not fit at ${dstOffset}`);
    }
    const n = this.segCounts[i] ?? 0;
    if (n === 1) {
      const off = this.offsets[i] ?? 0;
      dst.set(this.bytesOf(i).subarray(off, off + len), dstOffset);
      return len;
    }
    let at = dstOffset;
    const first = this.firstSeg[i] ?? 0;
    for (let s = 0; s < n; s++) {
      const k = first + s;
      const bytes = this.regionBytes[this.segRegions[k] ?? 0] ?? EMPTY;
      const off = this.segOffsets[k] ?? 0;
      const l = this.segLengths[k] ?? 0;
      dst.set(bytes.subarray(off, off + l), at);
      at += l;
    }
    return at - dstOffset;
  }

  /** Hands the buffers back to the peer; views into them must not be used afterwards. Idempotent. */
  release(): void {
    const owner = this.owner;
    if (owner !== null) owner.releaseBurst(this);
    this.owner = null;
    this.count = 0;
    this.segUsed = 0;
  }
}

export class MemifTxBurst {
  readonly capacity: number;
  /** Reserved buffers after txAlloc. */
  count = 0;
  /** Region of buffer i. */
  readonly regions: Uint16Array;
  /** Offset of buffer i in its region. */
  readonly offsets: Uint32Array;
  /** Capacity of buffer i. */
  readonly capacities: Uint32Array;
  /** Set by the caller: bytes written into buffer i (1..capacities[i]). */
  readonly lengths: Uint32Array;
  /** @internal */
  regionBytes: readonly Uint8Array[] = [];
  /** @internal the queue and ring position the reservation was taken at. */
  owner: object | null = null;
  /** @internal */
  start = 0;
  /** @internal */
  stamp = 0;

  constructor(capacity: number) {
    checkCapacity(capacity);
    this.capacity = capacity;
    this.regions = new Uint16Array(capacity);
    this.offsets = new Uint32Array(capacity);
    this.capacities = new Uint32Array(capacity);
    this.lengths = new Uint32Array(capacity);
  }

  /** The bytes of the region that holds buffer i (no allocation). */
  bytesOf(i: number): Uint8Array {
    return this.regionBytes[this.regions[i] ?? 0] ?? EMPTY;
  }

  /** A view of buffer i's full capacity (allocates a view; bytesOf + offsets does not). */
  buffer(i: number): Uint8Array {
    if (!(i >= 0 && i < this.count)) throw ferryError('ERR_OUT_OF_RANGE', `buffer ${i} of ${this.count}`);
    const off = this.offsets[i] ?? 0;
    return this.bytesOf(i).subarray(off, off + (this.capacities[i] ?? 0));
  }
}
