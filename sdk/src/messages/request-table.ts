/**
 * The requests a channel has in flight: correlation ids, timeouts (ETIMEDOUT), AbortSignals, and
 * settling by reply. Every entry leaves the table exactly once (reply, timeout, abort or rejectAll),
 * with its timer and abort listener.
 */
import { type FerryError, ferryError } from '../errors.js';

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  /** A request with its own timeout has its own timer; the default one shares buckets. */
  timer: NodeJS.Timeout | null;
  bucket: number;
  signal: AbortSignal | null;
  onAbort: (() => void) | null;
}

/**
 * Requests with the channel's default timeout share one timer: their deadlines fall into buckets
 * of BUCKET_MS, created in time order, so the table's first bucket is always the next to expire and
 * a request costs a Set insertion rather than a setTimeout. A timeout fires up to BUCKET_MS late.
 */
const BUCKET_MS = 10;

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
  #pending = new Map<number, Pending>();
  #buckets = new Map<number, Set<number>>();
  #timer: NodeJS.Timeout | null = null;
  #nextId = 1;
  /** Ids wrapped past 2^32 once: any id may have been issued, so a reply to an unknown one is late. */
  #wrapped = false;
  #late = 0;

  /** `onCancel(id)` runs when a sent request times out or is aborted (the peer may stop working). */
  constructor(defaultTimeoutMs: number, onCancel: (id: number) => void) {
    this.#defaultTimeoutMs = defaultTimeoutMs;
    this.#onCancel = onCancel;
  }

  get size(): number {
    return this.#pending.size;
  }

  /** Replies that came after their request timed out or was aborted (dropped). */
  get lateReplies(): number {
    return this.#late;
  }

  /**
   * Registers a request and returns its id and promise. `timeoutMs` 0 or Infinity: none. Throws
   * the abort error synchronously when `signal` is already aborted (nothing was registered).
   */
  add(
    timeoutMs: number | undefined,
    signal: AbortSignal | undefined,
  ): { id: number; promise: Promise<unknown> } {
    if (signal?.aborted) throw abortError(signal);
    const id = this.#allocId();
    let entry!: Pending;
    const promise = new Promise<unknown>((resolve, reject) => {
      entry = { resolve, reject, timer: null, bucket: 0, signal: null, onAbort: null };
    });
    const ms = timeoutMs ?? this.#defaultTimeoutMs;
    if (ms > 0 && ms < Number.POSITIVE_INFINITY) {
      if (ms === this.#defaultTimeoutMs) this.#addToBucket(entry, id, ms);
      else {
        entry.timer = setTimeout(() => this.#expire(id, ms), ms);
        entry.timer.unref();
      }
    }
    if (signal) {
      entry.signal = signal;
      entry.onAbort = () => {
        if (this.#take(id)) {
          entry.reject(abortError(signal));
          this.#onCancel(id);
        }
      };
      signal.addEventListener('abort', entry.onAbort, { once: true });
    }
    this.#pending.set(id, entry);
    return { id, promise };
  }

  /**
   * Settles request `id` with the peer's reply. 'ok'; 'late' when it already timed out or was
   * aborted (the reply is dropped); 'unknown' when no such id was ever issued (a broken peer).
   */
  settle(id: number, value: unknown, failed: boolean): 'ok' | 'late' | 'unknown' {
    const entry = this.#take(id);
    if (!entry) {
      if (!this.#wrapped && id >= this.#nextId) return 'unknown';
      this.#late++;
      return 'late';
    }
    if (failed) entry.reject(value as Error);
    else entry.resolve(value);
    return 'ok';
  }

  /** Rejects one request that could not be sent (nothing of it reached the peer). */
  fail(id: number, err: Error): void {
    this.#take(id)?.reject(err);
  }

  /** Rejects every pending request with `err` (the channel closed or failed). */
  rejectAll(err: FerryError): void {
    const all = [...this.#pending.keys()];
    for (const id of all) this.#take(id)?.reject(err);
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
      // After a wrap, ids still in flight (a request that never times out) are skipped.
      if (!this.#pending.has(id)) return id;
    }
  }

  #take(id: number): Pending | null {
    const entry = this.#pending.get(id);
    if (!entry) return null;
    this.#pending.delete(id);
    if (entry.timer !== null) clearTimeout(entry.timer);
    if (entry.bucket !== 0) {
      const set = this.#buckets.get(entry.bucket);
      if (set) {
        set.delete(id);
        if (set.size === 0) this.#buckets.delete(entry.bucket);
      }
    }
    if (entry.signal && entry.onAbort) entry.signal.removeEventListener('abort', entry.onAbort);
    return entry;
  }

  #expire(id: number, ms: number): void {
    const entry = this.#take(id);
    if (!entry) return;
    entry.reject(ferryError('ETIMEDOUT', `no reply in ${ms} ms`));
    this.#onCancel(id);
  }

  #addToBucket(entry: Pending, id: number, ms: number): void {
    const key = Math.ceil((performance.now() + ms) / BUCKET_MS);
    entry.bucket = key;
    let set = this.#buckets.get(key);
    if (!set) {
      set = new Set();
      this.#buckets.set(key, set);
    }
    set.add(id);
    if (this.#timer === null) this.#armBuckets();
  }

  #armBuckets(): void {
    const first = this.#buckets.keys().next();
    if (first.done) return;
    const delay = Math.max(0, first.value * BUCKET_MS - performance.now());
    this.#timer = setTimeout(this.#onBucketTimer, delay);
    // A pending request keeps the process alive through the channel, not through this timer.
    this.#timer.unref();
  }

  readonly #onBucketTimer = (): void => {
    this.#timer = null;
    const now = performance.now();
    for (const [key, set] of this.#buckets) {
      if (key * BUCKET_MS > now) break;
      for (const id of [...set]) this.#expire(id, this.#defaultTimeoutMs);
      this.#buckets.delete(key);
    }
    this.#armBuckets();
  };
}
