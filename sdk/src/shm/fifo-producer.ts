// The producing end of a fifo: copies bytes in, publishes the tail, decides when to wake the peer.

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
/** Encodings in which a string of n characters whose byte length is n has one byte per character. */
const ONE_BYTE_PER_CHAR: ReadonlySet<string> = new Set(['latin1', 'binary', 'ascii', 'utf8', 'utf-8']);

/**
 * Writes into a fifo. Own state (tail, size, flags) is kept privately and only published; the
 * consumer's head is validated on every load, so a hostile consumer can fail this fifo but never
 * make it read or write out of bounds, loop, or throw.
 */
export class FifoProducer {
  readonly #ctl: Uint32Array;
  readonly #data: Uint8Array;
  readonly #size: number;
  readonly #mask: number;
  #tail: number;
  /** Last head seen and validated. */
  #head: number;
  #flags: number;
  #error: FerryError | null = null;
  /** Bytes the last writableView() offered at the current tail; 0 once used or invalidated. */
  #lent = 0;
  /** A Buffer over the data ring, made on the first string write (Buffer#write encodes in place). */
  #text: Buffer | null = null;

  /** `mem`: this fifo's views, kept from an earlier end of it (FifoMemory); made anew otherwise. */
  constructor(buf: ArrayBufferLike, offset: number, sizeBytes: number, mem: FifoMemory | null = null) {
    const v = openFifo(buf, offset, sizeBytes, mem);
    this.#ctl = v.ctl;
    this.#data = v.data;
    this.#size = v.sizeBytes;
    this.#mask = v.sizeBytes - 1;
    this.#tail = v.tail;
    this.#head = v.head;
    this.#flags = Atomics.load(v.ctl, PROD_FLAGS) & (FIFO_PROD_FIN | FIFO_PROD_RESET);
  }

  get sizeBytes(): number {
    return this.#size;
  }

  /** The views this end works through, for a later end of the same fifo (FifoMemory). */
  get memory(): FifoMemory {
    return { ctl: this.#ctl, data: this.#data };
  }

  /** ERR_FERRY_FIFO_CORRUPT once the consumer's index broke the rules, else null. */
  get error(): FerryError | null {
    return this.#error;
  }

  /** The consumer closed or reset its end: nothing written now will be read. */
  get peerClosed(): boolean {
    return (Atomics.load(this.#ctl, CONS_FLAGS) & (FIFO_CONS_CLOSED | FIFO_CONS_RESET)) !== 0;
  }

  /** Bytes that can be enqueued now; 0 when full or failed. */
  freeSpace(): number {
    if (this.#error !== null || !this.#loadHead()) return 0;
    return this.#size - ((this.#tail - this.#head) >>> 0);
  }

  /**
   * Copies as much of `src` as fits. Returns the bytes written (partial writes happen), 0 when
   * full, -1 when the fifo failed (see `error`) or this end already called fin() or reset().
   */
  enqueue(src: Uint8Array): number {
    this.#lent = 0;
    if (this.#error !== null || this.#flags !== 0) return -1;
    const len = src.length;
    let free = this.#size - ((this.#tail - this.#head) >>> 0);
    if (free < len) {
      if (!this.#loadHead()) return -1;
      free = this.#size - ((this.#tail - this.#head) >>> 0);
    }
    const n = Math.min(free, len);
    if (n === 0) return 0;
    const pos = this.#tail & this.#mask;
    const first = this.#size - pos;
    if (n <= first) {
      this.#data.set(n === len ? src : src.subarray(0, n), pos);
    } else {
      this.#data.set(src.subarray(0, first), pos);
      this.#data.set(src.subarray(first, n), 0);
    }
    this.#tail = (this.#tail + n) >>> 0;
    // store-release: producer-owned tail, after the bytes above (paired with load-acquire of
    // TAIL in FifoConsumer, which reads the bytes only after it sees this tail).
    storeRelease(this.#ctl, TAIL, this.#tail);
    return n;
  }

  /**
   * Encodes `str` (`byteLength` bytes in `encoding`, as Buffer.byteLength says) straight into the
   * ring, with no Buffer in between, when all of it fits in the free space: in one contiguous run,
   * or across the ring's end when every character is one byte (latin1, ascii, or utf8 of an ASCII
   * string), so that the split falls between characters. Returns the bytes written; 0 when it does
   * not fit so (the caller encodes a Buffer and uses enqueue()); -1 when the fifo failed or this
   * end already called fin() or reset().
   */
  enqueueString(str: string, encoding: BufferEncoding, byteLength: number): number {
    this.#lent = 0;
    if (this.#error !== null || this.#flags !== 0) return -1;
    if (this.#size - ((this.#tail - this.#head) >>> 0) < byteLength) {
      if (!this.#loadHead()) return -1;
      if (this.#size - ((this.#tail - this.#head) >>> 0) < byteLength) return 0;
    }
    if (byteLength === 0) return 0;
    const pos = this.#tail & this.#mask;
    const d = this.#data;
    this.#text ??= Buffer.from(d.buffer, d.byteOffset, d.byteLength);
    const first = this.#size - pos;
    let n: number;
    if (first >= byteLength) {
      n = this.#text.write(str, pos, byteLength, encoding);
    } else {
      // Across the ring's end (1 write in 16 of 64 KiB into a 1 MiB ring): the alternative is a
      // Buffer of the whole string and a second copy. Only where bytes and characters coincide.
      if (byteLength !== str.length || !ONE_BYTE_PER_CHAR.has(encoding)) return 0;
      n = this.#text.write(str, pos, first, encoding);
      if (n === first) n += this.#text.write(str.slice(first), 0, byteLength - first, encoding);
    }
    // Buffer#write stops short only at a character that does not fit, which byteLength excludes.
    if (n !== byteLength) return 0;
    this.#tail = (this.#tail + n) >>> 0;
    // store-release: producer-owned tail, after the bytes encoded above.
    storeRelease(this.#ctl, TAIL, this.#tail);
    return n;
  }

  /**
   * Copies every byte of `parts` or none, publishing the tail once, so the consumer never sees
   * some parts without the others (datagram frames). Returns the bytes written, 0 when they do not
   * all fit now, -1 when the fifo failed or this end already called fin() or reset().
   */
  enqueueAtomic(parts: readonly Uint8Array[]): number {
    this.#lent = 0;
    if (this.#error !== null || this.#flags !== 0) return -1;
    let len = 0;
    for (const p of parts) len += p.length;
    if (len > this.#size) return 0;
    if (this.#size - ((this.#tail - this.#head) >>> 0) < len) {
      if (!this.#loadHead()) return -1;
      if (this.#size - ((this.#tail - this.#head) >>> 0) < len) return 0;
    }
    let tail = this.#tail;
    for (const p of parts) {
      const pos = tail & this.#mask;
      const first = this.#size - pos;
      if (p.length <= first) {
        this.#data.set(p, pos);
      } else {
        this.#data.set(p.subarray(0, first), pos);
        this.#data.set(p.subarray(first), 0);
      }
      tail = (tail + p.length) >>> 0;
    }
    this.#tail = tail;
    // store-release, once for all parts (paired with the consumer's load-acquire of TAIL).
    storeRelease(this.#ctl, TAIL, this.#tail);
    return len;
  }

  /** The whole data ring, which writableView() returns views of (aliases shared memory). */
  get ring(): Uint8Array {
    return this.#data;
  }

  /**
   * The free space from the tail up to the head or the ring's end, whichever comes first (at most
   * `maxBytes`), for a writer that fills it in place (a kernel read): write into it, then commit()
   * what was written. Empty when full, failed or after fin()/reset(). The consumer cannot see the
   * bytes before commit(); an enqueue or commit invalidates the view (a later commit fails).
   */
  writableView(maxBytes = this.#size): Uint8Array {
    const n = this.lend(maxBytes);
    if (n === 0) return EMPTY;
    const pos = this.#tail & this.#mask;
    return this.#data.subarray(pos, pos + n);
  }

  /**
   * writableView() without the view (a writer that keeps its own over ring()): lends the same
   * space, from ring()[tailOffset], and returns its length (0: none). The same rules follow.
   */
  lend(maxBytes = this.#size): number {
    this.#lent = 0;
    if (this.#error !== null || this.#flags !== 0 || !this.#loadHead()) return 0;
    const pos = this.#tail & this.#mask;
    const n = Math.min(this.#size - ((this.#tail - this.#head) >>> 0), this.#size - pos, maxBytes);
    if (!(n >= 1)) return 0;
    this.#lent = Math.floor(n);
    return this.#lent;
  }

  /** Where the tail is in ring(): the next byte written goes there. */
  get tailOffset(): number {
    return this.#tail & this.#mask;
  }

  /**
   * Publishes the first `n` bytes of the last writableView(). Returns n; -1 when the fifo failed,
   * this end finished, or `n` is not a count that view offered (it was invalidated, or too short).
   */
  commit(n: number): number {
    const lent = this.#lent;
    this.#lent = 0;
    if (this.#error !== null || this.#flags !== 0) return -1;
    if (!(Number.isInteger(n) && n >= 0 && n <= lent)) return -1;
    if (n === 0) return 0;
    this.#tail = (this.#tail + n) >>> 0;
    // store-release: producer-owned tail, after the bytes written into the view (paired with the
    // consumer's load-acquire of TAIL). The space was free when lent and head only moves forward,
    // so it is still ours whatever the consumer did meanwhile.
    storeRelease(this.#ctl, TAIL, this.#tail);
    return n;
  }

  /** What the consumer announces it polls for (any u32 the peer wrote; 0: nothing). */
  peerPollId(): number {
    return Atomics.load(this.#ctl, POLL_ID);
  }

  /**
   * After an enqueue (or fin/reset): true when the consumer had asked to be woken. The flag is
   * cleared with a CAS, so exactly one call per arming returns true: wakeups are coalesced.
   */
  notifyNeeded(): boolean {
    // The plain load keeps the common, unarmed case free of a locked instruction.
    if (Atomics.load(this.#ctl, WANT_DATA) !== 1) return false;
    return compareExchange(this.#ctl, WANT_DATA, 1, 0) === 1;
  }

  /**
   * Asks the consumer to wake this end once `minBytes` are free (at most the size), then re-checks.
   * Returns true when that much is free already (or the fifo failed or the peer closed): do not
   * sleep then.
   */
  armSpace(minBytes = 1): boolean {
    minBytes = minBytes >= 1 ? Math.min(Math.floor(minBytes), this.#size) : 1;
    // The amount first, then the flag: a consumer that sees the flag sees this amount (or a later
    // one). seq-cst store then load: pairs with the consumer's head store followed by its load of
    // WANT_SPACE, so either it sees the flag or this end sees the new head (no lost wakeup).
    storeRelease(this.#ctl, WANT_SPACE_BYTES, minBytes);
    storeRelease(this.#ctl, WANT_SPACE, 1);
    if (this.#error !== null || this.peerClosed) return true;
    return this.freeSpace() >= minBytes || this.#error !== null;
  }

  /** No more data: the consumer sees `fin` once it has read everything before it. */
  fin(): void {
    this.#setFlag(FIFO_PROD_FIN);
  }

  /** Aborts: the consumer sees `peerReset` and should discard what is left. */
  reset(): void {
    this.#setFlag(FIFO_PROD_RESET);
  }

  #setFlag(flag: number): void {
    this.#lent = 0;
    this.#flags |= flag;
    // store-release: producer-owned flags, after the last tail store (the consumer loads the
    // flags before the tail, so a FIN it sees covers every byte).
    storeRelease(this.#ctl, PROD_FLAGS, this.#flags);
  }

  /** Loads and validates the consumer's head; false (and failed) when it broke the rules. */
  #loadHead(): boolean {
    // load-acquire: consumer-owned head (paired with its store-release after copying bytes out),
    // so the space it frees is not overwritten while it is still being read.
    const head = loadAcquire(this.#ctl, HEAD);
    if (head === this.#head) return true;
    if ((head - this.#head) >>> 0 > this.#size || (this.#tail - head) >>> 0 > this.#size) {
      this.#error = fifoCorrupt(`head moved from ${this.#head} to ${head} with tail ${this.#tail}`);
      return false;
    }
    this.#head = head;
    return true;
  }
}
