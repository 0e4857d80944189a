// Fifo placement: footprint, initialisation and the validated views both ends are built on.

import { FerryError, ferryError } from '../errors.js';
import {
  FIFO_DATA_OFFSET,
  FIFO_HEAD_OFFSET,
  FIFO_HEADER_BYTES,
  FIFO_MAGIC,
  FIFO_MAGIC_OFFSET,
  FIFO_MAX_BYTES,
  FIFO_MIN_BYTES,
  FIFO_SIZE_OFFSET,
  FIFO_TAIL_OFFSET,
} from './fifo-layout.js';
import { CACHE_LINE, isAligned, isPowerOfTwo } from './layout.js';

/** Bytes a fifo with `sizeBytes` of data occupies in a segment (header + data). */
export function fifoFootprint(sizeBytes: number): number {
  if (!validFifoSize(sizeBytes)) {
    throw new FerryError('ERR_OUT_OF_RANGE', `fifo size ${sizeBytes} must be a power of two >= 64`);
  }
  return FIFO_HEADER_BYTES + sizeBytes;
}

function validFifoSize(sizeBytes: number): boolean {
  return isPowerOfTwo(sizeBytes) && sizeBytes >= FIFO_MIN_BYTES && sizeBytes <= FIFO_MAX_BYTES;
}

/** Writes an empty fifo header at `offset` (creator only, before either end is constructed). */
export function initFifo(buf: ArrayBufferLike, offset: number, sizeBytes: number): void {
  const footprint = fifoFootprint(sizeBytes);
  if (!isAligned(offset, CACHE_LINE) || offset + footprint > buf.byteLength) {
    throw new FerryError('ERR_OUT_OF_RANGE', `fifo at ${offset} (+${footprint}) does not fit the buffer`);
  }
  initFifoHeader(buf, offset, sizeBytes);
}

/**
 * initFifo for a creator that views only the fifo's header (ferryd, in a window of the segment):
 * the caller has placed the whole fifo inside the segment.
 */
export function initFifoHeader(buf: ArrayBufferLike, offset: number, sizeBytes: number): void {
  if (
    !validFifoSize(sizeBytes) ||
    !isAligned(offset, CACHE_LINE) ||
    offset + FIFO_HEADER_BYTES > buf.byteLength
  ) {
    throw new FerryError(
      'ERR_OUT_OF_RANGE',
      `fifo header at ${offset} (size ${sizeBytes}) does not fit the buffer`,
    );
  }
  const ctl = new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4);
  ctl.fill(0);
  ctl[FIFO_SIZE_OFFSET / 4] = sizeBytes;
  // Magic last: a fifo with its magic set is fully initialised.
  Atomics.store(ctl, FIFO_MAGIC_OFFSET / 4, FIFO_MAGIC);
}

/** The typed views one end of a fifo works through. */
export interface FifoViews {
  /** The header as u32 words; index = byte offset / 4. */
  ctl: Uint32Array;
  data: Uint8Array;
  sizeBytes: number;
  head: number;
  tail: number;
}

/**
 * A fifo's two views, its header words and its data ring, as openFifo makes them: kept by an end
 * that opens the same fifo again and again (a fast-connect pair reused in place by the same two
 * apps), which then makes no typed array per session.
 */
export interface FifoMemory {
  readonly ctl: Uint32Array;
  readonly data: Uint8Array;
}

/**
 * The views of a fifo of `sizeBytes` at `offset` in `buf`, checked only for fitting there (its
 * header's contents are checked by each openFifo); null when it cannot be a fifo.
 */
export function fifoMemory(buf: ArrayBufferLike, offset: number, sizeBytes: number): FifoMemory | null {
  if (!validFifoSize(sizeBytes) || !Number.isSafeInteger(offset) || offset < 0) return null;
  if (!isAligned(offset, CACHE_LINE) || offset + FIFO_HEADER_BYTES + sizeBytes > buf.byteLength) return null;
  return {
    ctl: new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4),
    data: new Uint8Array(buf, offset + FIFO_DATA_OFFSET, sizeBytes),
  };
}

/** True when `mem` holds the views of the fifo of `sizeBytes` at `offset` in `buf`. */
function isMemoryOf(mem: FifoMemory, buf: ArrayBufferLike, offset: number, sizeBytes: number): boolean {
  return mem.ctl.buffer === buf && mem.ctl.byteOffset === offset && mem.data.byteLength === sizeBytes;
}

/**
 * Validates a fifo the control plane placed at `offset` with `sizeBytes` of data and builds the
 * views (or takes `mem`'s, made for this fifo before). Throws ERR_FERRY_SHM_BAD_LAYOUT: this runs
 * once per end, never on the hot path.
 */
export function openFifo(
  buf: ArrayBufferLike,
  offset: number,
  sizeBytes: number,
  mem: FifoMemory | null = null,
): FifoViews {
  const bad = (detail: string) => ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `fifo at ${offset}: ${detail}`);
  if (!validFifoSize(sizeBytes)) throw bad(`size ${sizeBytes} is not a power of two >= 64`);
  if (!isAligned(offset, CACHE_LINE)) throw bad('offset is not cache-line aligned');
  if (offset + FIFO_HEADER_BYTES + sizeBytes > buf.byteLength) {
    throw bad(`footprint ${FIFO_HEADER_BYTES + sizeBytes} exceeds the ${buf.byteLength}-byte buffer`);
  }
  const kept = mem !== null && isMemoryOf(mem, buf, offset, sizeBytes) ? mem : null;
  const ctl = kept?.ctl ?? new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4);
  const magic = Atomics.load(ctl, FIFO_MAGIC_OFFSET / 4);
  if (magic !== FIFO_MAGIC) throw bad(`magic 0x${magic.toString(16)}`);
  const shared = Atomics.load(ctl, FIFO_SIZE_OFFSET / 4);
  if (shared !== sizeBytes) throw bad(`header says ${shared} bytes, control plane said ${sizeBytes}`);
  const head = Atomics.load(ctl, FIFO_HEAD_OFFSET / 4);
  const tail = Atomics.load(ctl, FIFO_TAIL_OFFSET / 4);
  if ((tail - head) >>> 0 > sizeBytes) throw bad(`indices head ${head} tail ${tail} are inconsistent`);
  const data = kept?.data ?? new Uint8Array(buf, offset + FIFO_DATA_OFFSET, sizeBytes);
  return { ctl, data, sizeBytes, head, tail };
}

/** The error an end reports once the peer's index has been seen to break the rules. */
export function fifoCorrupt(detail: string): FerryError {
  return ferryError('ERR_FERRY_FIFO_CORRUPT', detail);
}

/**
 * Makes a used fifo empty again for a new session on the same pair (fast-connect reuse,
 * fifo-pool.ts): the consumer's and the producer's lines are zeroed (indices, flags, wake requests,
 * the rest); the static line (magic, size, pool words) stays. Only while neither end exists (both
 * let go, as the pair's reuse word says). False, and nothing written, when the header at `offset`
 * is not a fifo of `sizeBytes` inside `buf` (its static line is shared memory too).
 */
export function rearmFifo(buf: ArrayBufferLike, offset: number, sizeBytes: number): boolean {
  if (!validFifoSize(sizeBytes) || !isAligned(offset, CACHE_LINE)) return false;
  if (!Number.isSafeInteger(offset) || offset < 0 || offset + FIFO_HEADER_BYTES > buf.byteLength)
    return false;
  return rearmFifoAt(new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4), sizeBytes);
}

/** rearmFifo on a fifo's header words (FifoMemory's `ctl`). */
export function rearmFifoAt(ctl: Uint32Array, sizeBytes: number): boolean {
  if (ctl.length !== FIFO_HEADER_BYTES / 4) return false;
  if (Atomics.load(ctl, FIFO_MAGIC_OFFSET / 4) !== FIFO_MAGIC) return false;
  if (Atomics.load(ctl, FIFO_SIZE_OFFSET / 4) !== sizeBytes) return false;
  ctl.fill(0, CACHE_LINE / 4);
  return true;
}
