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
//   CONS_FEATURES and REWIND_SEEN are consumer-written too (see "Rewinds" below).
// Line 2 (producer): TAIL, PROD_FLAGS and WANT_SPACE_BYTES are written by the producer only.
//   WANT_SPACE: the producer sets it before it sleeps on a full fifo, the consumer clears it (CAS
//   1 -> 0) and rings, once at least WANT_SPACE_BYTES are free (0 or 1: at the first free byte).
//   REWIND_SEQ, REWIND_FROM and SKIPPED are producer-written.
// Rewinds: a producer that finds the fifo empty with its tail deep in the ring may start again at
//   the ring's beginning, so that a request/response exchange keeps reusing the same few cache
//   lines and pages instead of walking the whole ring. It does so only if the consumer announced
//   that it follows rewinds (CONS_FEATURES & FIFO_FEATURE_REWIND): the bytes from the old tail to
//   the end of the ring are skipped, counted in the indices as if written and read. The producer
//   stores REWIND_FROM (the old tail), adds the skip to SKIPPED, increments REWIND_SEQ, and only
//   then publishes a tail past the skip; the consumer, on loading a new tail, compares REWIND_SEQ
//   with its REWIND_SEEN and, when one rewind is pending and its head is at REWIND_FROM, moves its
//   head to the ring's beginning before reading. A producer rewinds only an empty fifo, so at most
//   one rewind is ever pending and the consumer has nothing unread (no view) when it applies it.
// Indices are free-running u32 byte counts; the ring position is `index & (size - 1)`.

import { CACHE_LINE } from './layout.js';

/** 'FRYF' as bytes 46 52 59 46, read as a little-endian u32. */
export const FIFO_MAGIC = 0x4659_5246;
export const FIFO_MAGIC_OFFSET = 0;
/** u32 data size in bytes (power of two). */
export const FIFO_SIZE_OFFSET = 4;
/**
 * u32 pool word of a pair lent for fast connects (fifo-pool.ts), in the client's tx fifo: 0 for an
 * ordinary pair. The one word of the static line written after init, only by compare-and-swap.
 */
export const FIFO_POOL_OFFSET = 8;

export const FIFO_CONSUMER_LINE = CACHE_LINE;
/** u32 consumer index: bytes consumed so far. */
export const FIFO_HEAD_OFFSET = FIFO_CONSUMER_LINE;
/** u32 FIFO_CONS_* bits. */
export const FIFO_CONS_FLAGS_OFFSET = FIFO_CONSUMER_LINE + 4;
/** u32 0/1: the consumer asks to be woken when data arrives. */
export const FIFO_WANT_DATA_OFFSET = FIFO_CONSUMER_LINE + 8;
/** u32: what the consumer announces it polls for (see above); 0: nothing. Any value is safe to read. */
export const FIFO_POLL_ID_OFFSET = FIFO_CONSUMER_LINE + 12;
/** u32 FIFO_FEATURE_* bits the consumer supports (set once, when its end is constructed). */
export const FIFO_CONS_FEATURES_OFFSET = FIFO_CONSUMER_LINE + 16;
/** u32: how many of the producer's rewinds the consumer has applied (REWIND_SEQ it has caught up to). */
export const FIFO_REWIND_SEEN_OFFSET = FIFO_CONSUMER_LINE + 20;

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
/** u32: how many times the producer rewound (free-running). Stored before the tail that covers it. */
export const FIFO_REWIND_SEQ_OFFSET = FIFO_PRODUCER_LINE + 16;
/** u32: the tail index at which the last rewind's skipped bytes begin (they end at the ring's end). */
export const FIFO_REWIND_FROM_OFFSET = FIFO_PRODUCER_LINE + 20;
/** u32: bytes skipped by rewinds so far (free-running), for observers that count bytes by the tail. */
export const FIFO_SKIPPED_OFFSET = FIFO_PRODUCER_LINE + 24;

export const FIFO_HEADER_BYTES = 3 * CACHE_LINE;
export const FIFO_DATA_OFFSET = FIFO_HEADER_BYTES;
export const FIFO_MIN_BYTES = CACHE_LINE;
/** Data sizes stay at or below 2^31 so `tail - head` as u32 is unambiguous. */
export const FIFO_MAX_BYTES = 0x8000_0000;

/** Consumer flag: the consumer closed its end and reads no more. */
export const FIFO_CONS_CLOSED = 1;
/** Consumer flag: the consumer aborted (data in flight is discarded). */
export const FIFO_CONS_RESET = 2;
/** Consumer feature: it follows the producer's rewinds (see "Rewinds" above). */
export const FIFO_FEATURE_REWIND = 1;
/**
 * A producer rewinds only when its tail is at least this far into the ring: a request/response
 * exchange then stays within the first page or so of the ring plus one message, and a stream of
 * small writes pays for the check (one load of the consumer's head) at most once per this many bytes.
 */
export const FIFO_REWIND_MIN_POS = 4096;

/** Producer flag: no more data will be enqueued. */
export const FIFO_PROD_FIN = 1;
/** Producer flag: the producer aborted; the consumer should discard what is left. */
export const FIFO_PROD_RESET = 2;
