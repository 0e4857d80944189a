// Byte layout of an event queue: a three-cache-line header followed by a ring of u32 entries.
//
// Line 0 (static): magic and capacity, written once by the creator in initEventQueue().
// Line 1 (consumer): HEAD is written by the consumer only. WANT_WAKE: the consumer sets it before
//   it sleeps; the producer clears it (CAS 1 -> 0) and then rings the consumer's doorbell.
// Line 2 (producer): TAIL is written by the producer only. OVERFLOW: the producer sets it when the
//   ring is full; the consumer clears it and rescans everything.
// Each entry is a u32 the consumer validates against its maxEntryValue ("slot N has events").

import { CACHE_LINE } from './layout.js';

/** 'FRYQ' as bytes 46 52 59 51, read as a little-endian u32. */
export const EVENT_QUEUE_MAGIC = 0x5159_5246;
export const EVENT_QUEUE_MAGIC_OFFSET = 0;
/** u32 number of entries (power of two). */
export const EVENT_QUEUE_CAPACITY_OFFSET = 4;
/** u32 consumer index (entries consumed). */
export const EVENT_QUEUE_HEAD_OFFSET = CACHE_LINE;
/** u32 0/1: the consumer asks to be woken. */
export const EVENT_QUEUE_WANT_WAKE_OFFSET = CACHE_LINE + 4;
/** u32 producer index (entries produced). */
export const EVENT_QUEUE_TAIL_OFFSET = 2 * CACHE_LINE;
/** u32 0/1: an event did not fit; the consumer must rescan. */
export const EVENT_QUEUE_OVERFLOW_OFFSET = 2 * CACHE_LINE + 4;
export const EVENT_QUEUE_HEADER_BYTES = 3 * CACHE_LINE;
export const EVENT_QUEUE_ENTRIES_OFFSET = EVENT_QUEUE_HEADER_BYTES;
export const EVENT_QUEUE_ENTRY_BYTES = 4;
export const EVENT_QUEUE_MIN_CAPACITY = 16;
export const EVENT_QUEUE_MAX_CAPACITY = 0x100_0000;
