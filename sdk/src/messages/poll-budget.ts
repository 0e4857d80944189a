/**
 * Whether to poll for an expected frame (a reply somebody awaits, a peer's next request) or to
 * sleep until the peer rings, chosen by what each has been giving: the time from the expectation
 * to the frame, averaged separately over expectations that polled and ones that slept. Polling
 * wins on a machine with a core free for each side (a round trip of a few microseconds instead of
 * two kernel wake-ups); on an oversubscribed one the spinning side holds a CPU its peer, or anyone
 * else, needs, and round trips get slower than through wake-ups: then the averages say sleep. One
 * expectation in EXPLORE_EVERY takes the other choice, so the averages follow a changing machine.
 */
const EXPLORE_EVERY = 16;
/** Weight of the newest sample in the averages. */
const EWMA = 0.125;
/** Samples are capped (ms): a peer that was idle for seconds says nothing about polling. */
const CAP_MS = 2;

export class PollBudget {
  /** How long one expectation polls at most (ms) before sleeping. */
  readonly windowMs: number;
  #n = 0;
  /** Average time to the frame (ms) when polling / sleeping; NaN until measured. */
  #pollMs = Number.NaN;
  #sleepMs = Number.NaN;
  /** performance.now() when the current expectation started; 0: none. */
  #since = 0;
  #polling = false;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** Polled and slept averages (ms), for tests and diagnostics. */
  get averages(): { pollMs: number; sleepMs: number } {
    return { pollMs: this.#pollMs, sleepMs: this.#sleepMs };
  }

  /** An expectation starts at `now`: true when it should poll (until now + windowMs). */
  start(now: number): boolean {
    this.#since = now;
    const explore = ++this.#n % EXPLORE_EVERY === 0;
    // Unmeasured choices are tried first: polling, then sleeping.
    let poll: boolean;
    if (Number.isNaN(this.#pollMs)) poll = true;
    else if (Number.isNaN(this.#sleepMs)) poll = false;
    else poll = this.#pollMs < this.#sleepMs !== explore;
    this.#polling = poll;
    return poll;
  }

  /** The expected frame came at `now`. */
  end(now: number): void {
    if (this.#since === 0) return;
    const dt = Math.min(CAP_MS, now - this.#since);
    this.#since = 0;
    if (this.#polling)
      this.#pollMs = Number.isNaN(this.#pollMs) ? dt : this.#pollMs + EWMA * (dt - this.#pollMs);
    else this.#sleepMs = Number.isNaN(this.#sleepMs) ? dt : this.#sleepMs + EWMA * (dt - this.#sleepMs);
  }
}
