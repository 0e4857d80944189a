/**
 * Whether to poll for an expected frame (a reply somebody awaits, a peer's next request) or to
 * sleep until the peer rings, chosen by what each has been giving: the time from the expectation
 * to the frame, averaged separately over expectations that polled and ones that slept. Polling
 * wins on a machine with a core free for each side (a round trip of a few microseconds instead of
 * two kernel wake-ups); on an oversubscribed one the spinning side holds a CPU its peer, or anyone
 * else, needs, and round trips get slower than through wake-ups: then the averages say sleep.
 *
 * Now and then an expectation takes the other choice (an exploration), so the averages follow a
 * changing machine: one in EXPLORE_MIN at first, and twice as rarely each time the other choice
 * proves no better (up to one in EXPLORE_MAX: an exploration that loses is a slow round trip,
 * and one in 16 of them would be the p99), back to one in EXPLORE_MIN as soon as one wins clearly (WIN).
 */
const EXPLORE_MIN = 16;
const EXPLORE_MAX = 1024;
/** An exploration wins when it took less than this share of the usual choice's average. */
const WIN = 0.75;
/** Weight of the newest sample in the averages; explorations are rarer, and weigh more. */
const EWMA = 0.125;
const EWMA_EXPLORED = 0.5;
/** Samples are capped (ms): a peer idle for longer, or a process preempted that long, says little about polling. */
const CAP_MS = 0.5;

export class PollBudget {
  /** How long one expectation polls at most (ms) before sleeping. */
  readonly windowMs: number;
  /** Expectations between explorations now, and left before the next one. */
  #every = EXPLORE_MIN;
  #countdown = EXPLORE_MIN;
  #exploring = false;
  /** Average time to the frame (ms) when polling / sleeping; NaN until measured. */
  #pollMs = Number.NaN;
  #sleepMs = Number.NaN;
  /** performance.now() when the current expectation started; 0: none. */
  #since = 0;
  #polling = false;

  constructor(windowMs: number) {
    this.windowMs = windowMs;
  }

  /** The current expectation polls. */
  get polling(): boolean {
    return this.#since !== 0 && this.#polling;
  }

  /** Polled and slept averages (ms), for tests and diagnostics. */
  get averages(): { pollMs: number; sleepMs: number } {
    return { pollMs: this.#pollMs, sleepMs: this.#sleepMs };
  }

  /**
   * An expectation starts at `now`: true when it should poll (until now + windowMs). `key`, when
   * given, picks the explorations instead of a count: those whose key is a multiple of the
   * interval (a power of two). Both ends of a channel pass the request's id, so their explorations
   * fall on the same round trips: from both sides asleep, one side polling alone saves one wake-up
   * of two, which may not show; both polling in the same round trip shows what polling gives.
   */
  start(now: number, key?: number): boolean {
    this.#since = now;
    let explore: boolean;
    if (key === undefined) {
      explore = --this.#countdown === 0;
      if (explore) this.#countdown = this.#every;
    } else {
      explore = (key & (this.#every - 1)) === 0;
    }
    // Unmeasured choices are tried first: polling, then sleeping.
    let poll: boolean;
    if (Number.isNaN(this.#pollMs)) poll = true;
    else if (Number.isNaN(this.#sleepMs)) poll = false;
    else poll = this.#pollMs < this.#sleepMs !== explore;
    this.#polling = poll;
    this.#exploring = explore;
    return poll;
  }

  /** The expected frame came at `now`. */
  end(now: number): void {
    if (this.#since === 0) return;
    let dt = Math.min(CAP_MS, now - this.#since);
    // A poll whose frame came after the window bought nothing (it slept for it anyway) and burned
    // the window's CPU: it counts as the worst (a slow handler is not polled for).
    if (this.#polling && dt > this.windowMs) dt = CAP_MS;
    this.#since = 0;
    let w = EWMA;
    if (this.#exploring) {
      // Did the other choice clearly beat what the usual one has been giving? A poll on one side
      // while the other sleeps saves one of the two wake-ups (a quarter to a half of a round
      // trip); a lucky sample on a busy machine rarely does as well.
      const usual = this.#polling ? this.#sleepMs : this.#pollMs;
      this.#every = dt < usual * WIN ? EXPLORE_MIN : Math.min(EXPLORE_MAX, this.#every * 2);
      if (this.#countdown > this.#every) this.#countdown = this.#every;
      w = EWMA_EXPLORED;
    }
    if (this.#polling)
      this.#pollMs = Number.isNaN(this.#pollMs) ? dt : this.#pollMs + w * (dt - this.#pollMs);
    else this.#sleepMs = Number.isNaN(this.#sleepMs) ? dt : this.#sleepMs + w * (dt - this.#sleepMs);
  }
}
