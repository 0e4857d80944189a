/**
 * Received values waiting for their reader: the buffer and the waiters behind a message channel's
 * and a topic subscriber's two iterators (one value per step, or batches(): every value buffered
 * per step). The owner pushes values, says when reading should resume, and ends the waiters; what
 * `next()` answers once the buffer is empty (more to wait for, done, or an error) it asks the owner.
 */
import type { FerryError } from '../errors.js';

/** A waiter of next() or, with `batch`, of nextBatch() (then handed an array of values). */
type Waiter = {
  resolve: (r: IteratorResult<unknown>) => void;
  reject: (e: Error) => void;
  batch?: boolean;
};

export interface InboxOwner {
  /** The reader took values and there is room again: read on (it may have stopped at the mark). */
  resume(): void;
  /** A waiter was handed values: its continuation should run soon (a poll may yield for it). */
  handed?(): void;
  /** With nothing buffered: an error to throw, true when the values have ended, false to wait. */
  ended(): FerryError | boolean;
}

export class ValueInbox {
  readonly #hwm: number;
  readonly #owner: InboxOwner;
  #values: unknown[] = [];
  #head = 0;
  #waiters: Waiter[] = [];
  #batchSoon = false;

  /** `highWaterMark`: the reader is resumed when it takes values from this many buffered. */
  constructor(highWaterMark: number, owner: InboxOwner) {
    this.#hwm = highWaterMark;
    this.#owner = owner;
  }

  /** Values received and not yet taken. */
  get size(): number {
    return this.#values.length - this.#head;
  }

  /** A value arrived: to the first waiter, else buffered. */
  push(value: unknown): void {
    const w = this.#waiters[0];
    if (w === undefined) {
      this.#values.push(value);
    } else if (w.batch) {
      // Everything delivered until the microtask runs goes in one array.
      this.#values.push(value);
      if (!this.#batchSoon) {
        this.#batchSoon = true;
        queueMicrotask(this.#handBatch);
        this.#owner.handed?.();
      }
    } else {
      this.#waiters.shift();
      w.resolve({ done: false, value });
      this.#owner.handed?.();
    }
  }

  readonly #handBatch = (): void => {
    this.#batchSoon = false;
    const w = this.#waiters[0];
    if (w?.batch && this.#head < this.#values.length) {
      this.#waiters.shift();
      w.resolve({ done: false, value: this.#takeAll() });
    }
  };

  /** Every buffered value, in order; reading resumes if it had stopped at the mark. */
  #takeAll(): unknown[] {
    const n = this.#values.length - this.#head;
    const out = this.#head === 0 ? this.#values : this.#values.slice(this.#head);
    this.#values = [];
    this.#head = 0;
    if (n >= this.#hwm - 1) this.#owner.resume();
    return out;
  }

  /** The value iterator's step. */
  next(): Promise<IteratorResult<unknown>> {
    if (this.#head < this.#values.length) {
      const value = this.#values[this.#head];
      this.#values[this.#head++] = undefined;
      if (this.#head === this.#values.length) {
        this.#values = [];
        this.#head = 0;
      }
      // Down to half the mark: read on. (At one below it, a consumer slower than its peer made a
      // read per value: 1.4-1.8 us of CPU each.)
      if (this.#values.length - this.#head === this.#hwm >> 1) this.#owner.resume();
      return Promise.resolve({ done: false, value });
    }
    const end = this.#owner.ended();
    if (end instanceof Error) return Promise.reject(end);
    if (end) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** The batches() iterator's step: every buffered value (at least one) in an array. */
  nextBatch(): Promise<IteratorResult<unknown[]>> {
    if (this.#head < this.#values.length) return Promise.resolve({ done: false, value: this.#takeAll() });
    const end = this.#owner.ended();
    if (end instanceof Error) return Promise.reject(end);
    if (end) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) =>
      this.#waiters.push({ resolve: resolve as Waiter['resolve'], reject, batch: true }),
    );
  }

  /** The owner's value iterator (one value per step); leaving the loop early runs `leave`. */
  iterator(leave: () => Promise<void>): AsyncIterator<unknown> {
    return { next: () => this.next(), return: () => returned(leave) };
  }

  /** The owner's batches() iterator (every buffered value per step); leaving early runs `leave`. */
  batchIterator(leave: () => Promise<void>): AsyncIterableIterator<unknown[]> {
    const it: AsyncIterableIterator<unknown[]> = {
      next: () => this.nextBatch(),
      return: () => returned(leave),
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  /** Ends every pending step: with `err` thrown, or done when null. Buffered values stay. */
  endWaiters(err: Error | null): void {
    for (const w of this.#waiters.splice(0)) {
      if (err) w.reject(err);
      else w.resolve({ done: true, value: undefined });
    }
  }
}

/** An iterator's return(): the owner leaves (closes), then the loop is done. */
async function returned(leave: () => Promise<void>): Promise<IteratorReturnResult<undefined>> {
  await leave();
  return { done: true, value: undefined };
}
