// The pool word of a fifo pair lent for fast connects: who owns the pair, decided by
// compare-and-swap so that exactly one of the client (taking it) and ferryd (revoking it) wins.
//
// It is the u32 at FIFO_POOL_OFFSET of the client's tx fifo, in the fifo's static line (initFifo
// zeroes it: an ordinary pair is never pooled). ferryd stores POOL_FREE when it lends the pair; the
// client swaps FREE -> TAKEN; ferryd (or, after ferryd's death, the server) swaps FREE -> REVOKED.
// Nothing else moves it. A peer can scribble on it like on any shared word: readers treat any value
// as hostile (only TAKEN means "a client took it"), and ferryd decides from its own swap's result.

import { compareExchange, loadAcquire, storeRelease } from './atomics.js';
import { FIFO_HEADER_BYTES, FIFO_POOL_OFFSET } from './fifo-layout.js';
import { CACHE_LINE, isAligned } from './layout.js';

/** Not a pooled pair (every fifo starts so). */
export const POOL_NONE = 0;
/** Lent: a client may take it. */
export const POOL_FREE = 1;
/** A client took it: a session exists (or is being made) on it. */
export const POOL_TAKEN = 2;
/** Revoked before anyone took it: void. */
export const POOL_REVOKED = 3;

const WORD = FIFO_POOL_OFFSET / 4;

function wordView(buf: ArrayBufferLike, fifoOffset: number): Uint32Array | null {
  if (!Number.isSafeInteger(fifoOffset) || fifoOffset < 0 || !isAligned(fifoOffset, CACHE_LINE)) return null;
  if (fifoOffset + FIFO_HEADER_BYTES > buf.byteLength) return null;
  return new Uint32Array(buf, fifoOffset, FIFO_HEADER_BYTES / 4);
}

/** ferryd lends the pair whose client tx fifo is at `fifoOffset` (after initFifo). */
export function poolLend(buf: ArrayBufferLike, fifoOffset: number): boolean {
  const v = wordView(buf, fifoOffset);
  if (v === null) return false;
  storeRelease(v, WORD, POOL_FREE);
  return true;
}

/**
 * Swaps FREE -> `to` (TAKEN: a client takes it; REVOKED: ferryd or the server voids it) and returns
 * the value found: POOL_FREE when this call won, anything else when it did not (-1: bad offset).
 */
export function poolSwap(
  buf: ArrayBufferLike,
  fifoOffset: number,
  to: typeof POOL_TAKEN | typeof POOL_REVOKED,
): number {
  const v = wordView(buf, fifoOffset);
  if (v === null) return -1;
  return compareExchange(v, WORD, POOL_FREE, to);
}

/** The pool word now (-1: bad offset). Hostile: any u32 may come back. */
export function poolState(buf: ArrayBufferLike, fifoOffset: number): number {
  const v = wordView(buf, fifoOffset);
  if (v === null) return -1;
  return loadAcquire(v, WORD);
}
