// Writes and validates the segment header; pure, works over any ArrayBuffer or SharedArrayBuffer.

import { ferryError } from '../errors.js';
import {
  CACHE_LINE,
  isAligned,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HEADER_SIZE_OFFSET,
  SEGMENT_ID_OFFSET,
  SEGMENT_LAYOUT_VERSION,
  SEGMENT_MAGIC,
  SEGMENT_MAGIC_OFFSET,
  SEGMENT_MAX_BYTES,
  SEGMENT_MIN_BYTES,
  SEGMENT_SIZE_OFFSET,
  SEGMENT_VERSION_OFFSET,
} from './layout.js';

/** What a valid header says. */
export interface SegmentHeader {
  sizeBytes: number;
  headerBytes: number;
  id: number;
}

function validSize(sizeBytes: number): boolean {
  return isAligned(sizeBytes, CACHE_LINE) && sizeBytes >= SEGMENT_MIN_BYTES && sizeBytes <= SEGMENT_MAX_BYTES;
}

/**
 * Writes the header of a new segment of `sizeBytes` (a multiple of 64, below 4 GiB). `buf` starts
 * at the segment's first byte and holds at least the header (the creator may view only that).
 */
export function initSegmentHeader(buf: ArrayBufferLike, sizeBytes: number, id: number): void {
  if (!validSize(sizeBytes) || buf.byteLength < SEGMENT_HEADER_BYTES) {
    throw ferryError('ERR_OUT_OF_RANGE', `segment size ${sizeBytes} (buffer ${buf.byteLength} bytes)`);
  }
  if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) {
    throw ferryError('ERR_OUT_OF_RANGE', `segment id ${id} is not a u32`);
  }
  const u32 = new Uint32Array(buf, 0, SEGMENT_HEADER_BYTES / 4);
  u32.fill(0);
  u32[SEGMENT_VERSION_OFFSET / 4] = SEGMENT_LAYOUT_VERSION;
  u32[SEGMENT_HEADER_SIZE_OFFSET / 4] = SEGMENT_HEADER_BYTES;
  u32[SEGMENT_SIZE_OFFSET / 4] = sizeBytes;
  u32[SEGMENT_ID_OFFSET / 4] = id;
  // Magic last: a header with the magic set is complete.
  Atomics.store(u32, SEGMENT_MAGIC_OFFSET / 4, SEGMENT_MAGIC);
}

/**
 * Validates the header of a mapped segment the control plane said is `expectedSizeBytes` long.
 * Throws ERR_FERRY_SHM_BAD_LAYOUT naming the first field that is wrong.
 */
export function checkSegmentHeader(buf: ArrayBufferLike, expectedSizeBytes: number): SegmentHeader {
  const bad = (detail: string) => ferryError('ERR_FERRY_SHM_BAD_LAYOUT', detail);
  if (!validSize(expectedSizeBytes)) throw bad(`expected size ${expectedSizeBytes} is not a valid size`);
  if (buf.byteLength < expectedSizeBytes) {
    throw bad(`mapping is ${buf.byteLength} bytes, expected ${expectedSizeBytes}`);
  }
  const u32 = new Uint32Array(buf, 0, SEGMENT_HEADER_BYTES / 4);
  const magic = Atomics.load(u32, SEGMENT_MAGIC_OFFSET / 4);
  if (magic !== SEGMENT_MAGIC) throw bad(`magic 0x${magic.toString(16)}`);
  const version = u32[SEGMENT_VERSION_OFFSET / 4];
  if (version !== SEGMENT_LAYOUT_VERSION) throw bad(`version ${version}`);
  const headerBytes = u32[SEGMENT_HEADER_SIZE_OFFSET / 4];
  if (headerBytes !== SEGMENT_HEADER_BYTES) throw bad(`header size ${headerBytes}`);
  const sizeBytes = u32[SEGMENT_SIZE_OFFSET / 4];
  if (sizeBytes !== expectedSizeBytes) throw bad(`size ${sizeBytes}, expected ${expectedSizeBytes}`);
  return { sizeBytes, headerBytes, id: u32[SEGMENT_ID_OFFSET / 4] as number };
}
