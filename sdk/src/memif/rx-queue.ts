// Receive side of one queue pair: parse published descriptors into a burst, release them later.
//
// Two variants because the roles own different indices (spec §8.2): a server receives on a C2S
// ring (client writes head, we write tail), a client receives on an S2C ring (server writes tail,
// we write head and refill). Both copy every descriptor into locals, validate the copy, and record
// only validated values in the burst; any impossible index move or bad descriptor calls `fail`,
// which takes the link down (the queue returns 0 from then on).

import { MEMIF_DESC_FLAG_NEXT } from '../proto/memif/index.js';
import type { MemifRxBurst, RxBurstOwner } from './bursts.js';
import type { MemifRing, RegionView } from './ring.js';
import type { MemifQueueStats } from './stats.js';

export type FailFn = (detail: string) => void;

export interface RxQueue extends RxBurstOwner {
  readonly ring: MemifRing;
  dead: boolean;
  /** Parses up to `max` (at most burst.capacity) packets into burst, releasing what it held first. */
  fill(burst: MemifRxBurst, max: number): number;
  /** True if the peer has published something not parsed yet. */
  pending(): boolean;
}

export interface RxLimits {
  /** Largest segment (descriptor length) accepted. */
  maxSegment: number;
  /** Most segments per packet. */
  maxChain: number;
}

/** Server side: receives client-to-server packets. */
export class C2sRxQueue implements RxQueue {
  readonly ring: MemifRing;
  dead = false;
  readonly #regions: readonly RegionView[];
  readonly #regionBytes: readonly Uint8Array[];
  readonly #regionSizes: Float64Array;
  readonly #limits: RxLimits;
  readonly #stats: MemifQueueStats;
  readonly #fail: FailFn;
  /** Parsed up to here (free-running, 16 bits). */
  #lastHead = 0;
  /** Released up to here: the value we last stored in tail. */
  #tail = 0;

  constructor(
    ring: MemifRing,
    regions: readonly RegionView[],
    limits: RxLimits,
    stats: MemifQueueStats,
    fail: FailFn,
  ) {
    this.ring = ring;
    this.#regions = regions;
    this.#regionBytes = regions.map((r) => r.u8);
    this.#regionSizes = Float64Array.from(regions, (r) => r.size);
    this.#limits = limits;
    this.#stats = stats;
    this.#fail = fail;
  }

  pending(): boolean {
    return !this.dead && this.ring.loadHead() !== this.#lastHead;
  }

  fill(burst: MemifRxBurst, max: number): number {
    if (burst.owner !== null) burst.release();
    if (this.dead) return 0;
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const head = Atomics.load(u16, ring.headIdx);
    let cur = this.#lastHead;
    const avail = (head - cur) & 0xffff;
    if (avail === 0) return 0;
    if (avail > ring.size || ((head - this.#tail) & 0xffff) > ring.size) {
      this.#fail(
        `C2S ring ${ring.offset}: head moved to ${head} (parsed ${cur}, tail ${this.#tail}, size ${ring.size})`,
      );
      return 0;
    }
    const stop = cur + avail;
    const mask = ring.mask;
    const desc16 = ring.desc16;
    const desc32 = ring.desc32;
    const nRegions = this.#regions.length;
    const sizes = this.#regionSizes;
    const maxSeg = this.#limits.maxSegment;
    const cap = Math.min(max, burst.capacity);
    const lengths = burst.lengths;
    const offsets = burst.offsets;
    const regions = burst.regions;
    const segCounts = burst.segCounts;
    let n = 0;
    let bytes = 0;
    while (n < cap && cur < stop) {
      const slot = cur & mask;
      const i16 = desc16 + slot * 8;
      const i32 = desc32 + slot * 4;
      const flags = u16[i16] ?? 0;
      const region = u16[i16 + 1] ?? 0;
      const len = u32[i32 + 1] ?? 0;
      const off = u32[i32 + 2] ?? 0;
      if (region >= nRegions || len === 0 || len > maxSeg || off + len > (sizes[region] ?? 0)) {
        this.#fail(`C2S descriptor ${slot}: region ${region} offset ${off} length ${len}`);
        return 0;
      }
      if ((flags & MEMIF_DESC_FLAG_NEXT) === 0) {
        lengths[n] = len;
        offsets[n] = off;
        regions[n] = region;
        segCounts[n] = 1;
        n++;
        bytes += len;
        cur++;
        continue;
      }
      const used = this.#chain(burst, n, cur, stop, flags, region, len, off);
      if (used < 0) return 0; // failed
      if (used === 0) break; // incomplete chain: wait for the rest
      bytes += lengths[n] ?? 0;
      n++;
      cur += used;
    }
    burst.count = n;
    burst.end = cur & 0xffff;
    burst.owner = this;
    burst.regionBytes = this.#regionBytes;
    this.#lastHead = cur & 0xffff;
    this.#stats.packets += n;
    this.#stats.bytes += bytes;
    return n;
  }

  /** Records a chained packet starting at `cur`; returns slots used, 0 if incomplete, -1 on failure. */
  #chain(
    burst: MemifRxBurst,
    n: number,
    cur: number,
    stop: number,
    flags0: number,
    region0: number,
    len0: number,
    off0: number,
  ): number {
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const maxChain = this.#limits.maxChain;
    const maxSeg = this.#limits.maxSegment;
    const nRegions = this.#regions.length;
    const first = burst.segUsed;
    let k = first;
    let total = 0;
    let pos = cur;
    let flags = flags0;
    let region = region0;
    let len = len0;
    let off = off0;
    for (;;) {
      burst.growSegments(k + 1);
      burst.segOffsets[k] = off;
      burst.segLengths[k] = len;
      burst.segRegions[k] = region;
      k++;
      total += len;
      pos++;
      if ((flags & MEMIF_DESC_FLAG_NEXT) === 0) break;
      if (pos >= stop) {
        // The rest is not published yet, unless the chain already fills the ring: then the rest
        // can never come (the client has no free slot), and waiting would stall the link forever.
        if (pos - cur < ring.size) return 0;
        this.#fail(`C2S chain of ${pos - cur} slots fills the ring without ending`);
        return -1;
      }
      if (k - first >= maxChain) {
        this.#fail(`C2S chain longer than ${maxChain} segments`);
        return -1;
      }
      const slot = pos & ring.mask;
      const i16 = ring.desc16 + slot * 8;
      const i32 = ring.desc32 + slot * 4;
      flags = u16[i16] ?? 0;
      region = u16[i16 + 1] ?? 0;
      len = u32[i32 + 1] ?? 0;
      off = u32[i32 + 2] ?? 0;
      if (region >= nRegions || len === 0 || len > maxSeg || off + len > (this.#regionSizes[region] ?? 0)) {
        this.#fail(`C2S descriptor ${slot}: region ${region} offset ${off} length ${len}`);
        return -1;
      }
    }
    burst.segUsed = k;
    burst.lengths[n] = total;
    burst.offsets[n] = off0;
    burst.regions[n] = region0;
    burst.segCounts[n] = k - first;
    burst.firstSeg[n] = first;
    return pos - cur;
  }

  releaseBurst(burst: MemifRxBurst): void {
    if (this.dead) return;
    const end = burst.end;
    const tail = this.#tail;
    const d = (end - tail) & 0xffff;
    // Bursts released out of order: the later one already moved tail past this one.
    if (d === 0 || d > ((this.#lastHead - tail) & 0xffff)) return;
    const ring = this.ring;
    const u16 = ring.region.u16;
    // Hygiene against peers that do not clear flags on the first slot of a packet (spec §11.11).
    for (let s = tail; s !== ((tail + d) & 0xffff); s = (s + 1) & 0xffff)
      u16[ring.desc16 + (s & ring.mask) * 8] = 0;
    ring.storeTail(end);
    this.#tail = end;
  }
}

/** Client side: receives server-to-client packets into the buffers it lent the server. */
export class S2cRxQueue implements RxQueue {
  readonly ring: MemifRing;
  dead = false;
  readonly #regionBytes: readonly Uint8Array[];
  readonly #regionIndex: number;
  /** Offset of slot 0's buffer; slot s's buffer is at bufBase + s * bufferSize. */
  readonly #bufBase: number;
  readonly #bufferSize: number;
  readonly #limits: RxLimits;
  readonly #stats: MemifQueueStats;
  readonly #fail: FailFn;
  /** Parsed up to here. */
  #lastTail = 0;
  /** Released (and refilled) up to here. */
  #released = 0;
  /** The value we last stored in head. */
  #head = 0;

  constructor(
    ring: MemifRing,
    regionBytes: readonly Uint8Array[],
    bufBase: number,
    bufferSize: number,
    limits: RxLimits,
    stats: MemifQueueStats,
    fail: FailFn,
  ) {
    this.ring = ring;
    this.#regionBytes = regionBytes;
    this.#regionIndex = ring.regionIndex;
    this.#bufBase = bufBase;
    this.#bufferSize = bufferSize;
    this.#limits = limits;
    this.#stats = stats;
    this.#fail = fail;
  }

  /** Hands the whole ring of empty buffers to the server (after CONNECTED). */
  start(): void {
    this.#refill(0, this.ring.size);
  }

  #refill(from: number, to: number): void {
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const mask = ring.mask;
    const bsize = this.#bufferSize;
    const base = this.#bufBase;
    const ri = this.#regionIndex;
    const end = to & 0xffff;
    // Rewrites the whole descriptor, not just the length: what the server may have scribbled on
    // region / offset is restored (we never read them back, but the server uses them to write).
    for (let s = from; s !== end; s = (s + 1) & 0xffff) {
      const slot = s & mask;
      const i16 = ring.desc16 + slot * 8;
      const i32 = ring.desc32 + slot * 4;
      u16[i16] = 0;
      u16[i16 + 1] = ri;
      u32[i32 + 1] = bsize;
      u32[i32 + 2] = base + slot * bsize;
    }
    ring.storeHead(end);
    this.#head = end;
  }

  pending(): boolean {
    return !this.dead && this.ring.loadTail() !== this.#lastTail;
  }

  fill(burst: MemifRxBurst, max: number): number {
    if (burst.owner !== null) burst.release();
    if (this.dead) return 0;
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const tail = Atomics.load(u16, ring.tailIdx);
    let cur = this.#lastTail;
    const avail = (tail - cur) & 0xffff;
    if (avail === 0) return 0;
    if (avail > ((this.#head - cur) & 0xffff)) {
      this.#fail(`S2C ring ${ring.offset}: tail moved to ${tail} (parsed ${cur}, head ${this.#head})`);
      return 0;
    }
    const stop = cur + avail;
    const mask = ring.mask;
    const desc16 = ring.desc16;
    const desc32 = ring.desc32;
    const bsize = this.#bufferSize;
    const base = this.#bufBase;
    const ri = this.#regionIndex;
    const maxChain = this.#limits.maxChain;
    const cap = Math.min(max, burst.capacity);
    const lengths = burst.lengths;
    const offsets = burst.offsets;
    const regions = burst.regions;
    const segCounts = burst.segCounts;
    let n = 0;
    let bytes = 0;
    // The buffers are ours: their place is known from the slot, so region/offset in the descriptor
    // (which the server must not change) are never read. Only length and flags come from the peer.
    outer: while (n < cap && cur < stop) {
      let slot = cur & mask;
      let flags = u16[desc16 + slot * 8] ?? 0;
      let len = u32[desc32 + slot * 4 + 1] ?? 0;
      if (len === 0 || len > bsize) {
        this.#fail(`S2C descriptor ${slot}: length ${len} (buffers are ${bsize})`);
        return 0;
      }
      if ((flags & MEMIF_DESC_FLAG_NEXT) === 0) {
        lengths[n] = len;
        offsets[n] = base + slot * bsize;
        regions[n] = ri;
        segCounts[n] = 1;
        n++;
        bytes += len;
        cur++;
        continue;
      }
      const first = burst.segUsed;
      let k = first;
      let total = 0;
      let pos = cur;
      for (;;) {
        burst.growSegments(k + 1);
        burst.segOffsets[k] = base + slot * bsize;
        burst.segLengths[k] = len;
        burst.segRegions[k] = ri;
        k++;
        total += len;
        pos++;
        if ((flags & MEMIF_DESC_FLAG_NEXT) === 0) break;
        if (pos >= stop) {
          // Incomplete: wait for the rest, unless the chain already takes every buffer we lent.
          if (pos - cur < ring.size) break outer;
          this.#fail(`S2C chain of ${pos - cur} slots fills the ring without ending`);
          return 0;
        }
        if (k - first >= maxChain) {
          this.#fail(`S2C chain longer than ${maxChain} segments`);
          return 0;
        }
        slot = pos & mask;
        flags = u16[desc16 + slot * 8] ?? 0;
        len = u32[desc32 + slot * 4 + 1] ?? 0;
        if (len === 0 || len > bsize) {
          this.#fail(`S2C descriptor ${slot}: length ${len} (buffers are ${bsize})`);
          return 0;
        }
      }
      burst.segUsed = k;
      lengths[n] = total;
      offsets[n] = burst.segOffsets[first] ?? 0;
      regions[n] = ri;
      segCounts[n] = k - first;
      burst.firstSeg[n] = first;
      n++;
      bytes += total;
      cur = pos;
    }
    burst.count = n;
    burst.end = cur & 0xffff;
    burst.owner = this;
    burst.regionBytes = this.#regionBytes;
    this.#lastTail = cur & 0xffff;
    this.#stats.packets += n;
    this.#stats.bytes += bytes;
    return n;
  }

  releaseBurst(burst: MemifRxBurst): void {
    if (this.dead) return;
    const end = burst.end;
    const d = (end - this.#released) & 0xffff;
    if (d === 0 || d > ((this.#lastTail - this.#released) & 0xffff)) return;
    this.#released = end;
    this.#refill(this.#head, end + this.ring.size);
  }
}
