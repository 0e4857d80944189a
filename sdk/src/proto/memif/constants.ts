// memif 2.0 wire constants (spec/memif.md §3, §6, §7). Native byte order; little-endian hosts only.

/** Protocol version 2.0: (major << 8) | minor. */
export const MEMIF_VERSION = 0x0200;
/** Every control message is exactly this long, one datagram each. */
export const MEMIF_MSG_SIZE = 128;
/** At most one descriptor travels with a control message (ADD_REGION, ADD_RING). */
export const MEMIF_MSG_MAX_FDS = 1;

export const MEMIF_MSG_TYPE = {
  NONE: 0,
  ACK: 1,
  HELLO: 2,
  INIT: 3,
  ADD_REGION: 4,
  ADD_RING: 5,
  CONNECT: 6,
  CONNECTED: 7,
  DISCONNECT: 8,
} as const;

/** Interface modes as INIT carries them. Punt/inject is defined but nobody implements it. */
export const MEMIF_MODE = { ethernet: 0, ip: 1, 'punt-inject': 2 } as const;
export type MemifModeName = keyof typeof MEMIF_MODE;

/** Sizes of the fixed string fields, NUL included. */
export const MEMIF_NAME_SIZE = 32;
export const MEMIF_SECRET_SIZE = 24;
export const MEMIF_DISCONNECT_STRING_SIZE = 96;

/** Highest ring / region index the wire allows (counts are u8 in DPDK and libmemif). */
export const MEMIF_MAX_RING_INDEX = 255;
export const MEMIF_MAX_REGION_INDEX = 255;
export const MEMIF_MAX_LOG2_RING_SIZE = 14;

/** ADD_RING flags bit 0: the ring carries client-to-server packets (libmemif: S2M). */
export const MEMIF_ADD_RING_FLAG_C2S = 0x1;

// Shared memory (§7.3, §7.4), with the 64-byte cache line libmemif, VPP and x86-64 DPDK use.
export const MEMIF_COOKIE = 0x03e31f20;
export const MEMIF_RING_HEADER_SIZE = 128;
export const MEMIF_RING_COOKIE_OFFSET = 0;
export const MEMIF_RING_FLAGS_OFFSET = 4;
export const MEMIF_RING_HEAD_OFFSET = 6;
export const MEMIF_RING_TAIL_OFFSET = 64;
/** Ring flags bit 0: the receiver of this ring does not want doorbells. */
export const MEMIF_RING_FLAG_MASK_INT = 0x1;

export const MEMIF_DESC_SIZE = 16;
export const MEMIF_DESC_FLAGS_OFFSET = 0;
export const MEMIF_DESC_REGION_OFFSET = 2;
export const MEMIF_DESC_LENGTH_OFFSET = 4;
export const MEMIF_DESC_OFFSET_OFFSET = 8;
export const MEMIF_DESC_METADATA_OFFSET = 12;
/** Descriptor flags bit 0: the packet continues in the next slot. */
export const MEMIF_DESC_FLAG_NEXT = 0x1;

/** Bytes of one ring (header + descriptors) of 2^log2 slots. */
export function memifRingBytes(log2: number): number {
  return MEMIF_RING_HEADER_SIZE + MEMIF_DESC_SIZE * 2 ** log2;
}
