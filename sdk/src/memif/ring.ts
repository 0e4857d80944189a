// One memif ring in a mapped region: index positions and typed-array views for the data path.
//
// Layout (spec §7.3, §7.4): header of 128 bytes (cookie u32 @0, flags u16 @4, head u16 @6, tail
// u16 @64), then 2^log2 descriptors of 16 bytes (flags u16 @0, region u16 @2, length u32 @4,
// offset u32 @8, metadata u32 @12). Ring offsets are validated to be 8-byte aligned, so every field
// is an integer index into the region's Uint16Array / Uint32Array views. head and tail are only
// touched with Atomics (store-release / load-acquire on x86-64 and arm64: V8 emits a locked or
// ordered instruction), everything else with plain typed-array accesses.

import {
  MEMIF_COOKIE,
  MEMIF_DESC_SIZE,
  MEMIF_RING_FLAG_MASK_INT,
  MEMIF_RING_FLAGS_OFFSET,
  MEMIF_RING_HEAD_OFFSET,
  MEMIF_RING_HEADER_SIZE,
  MEMIF_RING_TAIL_OFFSET,
} from '../proto/memif/index.js';

/** A mapped region as the data path sees it. */
export interface RegionView {
  readonly size: number;
  readonly u8: Uint8Array;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
}

export function regionView(buffer: ArrayBuffer, size: number): RegionView {
  return {
    size,
    u8: new Uint8Array(buffer, 0, size),
    u16: new Uint16Array(buffer, 0, Math.floor(size / 2)),
    u32: new Uint32Array(buffer, 0, Math.floor(size / 4)),
  };
}

export class MemifRing {
  readonly region: RegionView;
  readonly regionIndex: number;
  readonly offset: number;
  readonly log2: number;
  readonly size: number;
  readonly mask: number;
  /** The ring's doorbell (owned by the connection). */
  readonly eventfd: number;
  readonly flagsIdx: number;
  readonly headIdx: number;
  readonly tailIdx: number;
  /** u16 index of descriptor 0's flags; descriptor j's is desc16 + 8j (region + 1). */
  readonly desc16: number;
  /** u32 index of descriptor 0's first word; length is desc32 + 4j + 1, offset + 2, metadata + 3. */
  readonly desc32: number;

  constructor(region: RegionView, regionIndex: number, offset: number, log2: number, eventfd: number) {
    this.region = region;
    this.regionIndex = regionIndex;
    this.offset = offset;
    this.log2 = log2;
    this.size = 2 ** log2;
    this.mask = this.size - 1;
    this.eventfd = eventfd;
    this.flagsIdx = (offset + MEMIF_RING_FLAGS_OFFSET) >>> 1;
    this.headIdx = (offset + MEMIF_RING_HEAD_OFFSET) >>> 1;
    this.tailIdx = (offset + MEMIF_RING_TAIL_OFFSET) >>> 1;
    this.desc16 = (offset + MEMIF_RING_HEADER_SIZE) >>> 1;
    this.desc32 = (offset + MEMIF_RING_HEADER_SIZE) >>> 2;
  }

  get bytes(): number {
    return MEMIF_RING_HEADER_SIZE + MEMIF_DESC_SIZE * this.size;
  }

  cookieOk(): boolean {
    return this.region.u32[this.offset >>> 2] === MEMIF_COOKIE;
  }

  writeCookie(): void {
    this.region.u32[this.offset >>> 2] = MEMIF_COOKIE;
  }

  loadHead(): number {
    return Atomics.load(this.region.u16, this.headIdx);
  }
  storeHead(v: number): void {
    Atomics.store(this.region.u16, this.headIdx, v & 0xffff);
  }
  loadTail(): number {
    return Atomics.load(this.region.u16, this.tailIdx);
  }
  storeTail(v: number): void {
    Atomics.store(this.region.u16, this.tailIdx, v & 0xffff);
  }

  /** The receiver's "no doorbells, I poll" hint. */
  interruptsMasked(): boolean {
    return (Atomics.load(this.region.u16, this.flagsIdx) & MEMIF_RING_FLAG_MASK_INT) !== 0;
  }
  setInterruptsMasked(masked: boolean): void {
    // Flags has no other defined bit; whole-field stores keep reserved bits zero.
    Atomics.store(this.region.u16, this.flagsIdx, masked ? MEMIF_RING_FLAG_MASK_INT : 0);
  }

  /** Writes a whole descriptor (initialisation and refill). */
  writeDesc(slot: number, flags: number, region: number, length: number, offset: number): void {
    const i16 = this.desc16 + slot * 8;
    const i32 = this.desc32 + slot * 4;
    const { u16, u32 } = this.region;
    u16[i16] = flags;
    u16[i16 + 1] = region;
    u32[i32 + 1] = length;
    u32[i32 + 2] = offset;
    u32[i32 + 3] = 0;
  }
}
