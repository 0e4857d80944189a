// Shared-memory layout constants and alignment helpers; every structure shm places in a segment.

/** Bytes per cache line; fields written by different processes never share one. */
export const CACHE_LINE = 64;

/** Rounds `n` up to a multiple of `align` (a power of two). */
export function alignUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

/** True when `n` is an integer power of two (1, 2, 4, ...), up to 2^31. */
export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && n <= 0x8000_0000 && (n & (n - 1)) === 0;
}

/** True when `n` is a non-negative integer multiple of `align`. */
export function isAligned(n: number, align: number): boolean {
  return Number.isInteger(n) && n >= 0 && n % align === 0;
}

// Segment header: one cache line at offset 0 of every segment. Written once by the creator
// (ferryd) before the memfd is sealed and handed out; every other mapper only reads and validates
// it. Multi-byte fields are in the host's byte order: a segment never leaves the host.

/** 'FRYS' as bytes 46 52 59 53, read as a little-endian u32. */
export const SEGMENT_MAGIC = 0x5359_5246;
export const SEGMENT_LAYOUT_VERSION = 1;
/** u32 magic; writer: creator, once. */
export const SEGMENT_MAGIC_OFFSET = 0;
/** u32 layout version; writer: creator, once. */
export const SEGMENT_VERSION_OFFSET = 4;
/** u32 header size in bytes (allocations start after it); writer: creator, once. */
export const SEGMENT_HEADER_SIZE_OFFSET = 8;
/** u32 segment size in bytes; segments are below 4 GiB; writer: creator, once. */
export const SEGMENT_SIZE_OFFSET = 12;
/** u32 segment id chosen by the creator; writer: creator, once. */
export const SEGMENT_ID_OFFSET = 16;
export const SEGMENT_HEADER_BYTES = CACHE_LINE;
/** Smallest segment: the header plus one cache line. */
export const SEGMENT_MIN_BYTES = SEGMENT_HEADER_BYTES + CACHE_LINE;
/** Largest segment: sizes are u32 and cache-line multiples. */
export const SEGMENT_MAX_BYTES = 0x1_0000_0000 - CACHE_LINE;
