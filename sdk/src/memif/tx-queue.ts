// Transmit side of one queue pair: copy packets into buffers, publish with one index store, kick.
//
// A client sends on a C2S ring into its own buffers (it writes head, the server writes tail); a
// server sends on an S2C ring into the buffers the client lent it (the client writes head, we write
// tail; capacity, region and offset come from the client's descriptors and are validated first).
// A packet that needs more slots than are free is not started (never a partial chain), and
// descriptors are only written for packets that will be published.

import { ferryError } from '../errors.js';
import { MEMIF_DESC_FLAG_NEXT } from '../proto/memif/index.js';
import { eventfdWrite } from '../sys/index.js';
import type { MemifTxBurst } from './bursts.js';
import type { MemifRing, RegionView } from './ring.js';
import type { FailFn } from './rx-queue.js';
import type { MemifQueueStats } from './stats.js';

export interface TxQueue {
  readonly ring: MemifRing;
  dead: boolean;
  send(packets: readonly Uint8Array[], start: number, count: number): number;
  alloc(burst: MemifTxBurst, n: number, size: number): number;
  commit(burst: MemifTxBurst, k: number): number;
  /** Smallest buffer capacity seen (server) or our buffer size (client). */
  readonly bufferCapacity: number;
}

function kick(ring: MemifRing, stats: MemifQueueStats): void {
  if (ring.interruptsMasked()) return;
  try {
    if (eventfdWrite(ring.eventfd)) stats.wakeups++;
  } catch {
    // A doorbell that cannot be rung is not fatal (spec §9); the control channel reports a dead peer.
  }
}

function checkPacket(p: Uint8Array | undefined, i: number, max: number): number {
  if (!(p instanceof Uint8Array))
    throw ferryError('ERR_INVALID_ARG_TYPE', `packets[${i}] must be a Uint8Array`);
  const len = p.byteLength;
  if (len === 0) throw ferryError('ERR_INVALID_ARG_VALUE', `packets[${i}] is empty`);
  if (len > max) throw ferryError('EMSGSIZE', `packets[${i}] is ${len} bytes, at most ${max}`);
  return len;
}

/**
 * The end of a send() burst, after publishing what was written: a bad packet is rethrown (the
 * packets before it were sent); otherwise packets left over for want of ring space count as drops.
 */
function settleSend(stats: MemifQueueStats, count: number, sent: number, error: unknown): number {
  if (error !== null) throw error;
  const notSent = count - sent;
  if (notSent > 0) {
    stats.ringFull++;
    stats.drops += notSent;
  }
  return sent;
}

function checkCommit(burst: MemifTxBurst, k: number, owner: object, stamp: number): void {
  if (burst.owner !== owner || burst.stamp !== stamp) {
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      'txCommit: the reservation is stale (sent or reconnected since txAlloc)',
    );
  }
  if (!Number.isInteger(k) || k < 0 || k > burst.count) {
    throw ferryError('ERR_OUT_OF_RANGE', `txCommit: ${String(k)} of ${burst.count} reserved buffers`);
  }
}

function badLength(burst: MemifTxBurst, i: number): Error {
  return ferryError(
    'ERR_OUT_OF_RANGE',
    `txCommit: lengths[${i}] = ${burst.lengths[i]}, capacity ${burst.capacities[i]}`,
  );
}

/**
 * Writes the first k reserved descriptors (length, flags 0), checking each length against its
 * buffer; returns the bytes. Throws before anything is published (written slots are still ours).
 */
function writeCommitted(ring: MemifRing, burst: MemifTxBurst, k: number): number {
  const { u16, u32 } = ring.region;
  const lengths = burst.lengths;
  const caps = burst.capacities;
  const mask = ring.mask;
  let bytes = 0;
  for (let i = 0; i < k; i++) {
    const len = lengths[i] ?? 0;
    if (len === 0 || len > (caps[i] ?? 0)) throw badLength(burst, i);
    const slot = (burst.start + i) & mask;
    u32[ring.desc32 + slot * 4 + 1] = len;
    u16[ring.desc16 + slot * 8] = 0;
    bytes += len;
  }
  return bytes;
}

/** Client side: client-to-server packets in our own buffers. */
export class C2sTxQueue implements TxQueue {
  readonly ring: MemifRing;
  dead = false;
  readonly bufferCapacity: number;
  readonly #u8: Uint8Array;
  readonly #regionBytes: readonly Uint8Array[];
  readonly #bufBase: number;
  readonly #maxPacket: number;
  readonly #stats: MemifQueueStats;
  readonly #fail: FailFn;
  /** The value we last stored in head. */
  #head = 0;
  /** The tail we last accepted from the server. */
  #lastTail = 0;
  #stamp = 0;

  constructor(
    ring: MemifRing,
    regionBytes: readonly Uint8Array[],
    bufBase: number,
    bufferSize: number,
    maxChain: number,
    stats: MemifQueueStats,
    fail: FailFn,
  ) {
    this.ring = ring;
    this.#regionBytes = regionBytes;
    this.#u8 = ring.region.u8;
    this.#bufBase = bufBase;
    this.bufferCapacity = bufferSize;
    this.#maxPacket = bufferSize * maxChain;
    this.#stats = stats;
    this.#fail = fail;
  }

  /** Free slots, or -1 after failing the link on an impossible tail. */
  #free(): number {
    const ring = this.ring;
    const t = Atomics.load(ring.region.u16, ring.tailIdx);
    const inFlight = (this.#head - t) & 0xffff;
    if (inFlight > ring.size || ((t - this.#lastTail) & 0xffff) > ((this.#head - this.#lastTail) & 0xffff)) {
      this.#fail(
        `C2S ring ${ring.offset}: tail moved to ${t} (head ${this.#head}, last tail ${this.#lastTail})`,
      );
      return -1;
    }
    this.#lastTail = t;
    return ring.size - inFlight;
  }

  send(packets: readonly Uint8Array[], start: number, count: number): number {
    if (this.dead) return 0;
    let free = this.#free();
    if (free < 0) return 0;
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const u8 = this.#u8;
    const mask = ring.mask;
    const desc16 = ring.desc16;
    const desc32 = ring.desc32;
    const bsize = this.bufferCapacity;
    const base = this.#bufBase;
    let pos = this.#head;
    let sent = 0;
    let bytes = 0;
    let error: unknown = null;
    const end = start + count;
    for (let i = start; i < end; i++) {
      const p = packets[i];
      let len: number;
      try {
        len = checkPacket(p, i, this.#maxPacket);
      } catch (e) {
        error = e;
        break;
      }
      const pkt = p as Uint8Array;
      if (len <= bsize) {
        if (free === 0) break;
        const slot = pos & mask;
        u8.set(pkt, base + slot * bsize);
        u32[desc32 + slot * 4 + 1] = len;
        u16[desc16 + slot * 8] = 0;
        pos++;
        free--;
      } else {
        const segs = Math.ceil(len / bsize);
        if (segs > free) break;
        for (let s = 0, at = 0; s < segs; s++, at += bsize) {
          const slot = pos & mask;
          const l = Math.min(bsize, len - at);
          u8.set(pkt.subarray(at, at + l), base + slot * bsize);
          u32[desc32 + slot * 4 + 1] = l;
          u16[desc16 + slot * 8] = s < segs - 1 ? MEMIF_DESC_FLAG_NEXT : 0;
          pos++;
        }
        free -= segs;
      }
      sent++;
      bytes += len;
    }
    if (sent > 0) this.#publish(pos, sent, bytes);
    return settleSend(this.#stats, count, sent, error);
  }

  #publish(pos: number, packets: number, bytes: number): void {
    this.ring.storeHead(pos);
    this.#head = pos & 0xffff;
    this.#stamp++;
    this.#stats.packets += packets;
    this.#stats.bytes += bytes;
    kick(this.ring, this.#stats);
  }

  alloc(burst: MemifTxBurst, n: number, size: number): number {
    if (size > this.bufferCapacity) {
      throw ferryError('EMSGSIZE', `txAlloc: ${size} bytes do not fit a ${this.bufferCapacity}-byte buffer`);
    }
    burst.count = 0;
    burst.owner = null;
    if (this.dead) return 0;
    const free = this.#free();
    if (free <= 0) {
      if (free === 0) this.#stats.ringFull++;
      return 0;
    }
    const k = Math.min(n, free, burst.capacity);
    const mask = this.ring.mask;
    const bsize = this.bufferCapacity;
    const base = this.#bufBase;
    const head = this.#head;
    const offsets = burst.offsets;
    burst.regions.fill(this.ring.regionIndex, 0, k);
    burst.capacities.fill(bsize, 0, k);
    for (let i = 0; i < k; i++) offsets[i] = base + ((head + i) & mask) * bsize;
    burst.count = k;
    burst.regionBytes = this.#regionBytes;
    burst.owner = this;
    burst.start = this.#head;
    burst.stamp = this.#stamp;
    return k;
  }

  commit(burst: MemifTxBurst, k: number): number {
    if (this.dead) return 0;
    checkCommit(burst, k, this, this.#stamp);
    const bytes = writeCommitted(this.ring, burst, k);
    burst.owner = null;
    burst.count = 0;
    if (k > 0) this.#publish(burst.start + k, k, bytes);
    return k;
  }
}

/** Server side: server-to-client packets in the buffers the client lent (S2C descriptors). */
export class S2cTxQueue implements TxQueue {
  readonly ring: MemifRing;
  dead = false;
  readonly #regions: readonly RegionView[];
  readonly #regionBytes: readonly Uint8Array[];
  readonly #regionSizes: Float64Array;
  readonly #maxChain: number;
  readonly #stats: MemifQueueStats;
  readonly #fail: FailFn;
  /** Validated copies of a chain's descriptors before any of them is written. */
  readonly #chainRegion: Uint16Array;
  readonly #chainOffset: Uint32Array;
  readonly #chainCap: Uint32Array;
  /** The value we last stored in tail. */
  #tail = 0;
  #stamp = 0;
  #minCapacity = 0;

  constructor(
    ring: MemifRing,
    regions: readonly RegionView[],
    maxChain: number,
    stats: MemifQueueStats,
    fail: FailFn,
  ) {
    this.ring = ring;
    this.#regions = regions;
    this.#regionBytes = regions.map((r) => r.u8);
    this.#regionSizes = Float64Array.from(regions, (r) => r.size);
    this.#maxChain = maxChain;
    this.#stats = stats;
    this.#fail = fail;
    this.#chainRegion = new Uint16Array(maxChain);
    this.#chainOffset = new Uint32Array(maxChain);
    this.#chainCap = new Uint32Array(maxChain);
  }

  get bufferCapacity(): number {
    return this.#minCapacity;
  }

  /** Buffers the client has lent us and we have not filled, or -1 after failing the link. */
  #avail(): number {
    const ring = this.ring;
    const h = Atomics.load(ring.region.u16, ring.headIdx);
    const avail = (h - this.#tail) & 0xffff;
    if (avail > ring.size) {
      this.#fail(`S2C ring ${ring.offset}: head moved to ${h} (tail ${this.#tail}, size ${ring.size})`);
      return -1;
    }
    return avail;
  }

  /** Reads and validates slot's descriptor into chain position c; false after failing the link. */
  #take(slot: number, c: number): boolean {
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const region = u16[ring.desc16 + slot * 8 + 1] ?? 0;
    const cap = u32[ring.desc32 + slot * 4 + 1] ?? 0;
    const off = u32[ring.desc32 + slot * 4 + 2] ?? 0;
    if (region >= this.#regions.length || cap === 0 || off + cap > (this.#regionSizes[region] ?? 0)) {
      this.#fail(`S2C descriptor ${slot}: region ${region} offset ${off} capacity ${cap}`);
      return false;
    }
    this.#chainRegion[c] = region;
    this.#chainOffset[c] = off;
    this.#chainCap[c] = cap;
    if (this.#minCapacity === 0 || cap < this.#minCapacity) this.#minCapacity = cap;
    return true;
  }

  send(packets: readonly Uint8Array[], start: number, count: number): number {
    if (this.dead) return 0;
    let avail = this.#avail();
    if (avail < 0) return 0;
    const ring = this.ring;
    const { u16, u32 } = ring.region;
    const bytesOf = this.#regionBytes;
    const sizes = this.#regionSizes;
    const nRegions = this.#regions.length;
    const mask = ring.mask;
    const maxChain = this.#maxChain;
    let minCap = this.#minCapacity;
    let pos = this.#tail;
    let sent = 0;
    let bytes = 0;
    let error: unknown = null;
    const end = start + count;
    outer: for (let i = start; i < end; i++) {
      const p = packets[i];
      let len: number;
      try {
        len = checkPacket(p, i, Number.MAX_SAFE_INTEGER);
      } catch (e) {
        error = e;
        break;
      }
      const pkt = p as Uint8Array;
      if (avail === 0) break;
      // Fast path: the packet fits the next lent buffer (copy the descriptor, validate the copy).
      const slot0 = pos & mask;
      const i16 = ring.desc16 + slot0 * 8;
      const i32 = ring.desc32 + slot0 * 4;
      const region0 = u16[i16 + 1] ?? 0;
      const cap0 = u32[i32 + 1] ?? 0;
      const off0 = u32[i32 + 2] ?? 0;
      if (len <= cap0 && region0 < nRegions && off0 + cap0 <= (sizes[region0] ?? 0)) {
        if (cap0 < minCap || minCap === 0) minCap = cap0;
        (bytesOf[region0] as Uint8Array).set(pkt, off0);
        u32[i32 + 1] = len;
        u16[i16] = 0;
        pos++;
        avail--;
        sent++;
        bytes += len;
        continue;
      }
      // Chained (or a bad descriptor, which #take reports): validate every slot the packet needs
      // before writing any of them.
      let segs = 0;
      for (let room = 0; room < len; segs++) {
        if (segs >= avail) break outer;
        if (segs >= maxChain) {
          error = ferryError('EMSGSIZE', `packets[${i}] needs more than ${maxChain} of the peer's buffers`);
          break outer;
        }
        if (!this.#take((pos + segs) & mask, segs)) return 0;
        room += this.#chainCap[segs] ?? 0;
      }
      for (let s = 0, at = 0; s < segs; s++) {
        const slot = (pos + s) & mask;
        const l = Math.min(this.#chainCap[s] ?? 0, len - at);
        const dst = bytesOf[this.#chainRegion[s] ?? 0] as Uint8Array;
        dst.set(l === len ? pkt : pkt.subarray(at, at + l), this.#chainOffset[s] ?? 0);
        u32[ring.desc32 + slot * 4 + 1] = l;
        u16[ring.desc16 + slot * 8] = s < segs - 1 ? MEMIF_DESC_FLAG_NEXT : 0;
        at += l;
      }
      pos += segs;
      avail -= segs;
      sent++;
      bytes += len;
    }
    if (minCap !== 0 && (this.#minCapacity === 0 || minCap < this.#minCapacity)) this.#minCapacity = minCap;
    if (sent > 0) this.#publish(pos, sent, bytes);
    return settleSend(this.#stats, count, sent, error);
  }

  #publish(pos: number, packets: number, bytes: number): void {
    this.ring.storeTail(pos);
    this.#tail = pos & 0xffff;
    this.#stamp++;
    this.#stats.packets += packets;
    this.#stats.bytes += bytes;
    kick(this.ring, this.#stats);
  }

  alloc(burst: MemifTxBurst, n: number, size: number): number {
    burst.count = 0;
    burst.owner = null;
    if (this.dead) return 0;
    const avail = this.#avail();
    if (avail <= 0) {
      if (avail === 0) this.#stats.ringFull++;
      return 0;
    }
    const want = Math.min(n, avail, burst.capacity);
    let k = 0;
    for (; k < want; k++) {
      if (!this.#take((this.#tail + k) & this.ring.mask, 0)) return 0;
      const cap = this.#chainCap[0] ?? 0;
      if (cap < size) break;
      burst.regions[k] = this.#chainRegion[0] ?? 0;
      burst.offsets[k] = this.#chainOffset[0] ?? 0;
      burst.capacities[k] = cap;
    }
    burst.count = k;
    burst.regionBytes = this.#regionBytes;
    burst.owner = this;
    burst.start = this.#tail;
    burst.stamp = this.#stamp;
    return k;
  }

  commit(burst: MemifTxBurst, k: number): number {
    if (this.dead) return 0;
    checkCommit(burst, k, this, this.#stamp);
    const bytes = writeCommitted(this.ring, burst, k);
    burst.owner = null;
    burst.count = 0;
    if (k > 0) this.#publish(burst.start + k, k, bytes);
    return k;
  }
}
