// The consuming end of a fifo: reads or views bytes, publishes the head, decides when to wake.

import type { FerryError } from '../errors.js';
import { compareExchange, loadAcquire, storeRelease } from './atomics.js';
import { type FifoMemory, fifoCorrupt, openFifo } from './fifo.js';
import {
  FIFO_CONS_CLOSED,
  FIFO_CONS_FLAGS_OFFSET,
  FIFO_CONS_RESET,
  FIFO_HEAD_OFFSET,
  FIFO_POLL_ID_OFFSET,
  FIFO_PROD_FIN,
  FIFO_PROD_FLAGS_OFFSET,
  FIFO_PROD_RESET,
  FIFO_TAIL_OFFSET,
  FIFO_WANT_DATA_OFFSET,
  FIFO_WANT_SPACE_BYTES_OFFSET,
  FIFO_WANT_SPACE_OFFSET,
} from './fifo-layout.js';

const HEAD = FIFO_HEAD_OFFSET / 4;
const TAIL = FIFO_TAIL_OFFSET / 4;
const CONS_FLAGS = FIFO_CONS_FLAGS_OFFSET / 4;
const PROD_FLAGS = FIFO_PROD_FLAGS_OFFSET / 4;
const WANT_DATA = FIFO_WANT_DATA_OFFSET / 4;
const POLL_ID = FIFO_POLL_ID_OFFSET / 4;
const WANT_SPACE = FIFO_WANT_SPACE_OFFSET / 4;
const WANT_SPACE_BYTES = FIFO_WANT_SPACE_BYTES_OFFSET / 4;
const EMPTY = new Uint8Array(0);

/**
 * Reads from a fifo. Own state (head, size, flags) is private and only published; the producer's
 * tail is validated on every load (it may only move forward, by at most the size, and never past
 * head + size), so a hostile producer can fail this fifo but not make it misbehave.
 */
export class FifoConsumer {
  readonly #ctl: Uint32Array;
  readonly #data: Uint8Array;
  readonly #size: number;
  readonly #mask: number;
  #head: number;
  /** Last tail seen and validated. */
  #tail: number;
  #flags = 0;
  #error: FerryError | null = null;

  /** `mem`: this fifo's views, kept from an earlier end of it (FifoMemory); made anew otherwise. */
  constructor(buf: ArrayBufferLike, offset: number, sizeBytes: number, mem: FifoMemory | null = null) {
    const v = openFifo(buf, offset, sizeBytes, mem);
    this.#ctl = v.ctl;
    this.#data = v.data;
    this.#size = v.sizeBytes;
    this.#mask = v.sizeBytes - 1;
    this.#head = v.head;
    this.#tail = v.tail;
    this.#flags = Atomics.load(v.ctl, CONS_FLAGS) & (FIFO_CONS_CLOSED | FIFO_CONS_RESET);
  }

  get sizeBytes(): number {
    return this.#size;
  }

  /** The views this end works through, for a later end of the same fifo (FifoMemory). */
  get memory(): FifoMemory {
    return { ctl: this.#ctl, data: this.#data };
  }

  /** ERR_FERRY_FIFO_CORRUPT once the producer's index broke the rules, else null. */
  get error(): FerryError | null {
    return this.#error;
  }

  /** The producer finished and every byte before its FIN has been consumed. */
  get fin(): boolean {
    // Flags before tail: the producer stores FIN after its last tail, so this tail is final.
    const flags = Atomics.load(this.#ctl, PROD_FLAGS);
    return (flags & FIFO_PROD_FIN) !== 0 && this.readable() === 0;
  }

  /** The producer set FIN (bytes before it may still be unread). */
  get finSet(): boolean {
    return (Atomics.load(this.#ctl, PROD_FLAGS) & FIFO_PROD_FIN) !== 0;
  }

  /** The producer aborted. */
  get peerReset(): boolean {
    return (Atomics.load(this.#ctl, PROD_FLAGS) & FIFO_PROD_RESET) !== 0;
  }

  /** Bytes that can be read now; 0 when empty or failed. */
  readable(): number {
    if (this.#error !== null || !this.#loadTail()) return 0;
    return (this.#tail - this.#head) >>> 0;
  }

  /** Copies up to dst.length bytes out and consumes them; 0 when empty, -1 when failed. */
  dequeue(dst: Uint8Array): number {
    const n = this.peek(dst, 0);
    if (n > 0) this.#advance(n);
    return n;
  }

  /** Copies up to dst.length bytes, starting `skip` bytes in, without consuming; -1 when failed. */
  peek(dst: Uint8Array, skip = 0): number {
    if (this.#error !== null) return -1;
    const want = dst.length + skip;
    let avail = (this.#tail - this.#head) >>> 0;
    if (avail < want) {
      if (!this.#loadTail()) return -1;
      avail = (this.#tail - this.#head) >>> 0;
    }
    if (!(skip >= 0 && avail > skip)) return 0;
    const n = Math.min(avail - skip, dst.length);
    const pos = ((this.#head + skip) >>> 0) & this.#mask;
    const first = this.#size - pos;
    const data = this.#data;
    if (n <= first) {
      dst.set(data.subarray(pos, pos + n));
    } else {
      dst.set(data.subarray(pos, this.#size));
      dst.set(data.subarray(0, n - first), first);
    }
    return n;
  }

  /** Consumes up to `n` readable bytes without copying; returns how many; -1 when failed. */
  drop(n: number): number {
    if (this.#error !== null) return -1;
    let avail = (this.#tail - this.#head) >>> 0;
    if (avail < n) {
      if (!this.#loadTail()) return -1;
      avail = (this.#tail - this.#head) >>> 0;
    }
    const k = n > 0 ? (avail < n ? avail : Math.floor(n)) : 0;
    if (k > 0) this.#advance(k);
    return k;
  }

  /** The whole data ring, which readableViews() are views of (aliases shared memory). */
  get ring(): Uint8Array {
    return this.#data;
  }

  /** Where the head is in ring(): the readable bytes (readable() of them) start there. */
  get headOffset(): number {
    return this.#head & this.#mask;
  }

  /**
   * Zero-copy views of every readable byte (two when the data wraps); call drop() when done.
   * The views alias shared memory the producer can still write (a hostile one may): copy
   * before parsing anything whose validity you check. They are invalid after drop().
   */
  readableViews(): [Uint8Array] | [Uint8Array, Uint8Array] {
    const n = this.readable();
    if (n === 0) return [EMPTY];
    const pos = this.#head & this.#mask;
    const first = this.#size - pos;
    if (n <= first) return [this.#data.subarray(pos, pos + n)];
    return [this.#data.subarray(pos, this.#size), this.#data.subarray(0, n - first)];
  }

  /**
   * A zero-copy view of the readable bytes from the head, up to the end of the ring and at most
   * `max` of them (empty when none): readableViews()' first view without the array, the second
   * view or a subarray of the first. The same rules: invalid after drop(), aliases shared memory.
   */
  readableView(max: number): Uint8Array {
    const n = this.readable();
    if (n === 0) return EMPTY;
    const pos = this.#head & this.#mask;
    return this.#data.subarray(pos, pos + Math.min(n, this.#size - pos, max));
  }

  /** Stops reading: the producer sees `peerClosed`. */
  close(): void {
    this.#flags |= FIFO_CONS_CLOSED;
    // store-release: consumer-owned flags.
    storeRelease(this.#ctl, CONS_FLAGS, this.#flags);
  }

  /** Announces to the producer what this end polls for now (0: nothing); see fifo-layout.ts. */
  announcePoll(id: number): void {
    Atomics.store(this.#ctl, POLL_ID, id);
  }

  /**
   * Asks the producer to wake this end when data arrives, then re-checks. Returns true when data,
   * FIN or RESET is already there (or the fifo failed): do not sleep then.
   */
  armData(): boolean {
    // seq-cst store then load: pairs with the producer's tail store followed by its load of
    // WANT_DATA, so either it sees the flag or this end sees the new tail (no lost wakeup).
    storeRelease(this.#ctl, WANT_DATA, 1);
    if (this.readable() > 0 || this.#error !== null) return true;
    return (Atomics.load(this.#ctl, PROD_FLAGS) & (FIFO_PROD_FIN | FIFO_PROD_RESET)) !== 0;
  }

  /**
   * After a dequeue/drop: true (once per arming, CAS 1 -> 0) when the producer waits for space and
   * as much is free as it asked for (WANT_SPACE_BYTES; at most the size, so an emptied fifo always
   * rings). Free space is counted with the last tail seen, which can only overstate it: a ring may
   * come early, never late.
   */
  spaceNotifyNeeded(): boolean {
    if (Atomics.load(this.#ctl, WANT_SPACE) !== 1) return false;
    const want = Atomics.load(this.#ctl, WANT_SPACE_BYTES);
    if (want > 1 && this.#size - ((this.#tail - this.#head) >>> 0) < Math.min(want, this.#size)) return false;
    return compareExchange(this.#ctl, WANT_SPACE, 1, 0) === 1;
  }

  #advance(n: number): void {
    this.#head = (this.#head + n) >>> 0;
    // store-release: consumer-owned head, after the bytes were copied out (paired with the
    // producer's load-acquire of HEAD before it overwrites that space).
    storeRelease(this.#ctl, HEAD, this.#head);
  }

  /** Loads and validates the producer's tail; false (and failed) when it broke the rules. */
  #loadTail(): boolean {
    // load-acquire: producer-owned tail (paired with its store-release after copying bytes in).
    const tail = loadAcquire(this.#ctl, TAIL);
    if (tail === this.#tail) return true;
    if ((tail - this.#tail) >>> 0 > this.#size || (tail - this.#head) >>> 0 > this.#size) {
      this.#error = fifoCorrupt(`tail moved from ${this.#tail} to ${tail} with head ${this.#head}`);
      return false;
    }
    this.#tail = tail;
    return true;
  }
}
