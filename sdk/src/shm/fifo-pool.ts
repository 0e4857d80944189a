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

/**
 * The header words of the fifo at `fifoOffset` (null: not a place a fifo header can be). The
 * functions below that take such a view (`...At`) let an app that reuses a pair keep the view for
 * the pair's life: a typed array made per look (11 per fast connect on the client, 7 on the server)
 * was a tenth of a connection's JavaScript, and garbage.
 */
export function poolWords(buf: ArrayBufferLike, fifoOffset: number): Uint32Array | null {
  if (!Number.isSafeInteger(fifoOffset) || fifoOffset < 0 || !isAligned(fifoOffset, CACHE_LINE)) return null;
  if (fifoOffset + FIFO_HEADER_BYTES > buf.byteLength) return null;
  return new Uint32Array(buf, fifoOffset, FIFO_HEADER_BYTES / 4);
}
const wordView = poolWords;

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
  return v === null ? -1 : poolSwapAt(v, to);
}

/** poolSwap on the header words of the client's tx fifo (poolWords). */
export function poolSwapAt(words: Uint32Array, to: typeof POOL_TAKEN | typeof POOL_REVOKED): number {
  return compareExchange(words, WORD, POOL_FREE, to);
}

/** The pool word now (-1: bad offset). Hostile: any u32 may come back. */
export function poolState(buf: ArrayBufferLike, fifoOffset: number): number {
  const v = wordView(buf, fifoOffset);
  return v === null ? -1 : poolStateAt(v);
}

/** The pool word (client's tx fifo) or reuse word (client's rx fifo) in a fifo's header words. */
export function poolStateAt(words: Uint32Array): number {
  return loadAcquire(words, WORD);
}

// ---- reuse in place ----
//
// A pair lent for fast connects is used again and again by the same two apps without ferryd: its
// second word, the REUSE word (at FIFO_REUSE_OFFSET of the client's rx fifo, i.e. the server's tx
// fifo, whose pool word is otherwise unused), holds the pair's generation (bits 8-31, how many
// times the client took it again after the first) and three flags:
//   CLIENT_DONE / SERVER_DONE: that end of this generation let go (its last write to either fifo is
//     before the flag, which is set by compare-and-swap only while the generation is unchanged and
//     the pair is not LOCKED);
//   LOCKED: ferryd took this generation into its session table (a reload, a limit, a death, a
//     notice naming the pair), or the server voided it after ferryd's loss. Terminal: from then on
//     the ends tell ferryd as for any session, and the pair is never taken again.
// The client takes a pair back when the pool word says TAKEN and the reuse word says both ends are
// done and nothing locked it: nobody else touches the fifos then, so it re-arms both headers and
// swaps (g, both done) -> (g + 1, no flags); a LOCKED set meanwhile makes that swap fail.
// Everything here is hostile input to every reader: any u32 may be found; the flags and the
// generation decide nothing that could reach memory ferryd did not describe.

/** This generation's client end let go. */
export const REUSE_CLIENT_DONE = 1;
/** This generation's server end let go. */
export const REUSE_SERVER_DONE = 2;
/** ferryd (or the server, after ferryd's loss) took the pair out of the reuse cycle. */
export const REUSE_LOCKED = 4;
const REUSE_BOTH = REUSE_CLIENT_DONE | REUSE_SERVER_DONE;
/** Generations are 24 bits, compared only for equality (they wrap). */
export const REUSE_GEN_SHIFT = 8;

/** The generation in a reuse word. */
export function reuseGen(word: number): number {
  return word >>> REUSE_GEN_SHIFT;
}

/** The reuse word now (-1: bad offset). Hostile: any u32 may come back. */
export function poolReuseWord(buf: ArrayBufferLike, fifoOffset: number): number {
  return poolState(buf, fifoOffset);
}

/**
 * One end of generation `gen` lets go (`flag`: REUSE_CLIENT_DONE or REUSE_SERVER_DONE). True when
 * the flag is set: the pair goes back to the pool without ferryd. False when the pair is LOCKED,
 * has moved to another generation, already has the flag, or the word keeps changing under us (a
 * hostile peer): the caller then tells ferryd, which takes the session into its table.
 */
export function poolEnd(buf: ArrayBufferLike, rxOrTxOffset: number, gen: number, flag: number): boolean {
  const v = wordView(buf, rxOrTxOffset);
  return v !== null && poolEndAt(v, gen, flag);
}

/** poolEnd on the header words of the fifo that holds the reuse word (poolWords). */
export function poolEndAt(v: Uint32Array, gen: number, flag: number): boolean {
  for (let i = 0; i < 4; i++) {
    const w = loadAcquire(v, WORD);
    if (reuseGen(w) !== gen || (w & (REUSE_LOCKED | flag)) !== 0) return false;
    if (compareExchange(v, WORD, w, w | flag) === w) return true;
  }
  return false;
}

/** Sets LOCKED and returns the word found before (-1: bad offset). */
export function poolLock(buf: ArrayBufferLike, fifoOffset: number): number {
  const v = wordView(buf, fifoOffset);
  return v === null ? -1 : poolLockAt(v);
}

/** poolLock on a fifo's header words (poolWords). */
export function poolLockAt(words: Uint32Array): number {
  return Atomics.or(words, WORD, REUSE_LOCKED) >>> 0;
}

/** True when a reuse word says both ends of its generation let go and nothing locked it. */
export function reuseIdle(word: number): boolean {
  return (word & (REUSE_BOTH | REUSE_LOCKED)) === REUSE_BOTH;
}

/**
 * The client takes a pooled pair again: `txOffset` is its tx fifo (pool word), `rxOffset` its rx
 * fifo (reuse word). Only when the pool word says TAKEN and the reuse word says idle: both fifo
 * headers are re-armed (`rearm`), then the reuse word swaps to the next generation with no flags.
 * Returns that generation, or -1 (not idle, locked, or lost the swap: the caller skips the pair).
 */
export function poolRetake(
  buf: ArrayBufferLike,
  txOffset: number,
  rxOffset: number,
  rearm: () => void,
): number {
  const t = wordView(buf, txOffset);
  const r = wordView(buf, rxOffset);
  if (t === null || r === null) return -1;
  return poolRetakeAt(t, r, rearm);
}

/** poolRetake on the header words of the client's tx fifo (`t`) and rx fifo (`r`). */
export function poolRetakeAt(t: Uint32Array, r: Uint32Array, rearm: () => void): number {
  if (loadAcquire(t, WORD) !== POOL_TAKEN) return -1;
  const w = loadAcquire(r, WORD);
  if (!reuseIdle(w)) return -1;
  rearm();
  const next = ((reuseGen(w) + 1) & 0xff_ffff) << REUSE_GEN_SHIFT;
  return compareExchange(r, WORD, w, next >>> 0) === w ? reuseGen(next >>> 0) : -1;
}
