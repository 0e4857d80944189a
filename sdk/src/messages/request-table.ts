/**
 * The requests a channel has in flight: correlation ids, timeouts (ETIMEDOUT), AbortSignals, and
 * settling by reply. Every entry leaves the table exactly once (reply, timeout, abort or rejectAll),
 * with its timer and abort listener.
 */
import { type FerryError, ferryError } from '../errors.js';

interface Pending {
  id: number;
  promise: Promise<unknown>;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** A request with its own timeout has its own timer. */
  timer: NodeJS.Timeout | null;
  /** A request with the channel's default timeout: when it expires (performance.now() ms), else 0. */
  deadline: number;
  signal: AbortSignal | null;
  onAbort: (() => void) | null;
  /** Left the table (the deadline queue skips it). */
  done: boolean;
}

/** Stand-ins an entry holds for the moment between its making and its promise's (one shape). */
const NO_PROMISE: Promise<unknown> = Promise.resolve();
const noop = (): void => {};

/**
 * One executor for every request's promise: it leaves the resolvers here for add() to take at once
 * (a closure per request, over the entry, cost a function and a context).
 */
let lastResolve: (v: unknown) => void = noop;
let lastReject: (e: Error) => void = noop;
function takeResolvers(resolve: (v: unknown) => void, reject: (e: Error) => void): void {
  lastResolve = resolve;
  lastReject = reject;
}

/** Slots the table starts with (a power of two); it doubles when half of them are in use. */
const INITIAL_SLOTS = 64;
/** Entries that left the deadline queue's front before the array is cut down to the rest. */
const QUEUE_COMPACT_MIN = 256;

/** An AbortSignal's abort as Node reports it (AbortError, code ABORT_ERR, the reason as cause). */
export function abortError(signal: AbortSignal): Error {
  const err = new Error('The request was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  (err as Error & { code: string }).code = 'ABORT_ERR';
  return err;
}

export class RequestTable {
  readonly #defaultTimeoutMs: number;
  readonly #onCancel: (id: number) => void;
  /**
   * Pending requests by `id & #mask`: a request costs an array store, not a Map entry. An id whose
   * slot is taken (a request still pending from ids ago) is skipped when ids are handed out, and
   * the table doubles before it is half full, so that few are skipped.
   */
  #slots: (Pending | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined);
  #mask = INITIAL_SLOTS - 1;
  #size = 0;
  /**
   * Requests with the default timeout in the order they were made, which is their deadlines'
   * order (the same timeout from a monotonic clock): one timer, armed for the first deadline, serves
   * them all, and a request costs an array push rather than a setTimeout. Entries that left the table
   * are dropped from the front as they leave, and swept out when they outnumber the pending ones.
   */
  #queue: Pending[] = [];
  #queueHead = 0;
  #timer: NodeJS.Timeout | null = null;
  #nextId = 1;
  /**
   * Ids wrapped past 2^32 once: any id may have been issued, so a reply to an unknown one is late.
   * (An id skipped for a held slot is below #nextId: a reply to it counts as late, not unknown.)
   */
  #wrapped = false;
  #late = 0;

  /** `onCancel(id)` runs when a sent request times out or is aborted (the peer may stop working). */
  constructor(defaultTimeoutMs: number, onCancel: (id: number) => void) {
    this.#defaultTimeoutMs = defaultTimeoutMs;
    this.#onCancel = onCancel;
  }

  get size(): number {
    return this.#size;
  }

  /** Replies that came after their request timed out or was aborted (dropped). */
  get lateReplies(): number {
    return this.#late;
  }

  /**
   * Registers a request and returns its id and promise (in the table's own entry: no object more
   * per request). `timeoutMs` 0 or Infinity: none. `now`: performance.now() if the caller read it
   * (the default timeout's deadline counts from it). Throws the abort error synchronously when
   * `signal` is already aborted (nothing was registered).
   */
  add(
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    now?: number,
  ): { readonly id: number; readonly promise: Promise<unknown> } {
    if (signal?.aborted) throw abortError(signal);
    if (this.#size * 2 >= this.#slots.length) this.#grow();
    const id = this.#allocId();
    const entry: Pending = {
      id,
      promise: NO_PROMISE,
      resolve: noop,
      reject: noop,
      timer: null,
      deadline: 0,
      signal: null,
      onAbort: null,
      done: false,
    };
    entry.promise = new Promise<unknown>(takeResolvers);
    entry.resolve = lastResolve;
    entry.reject = lastReject;
    // Left here they would hold this promise, and through it its reply, until the next request.
    lastResolve = noop;
    lastReject = noop;
    const ms = timeoutMs ?? this.#defaultTimeoutMs;
    if (ms > 0 && ms < Number.POSITIVE_INFINITY) {
      if (ms === this.#defaultTimeoutMs) this.#enqueue(entry, ms, now ?? performance.now());
      else {
        entry.timer = setTimeout(() => this.#expire(entry, ms), ms);
        entry.timer.unref();
      }
    }
    if (signal) {
      entry.signal = signal;
      entry.onAbort = () => {
        if (this.#take(entry)) {
          entry.reject(abortError(signal));
          this.#onCancel(id);
        }
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    this.#slots[id & this.#mask] = entry;
    this.#size++;
    return entry;
  }

  /**
   * Settles request `id` with the peer's reply. 'ok'; 'late' when it already timed out or was
   * aborted (the reply is dropped); 'unknown' when no such id was ever issued (a broken peer).
   */
  settle(id: number, value: unknown, failed: boolean): 'ok' | 'late' | 'unknown' {
    const entry = this.#slots[id & this.#mask];
    if (entry === undefined || entry.id !== id) {
      if (!this.#wrapped && id >= this.#nextId) return 'unknown';
      this.#late++;
      return 'late';
    }
    this.#take(entry);
    if (failed) entry.reject(value as Error);
    else entry.resolve(value);
    return 'ok';
  }

  /** Rejects one request that could not be sent (nothing of it reached the peer). */
  fail(id: number, err: Error): void {
    const entry = this.#slots[id & this.#mask];
    if (entry !== undefined && entry.id === id && this.#take(entry)) entry.reject(err);
  }

  /** Rejects every pending request with `err` (the channel closed or failed). */
  rejectAll(err: FerryError): void {
    const all = this.#slots.filter((e): e is Pending => e !== undefined).sort((a, b) => a.id - b.id);
    for (const entry of all) if (this.#take(entry)) entry.reject(err);
  }

  #allocId(): number {
    for (;;) {
      const id = this.#nextId;
      if (id >= 0xffff_ffff) {
        this.#nextId = 1;
        this.#wrapped = true;
      } else {
        this.#nextId = id + 1;
      }
      // A slot still held (a request pending since many ids ago) skips its id. Fewer than half
      // the slots are held, so this ends.
      if (this.#slots[id & this.#mask] === undefined) return id;
    }
  }

  /** Twice the slots: two pending ids apart in the old mask stay apart in the new one. */
  #grow(): void {
    const slots: (Pending | undefined)[] = new Array(this.#slots.length * 2).fill(undefined);
    const mask = slots.length - 1;
    for (const e of this.#slots) if (e !== undefined) slots[e.id & mask] = e;
    this.#slots = slots;
    this.#mask = mask;
  }

  /** Takes the entry out of the table; false when it already left. */
  #take(entry: Pending): boolean {
    if (entry.done) return false;
    entry.done = true;
    this.#slots[entry.id & this.#mask] = undefined;
    this.#size--;
    if (entry.timer !== null) clearTimeout(entry.timer);
    if (entry.deadline !== 0) this.#dropLeft();
    if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    return true;
  }

  #expire(entry: Pending, ms: number): void {
    if (!this.#take(entry)) return;
    entry.reject(ferryError('ETIMEDOUT', `no reply in ${ms} ms`));
    this.#onCancel(entry.id);
  }

  #enqueue(entry: Pending, ms: number, now: number): void {
    entry.deadline = now + ms;
    this.#queue.push(entry);
    if (this.#timer === null) this.#arm(entry.deadline);
  }

  /** Drops the entries that left the table from the queue's front; sweeps it when they pile up. */
  #dropLeft(): void {
    const q = this.#queue;
    let head = this.#queueHead;
    while (head < q.length && (q[head] as Pending).done) head++;
    // Emptied, the array is kept (cut down in #setHead): `length = 0` gave up its backing store,
    // which the next request's push allocated again, on every round trip.
    if (head < q.length && q.length - head > 2 * this.#size + 64) {
      // Requests answered out of order behind one still pending: keep the pending only.
      this.#queue = q.slice(head).filter((e) => !e.done);
      head = 0;
    }
    this.#setHead(head);
  }

  /**
   * The queue's front is now at `head`. The entries before it left the table but are still in the
   * array, each holding its promise's resolvers (and through them the reply): while requests are
   * pipelined the queue never empties, so they are cut off once they are most of the array.
   */
  #setHead(head: number): void {
    if (head >= QUEUE_COMPACT_MIN && head * 2 >= this.#queue.length) {
      this.#queue.splice(0, head);
      this.#queueHead = 0;
    } else {
      this.#queueHead = head;
    }
  }

  #arm(deadline: number): void {
    const delay = Math.max(0, deadline - performance.now());
    this.#timer = setTimeout(this.#onTimer, delay);
    // A pending request keeps the process alive through the channel, not through this timer.
    this.#timer.unref();
  }

  readonly #onTimer = (): void => {
    this.#timer = null;
    const now = performance.now();
    const ms = this.#defaultTimeoutMs;
    // Expiring rejects promises (whose continuations run later) and sends CANCELs; the queue
    // may change meanwhile, so each step reads it afresh.
    for (;;) {
      const q = this.#queue;
      const head = this.#queueHead;
      if (head >= q.length) return;
      const e = q[head] as Pending;
      if (!e.done && e.deadline > now) {
        this.#arm(e.deadline);
        return;
      }
      if (e.done) {
        this.#setHead(head + 1);
        continue;
      }
      this.#expire(e, ms);
    }
  };
}
