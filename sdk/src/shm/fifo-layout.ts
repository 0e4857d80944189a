// Byte layout of a fifo: a three-cache-line header followed by a power-of-two data ring.
//
// Line 0 (static): written once by the creator in initFifo(), before either end exists; each end
//   copies the size privately at construction and never reads the line again. Its POOL word is
//   the exception (fifo-pool.ts): for fast-connect pools, moved only by compare-and-swap.
// Line 1 (consumer): HEAD and CONS_FLAGS are written by the consumer only. WANT_DATA is the one
//   two-writer field: the consumer sets it (0 -> 1) before it sleeps, the producer clears it
//   (CAS 1 -> 0) when it decides to ring the consumer's doorbell.
//   POLL_ID is the consumer's announcement (consumer-written, producer-read): the id of the frame it
//   polls for right now (a message channel's reply or next request), 0 when it does not poll. A hint
//   for the producer's own choice to poll (messages/message-channel.ts); wake-ups never depend on it.
// Line 2 (producer): TAIL, PROD_FLAGS and WANT_SPACE_BYTES are written by the producer only.
//   WANT_SPACE: the producer sets it before it sleeps on a full fifo, the consumer clears it (CAS
//   1 -> 0) and rings, once at least WANT_SPACE_BYTES are free (0 or 1: at the first free byte).
// Indices are free-running u32 byte counts; the ring position is `index & (size - 1)`.

import { CACHE_LINE } from './layout.js';

/** 'FRYF' as bytes 46 52 59 46, read as a little-endian u32. */
export const FIFO_MAGIC = 0x4659_5246;
export const FIFO_MAGIC_OFFSET = 0;
/** u32 data size in bytes (power of two). */
export const FIFO_SIZE_OFFSET = 4;
/**
 * u32 pool word of a pair lent for fast connects (fifo-pool.ts), in the client's tx fifo: 0 for an
 * ordinary pair. Written after init only by compare-and-swap; the reuse word below is the static
 * line's only other word written after init.
 */
export const FIFO_POOL_OFFSET = 8;
/**
 * u32 reuse word of a pooled pair (fifo-pool.ts), at the same offset in the client's rx fifo: the
 * pair's generation and which ends let go of it. 0 for an ordinary pair.
 */
export const FIFO_REUSE_OFFSET = 8;

export const FIFO_CONSUMER_LINE = CACHE_LINE;
/** u32 consumer index: bytes consumed so far. */
export const FIFO_HEAD_OFFSET = FIFO_CONSUMER_LINE;
/** u32 FIFO_CONS_* bits. */
export const FIFO_CONS_FLAGS_OFFSET = FIFO_CONSUMER_LINE + 4;
/** u32 0/1: the consumer asks to be woken when data arrives. */
export const FIFO_WANT_DATA_OFFSET = FIFO_CONSUMER_LINE + 8;
/** u32: what the consumer announces it polls for (see above); 0: nothing. Any value is safe to read. */
export const FIFO_POLL_ID_OFFSET = FIFO_CONSUMER_LINE + 12;

export const FIFO_PRODUCER_LINE = 2 * CACHE_LINE;
/** u32 producer index: bytes produced so far. */
export const FIFO_TAIL_OFFSET = FIFO_PRODUCER_LINE;
/** u32 FIFO_PROD_* bits. */
export const FIFO_PROD_FLAGS_OFFSET = FIFO_PRODUCER_LINE + 4;
/** u32 0/1: the producer asks to be woken when space frees. */
export const FIFO_WANT_SPACE_OFFSET = FIFO_PRODUCER_LINE + 8;
/**
 * u32: how many free bytes the producer waits for (stored before WANT_SPACE). A hint: the consumer
 * rings once that much is free (0 and 1 alike: at the first byte; above the size: when empty), so
 * a writer behind a full fifo is woken once per half fifo drained rather than once per read.
 * A consumer that ignores it rings early, which costs a wake and loses nothing.
 */
export const FIFO_WANT_SPACE_BYTES_OFFSET = FIFO_PRODUCER_LINE + 12;

export const FIFO_HEADER_BYTES = 3 * CACHE_LINE;
export const FIFO_DATA_OFFSET = FIFO_HEADER_BYTES;
export const FIFO_MIN_BYTES = CACHE_LINE;
/** Data sizes stay at or below 2^31 so `tail - head` as u32 is unambiguous. */
export const FIFO_MAX_BYTES = 0x8000_0000;

/** Consumer flag: the consumer closed its end and reads no more. */
export const FIFO_CONS_CLOSED = 1;
/** Consumer flag: the consumer aborted (data in flight is discarded). */
export const FIFO_CONS_RESET = 2;
/** Producer flag: no more data will be enqueued. */
export const FIFO_PROD_FIN = 1;
/** Producer flag: the producer aborted; the consumer should discard what is left. */
export const FIFO_PROD_RESET = 2;
