// Byte layout of a topic segment: one sealed memfd per topic (made by ferryd), holding a broadcast
// ring per publisher slot and the wake words of its subscribers.
//
// Header line 0 (written by ferryd only): magic, version, slot counts, ring size, the slow-subscriber
//   policy (static), END (0 while the topic lives; set once when ferryd ends it), OPENS (bumped
//   when a slot is given to a publisher: once after its EPOCH, and with TOPIC_FLAG_OPENS_BRACKET
//   once more before its counts, odd while a hand-over is under way) and FLAGS (static:
//   TOPIC_FLAG_OPENS when OPENS is kept, TOPIC_FLAG_OPENS_BRACKET).
// Header line 1 (wake): PENDING: a publisher sets it (CAS 0 -> 1) before ringing ferryd's topic
//   doorbell, ferryd clears it; WAKE0/WAKE1: subscriber i sets bit i before it sleeps, ferryd clears
//   the bits it wakes (exchange).
// Drops (4 lines): u32 per subscriber bit, the messages it lost, written by that subscriber only.
// Publisher slot i, two lines at SLOTS_OFFSET + i * SLOT_BYTES:
//   line a, written by ferryd only: STATE (0 free, 1 live, 2 gone), EPOCH (+1 each time the slot is
//     given to a publisher; TAIL/SEQ/LAST are zeroed before), PREV_SEQ (the SEQ the slot's previous
//     publisher had reached, kept before SEQ is zeroed: a reader that had not read all of it counts
//     the rest lost; 0 from a ferryd older than the word, read as nothing to count), SEQ_BEFORE
//     (the SEQs of all the slot's previous publishers added up, u32 wrapping: a reader whose
//     publisher's slot changed hands more than once between two looks counts the messages of the
//     publishers in between too; 0 from an older ferryd).
//   line b, written by that slot's publisher only: TAIL (bytes written, free-running u32), SEQ
//     (messages written), LAST (position of the newest record), MARKS (8 words: for each eighth
//     of the ring, the position of the first record the publisher started in it or after it on
//     its latest pass; a lapped reader resumes at the oldest one still safe to read, zeroed by
//     ferryd with the rest of the line).
// Ring i: RING_BYTES at ringOffset(i). Records are [u32 length][u32 seq] then the payload, padded
// to 8; a length of PAD_RECORD skips to the ring's end. A record never wraps and is at most a
// quarter of the ring, so a writer is never more than half a ring ahead of what it published.

import { CACHE_LINE } from './layout.js';

/** 'FRYT' as bytes 46 52 59 54, read as a little-endian u32. */
export const TOPIC_MAGIC = 0x5459_5246;
/** 2: messages may be self-contained shape records (proto/shape-codec.ts), not only msgpack. */
export const TOPIC_VERSION = 2;
/** The oldest layout this SDK still reads and writes (msgpack records only). */
export const TOPIC_MIN_VERSION = 1;
export const TOPIC_MAGIC_OFFSET = 0;
export const TOPIC_VERSION_OFFSET = 4;
export const TOPIC_MAX_PUBS_OFFSET = 8;
export const TOPIC_MAX_SUBS_OFFSET = 12;
export const TOPIC_RING_BYTES_OFFSET = 16;
/** The policy for slow subscribers (TOPIC_POLICY), written by ferryd before anyone maps it. */
export const TOPIC_POLICY_OFFSET = 20;
/** 0 while the topic lives; ferryd ends a topic for all its members with a TOPIC_END code. */
export const TOPIC_END_OFFSET = 24;
/**
 * OPENS: +1 each time ferryd gives a slot to a publisher (after its EPOCH; with
 * TOPIC_FLAG_OPENS_BRACKET +1 before its counts too): a subscriber that sees it unchanged since its
 * last look at every slot's EPOCH skips that look (a word per poll, not one per slot). Kept only
 * when FLAGS has TOPIC_FLAG_OPENS (an older ferryd's segment reads 0 there: its subscribers look
 * at every EPOCH each time).
 */
export const TOPIC_OPENS_OFFSET = 28;
export const TOPIC_FLAGS_OFFSET = 32;
export const TOPIC_FLAG_OPENS = 1;
/**
 * ferryd bumps OPENS twice per hand-over, before it writes the slot's PREV_SEQ and SEQ_BEFORE and
 * after its EPOCH, so OPENS is odd while a hand-over is under way: a reader that finds it even and
 * unchanged around its reads of those counts knows they are the current epoch's, not the next
 * hand-over's half written (ferryd writes them before it bumps EPOCH, so EPOCH alone cannot tell).
 */
export const TOPIC_FLAG_OPENS_BRACKET = 2;

/** lose-oldest: a lapped subscriber skips ahead and counts; disconnect: it ends instead. */
export const TOPIC_POLICY = { LOSE_OLDEST: 0, DISCONNECT: 1 } as const;
/** Why ferryd ended a topic: the relay that fed it was too slow for its upstream, or it was lost. */
export const TOPIC_END = { LIVE: 0, SLOW: 1, RELAY_LOST: 2 } as const;

export const TOPIC_PENDING_OFFSET = CACHE_LINE;
export const TOPIC_WAKE0_OFFSET = CACHE_LINE + 4;
export const TOPIC_WAKE1_OFFSET = CACHE_LINE + 8;

/** u32 per subscriber bit: messages it lost to laps (written by that subscriber, read by ferryd). */
export const TOPIC_DROPS_OFFSET = 2 * CACHE_LINE;
export const TOPIC_SLOTS_OFFSET = 6 * CACHE_LINE;
export const TOPIC_SLOT_BYTES = 2 * CACHE_LINE;
export const SLOT_STATE = 0;
export const SLOT_EPOCH = 4;
export const SLOT_PREV_SEQ = 8;
export const SLOT_SEQ_BEFORE = 12;
export const SLOT_TAIL = CACHE_LINE;
export const SLOT_SEQ = CACHE_LINE + 4;
export const SLOT_LAST = CACHE_LINE + 8;
/** TOPIC_SLOT_MARKS u32 record positions, one per eighth of the ring (see TopicRingReader's lap). */
export const SLOT_MARKS = CACHE_LINE + 16;
export const TOPIC_SLOT_MARKS = 8;

export const SLOT_FREE = 0;
export const SLOT_LIVE = 1;
export const SLOT_GONE = 2;

/** Subscribers per topic: one wake bit each in WAKE0/WAKE1. */
export const TOPIC_MAX_SUBS = 64;
export const TOPIC_RECORD_HEADER = 8;
export const PAD_RECORD = 0xffff_ffff;
export const TOPIC_MIN_RING_BYTES = 4096;
export const TOPIC_MAX_RING_BYTES = 256 * 1024 * 1024;

/** Where ring `slot` starts. */
export function topicRingOffset(maxPubs: number, ringBytes: number, slot: number): number {
  const base = TOPIC_SLOTS_OFFSET + maxPubs * TOPIC_SLOT_BYTES;
  return base + slot * ringBytes;
}

/** Bytes of a topic segment with `maxPubs` rings of `ringBytes`. */
export function topicSegmentBytes(maxPubs: number, ringBytes: number): number {
  return topicRingOffset(maxPubs, ringBytes, maxPubs);
}

/** Largest payload one record may carry in a ring of `ringBytes`. */
export function topicMaxPayload(ringBytes: number): number {
  return ringBytes / 4 - TOPIC_RECORD_HEADER;
}
