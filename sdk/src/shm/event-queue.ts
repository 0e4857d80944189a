// Per-direction SPSC queue of u32 "slot N has events" entries, with coalesced wakeups and overflow.
//
// Several producers never share one queue: ferryd gives each peer pair its own queue per direction,
// placed in that pair's segment, so a hostile peer can only damage the queue it shares with its
// victim, and the queue stays single-producer, lock-free and simple. When the ring is full the
// producer does not block or drop silently: it sets OVERFLOW, and the consumer answers by clearing
// it and rescanning every slot, so no event is lost and nobody waits on anybody.

import { FerryError, ferryError } from '../errors.js';
import { compareExchange, loadAcquire, storeRelease } from './atomics.js';
import {
  EVENT_QUEUE_CAPACITY_OFFSET,
  EVENT_QUEUE_ENTRIES_OFFSET,
  EVENT_QUEUE_ENTRY_BYTES,
  EVENT_QUEUE_HEAD_OFFSET,
  EVENT_QUEUE_HEADER_BYTES,
  EVENT_QUEUE_MAGIC,
  EVENT_QUEUE_MAGIC_OFFSET,
  EVENT_QUEUE_MAX_CAPACITY,
  EVENT_QUEUE_MIN_CAPACITY,
  EVENT_QUEUE_OVERFLOW_OFFSET,
  EVENT_QUEUE_TAIL_OFFSET,
  EVENT_QUEUE_WANT_WAKE_OFFSET,
} from './event-queue-layout.js';
import { alignUp, CACHE_LINE, isAligned, isPowerOfTwo } from './layout.js';

const HEAD = EVENT_QUEUE_HEAD_OFFSET / 4;
const TAIL = EVENT_QUEUE_TAIL_OFFSET / 4;
const WANT_WAKE = EVENT_QUEUE_WANT_WAKE_OFFSET / 4;
const OVERFLOW = EVENT_QUEUE_OVERFLOW_OFFSET / 4;

/** drain() result when entries were lost to overflow: the consumer must rescan every slot. */
export const EVENT_QUEUE_RESCAN = 'rescan';
export type EventQueueRescan = typeof EVENT_QUEUE_RESCAN;

function validCapacity(capacity: number): boolean {
  return (
    isPowerOfTwo(capacity) && capacity >= EVENT_QUEUE_MIN_CAPACITY && capacity <= EVENT_QUEUE_MAX_CAPACITY
  );
}

/** Bytes an event queue of `capacity` entries occupies (a cache-line multiple). */
export function eventQueueFootprint(capacity: number): number {
  if (!validCapacity(capacity)) {
    throw new FerryError('ERR_OUT_OF_RANGE', `event queue capacity ${capacity} must be a power of two >= 16`);
  }
  return EVENT_QUEUE_HEADER_BYTES + alignUp(capacity * EVENT_QUEUE_ENTRY_BYTES, CACHE_LINE);
}

/** Writes an empty queue at `offset` (creator only, before either end is constructed). */
export function initEventQueue(buf: ArrayBufferLike, offset: number, capacity: number): void {
  const footprint = eventQueueFootprint(capacity);
  if (!isAligned(offset, CACHE_LINE) || offset + footprint > buf.byteLength) {
    throw new FerryError('ERR_OUT_OF_RANGE', `event queue at ${offset} (+${footprint}) does not fit`);
  }
  const ctl = new Uint32Array(buf, offset, EVENT_QUEUE_HEADER_BYTES / 4);
  ctl.fill(0);
  ctl[EVENT_QUEUE_CAPACITY_OFFSET / 4] = capacity;
  Atomics.store(ctl, EVENT_QUEUE_MAGIC_OFFSET / 4, EVENT_QUEUE_MAGIC);
}

interface QueueViews {
  ctl: Uint32Array;
  entries: Uint32Array;
  capacity: number;
  head: number;
  tail: number;
}

function openEventQueue(buf: ArrayBufferLike, offset: number, capacity: number): QueueViews {
  const bad = (d: string) => ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `event queue at ${offset}: ${d}`);
  if (!validCapacity(capacity)) throw bad(`capacity ${capacity} is not a power of two >= 16`);
  if (!isAligned(offset, CACHE_LINE)) throw bad('offset is not cache-line aligned');
  if (offset + eventQueueFootprint(capacity) > buf.byteLength) throw bad('does not fit the buffer');
  const ctl = new Uint32Array(buf, offset, EVENT_QUEUE_HEADER_BYTES / 4);
  const magic = Atomics.load(ctl, EVENT_QUEUE_MAGIC_OFFSET / 4);
  if (magic !== EVENT_QUEUE_MAGIC) throw bad(`magic 0x${magic.toString(16)}`);
  const shared = Atomics.load(ctl, EVENT_QUEUE_CAPACITY_OFFSET / 4);
  if (shared !== capacity) throw bad(`header says ${shared} entries, control plane said ${capacity}`);
  const head = Atomics.load(ctl, HEAD);
  const tail = Atomics.load(ctl, TAIL);
  if ((tail - head) >>> 0 > capacity) throw bad(`indices head ${head} tail ${tail} are inconsistent`);
  const entries = new Uint32Array(buf, offset + EVENT_QUEUE_ENTRIES_OFFSET, capacity);
  return { ctl, entries, capacity, head, tail };
}

function queueCorrupt(detail: string): FerryError {
  return ferryError('ERR_FERRY_QUEUE_CORRUPT', detail);
}

/** The writing end: push entries, flag overflow when full, decide when to ring. */
export class EventQueueProducer {
  readonly #ctl: Uint32Array;
  readonly #entries: Uint32Array;
  readonly #capacity: number;
  #tail: number;
  #head: number;
  #error: FerryError | null = null;

  constructor(buf: ArrayBufferLike, offset: number, capacity: number) {
    const v = openEventQueue(buf, offset, capacity);
    this.#ctl = v.ctl;
    this.#entries = v.entries;
    this.#capacity = v.capacity;
    this.#tail = v.tail;
    this.#head = v.head;
  }

  get error(): FerryError | null {
    return this.#error;
  }

  /**
   * Queues `value` (a u32). Returns true when it was queued, false when the ring was full (OVERFLOW
   * is set instead, so the consumer rescans: the event is not lost) or the queue failed.
   */
  push(value: number): boolean {
    if (this.#error !== null) return false;
    if ((this.#tail - this.#head) >>> 0 >= this.#capacity && !this.#loadHead()) return false;
    if ((this.#tail - this.#head) >>> 0 >= this.#capacity) {
      if (Atomics.load(this.#ctl, OVERFLOW) !== 1) storeRelease(this.#ctl, OVERFLOW, 1);
      return false;
    }
    this.#entries[this.#tail & (this.#capacity - 1)] = value;
    this.#tail = (this.#tail + 1) >>> 0;
    // store-release: producer-owned tail, after the entry (paired with load-acquire in drain()).
    storeRelease(this.#ctl, TAIL, this.#tail);
    return true;
  }

  /** After pushes: true once per arming (CAS 1 -> 0) when the consumer sleeps; ring it then. */
  wakeNeeded(): boolean {
    if (Atomics.load(this.#ctl, WANT_WAKE) !== 1) return false;
    return compareExchange(this.#ctl, WANT_WAKE, 1, 0) === 1;
  }

  /**
   * The consumer armed its wake flag and nothing has rung it since: it sleeps (or is about to), so
   * it posts nothing back until rung. A read, not a claim: wakeNeeded() still decides the ring.
   */
  get consumerArmed(): boolean {
    return Atomics.load(this.#ctl, WANT_WAKE) === 1;
  }

  #loadHead(): boolean {
    // load-acquire: consumer-owned head (paired with its store-release after reading entries).
    const head = loadAcquire(this.#ctl, HEAD);
    if (head === this.#head) return true;
    if ((head - this.#head) >>> 0 > this.#capacity || (this.#tail - head) >>> 0 > this.#capacity) {
      this.#error = queueCorrupt(`head moved from ${this.#head} to ${head} with tail ${this.#tail}`);
      return false;
    }
    this.#head = head;
    return true;
  }
}

/** The reading end: drain entries (validated), or learn that a rescan is needed. */
export class EventQueueConsumer {
  readonly #ctl: Uint32Array;
  readonly #entries: Uint32Array;
  readonly #capacity: number;
  readonly #maxEntryValue: number;
  #head: number;
  #tail: number;
  #error: FerryError | null = null;

  constructor(buf: ArrayBufferLike, offset: number, capacity: number, maxEntryValue: number) {
    if (!Number.isInteger(maxEntryValue) || maxEntryValue < 0 || maxEntryValue > 0xffff_ffff) {
      throw new FerryError('ERR_OUT_OF_RANGE', `maxEntryValue ${maxEntryValue} is not a u32`);
    }
    const v = openEventQueue(buf, offset, capacity);
    this.#ctl = v.ctl;
    this.#entries = v.entries;
    this.#capacity = v.capacity;
    this.#head = v.head;
    this.#tail = v.tail;
    this.#maxEntryValue = maxEntryValue;
  }

  get error(): FerryError | null {
    return this.#error;
  }

  /**
   * Calls `onEntry` for up to `max` queued entries, in order. Returns how many were delivered,
   * EVENT_QUEUE_RESCAN when entries were lost to overflow (the queue is emptied; rescan every
   * slot), or -1 when the queue failed (see `error`): an index or entry broke the rules.
   */
  drain(onEntry: (value: number) => void, max: number = this.#capacity): number | EventQueueRescan {
    if (this.#error !== null) return -1;
    if (Atomics.load(this.#ctl, OVERFLOW) !== 0) {
      // Clear first, then discard: anything pushed after the clear is either still queued or
      // sets OVERFLOW again, and the caller's rescan (which follows) covers everything before.
      storeRelease(this.#ctl, OVERFLOW, 0);
      if (!this.#loadTail()) return -1;
      this.#head = this.#tail;
      storeRelease(this.#ctl, HEAD, this.#head);
      return EVENT_QUEUE_RESCAN;
    }
    if (!this.#loadTail()) return -1;
    const avail = (this.#tail - this.#head) >>> 0;
    const n = Math.min(avail, max);
    let done = 0;
    try {
      for (; done < n; done++) {
        const value = this.#entries[(this.#head + done) & (this.#capacity - 1)] as number;
        if (value > this.#maxEntryValue) {
          this.#error = queueCorrupt(`entry ${value} exceeds ${this.#maxEntryValue}`);
          return -1;
        }
        onEntry(value);
      }
    } finally {
      if (done > 0) {
        this.#head = (this.#head + done) >>> 0;
        // store-release: consumer-owned head, after the entries were read.
        storeRelease(this.#ctl, HEAD, this.#head);
      }
    }
    return done;
  }

  /** Asks to be woken, then re-checks: true when entries or an overflow are already pending. */
  armWake(): boolean {
    // seq-cst store then loads: pairs with the producer's tail/overflow store then its load of
    // WANT_WAKE, so one of the two sides sees the other (no lost wakeup).
    storeRelease(this.#ctl, WANT_WAKE, 1);
    if (this.#error !== null || Atomics.load(this.#ctl, OVERFLOW) !== 0) return true;
    if (!this.#loadTail()) return true;
    return this.#tail !== this.#head;
  }

  #loadTail(): boolean {
    // load-acquire: producer-owned tail (paired with its store-release after writing the entry).
    const tail = loadAcquire(this.#ctl, TAIL);
    if (tail === this.#tail) return true;
    if ((tail - this.#tail) >>> 0 > this.#capacity || (tail - this.#head) >>> 0 > this.#capacity) {
      this.#error = queueCorrupt(`tail moved from ${this.#tail} to ${tail} with head ${this.#head}`);
      return false;
    }
    this.#tail = tail;
    return true;
  }
}
