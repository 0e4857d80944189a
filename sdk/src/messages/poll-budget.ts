/**
 * Whether to poll for an expected frame (a reply somebody awaits, a peer's next request) or to
 * sleep until the peer rings, chosen by what each has been giving: the time from the expectation
 * to the frame, averaged separately over expectations that polled and ones that slept. Polling
 * wins on a machine with a core free for each side (a round trip of a few microseconds instead of
 * two kernel wake-ups); on an oversubscribed one the spinning side holds a CPU its peer, or anyone
 * else, needs, and round trips get slower than through wake-ups: then the averages say sleep.
 *
 * Now and then a burst of BURST expectations in a row takes the other choice (an exploration), so
 * the averages follow a changing machine: one burst in EXPLORE_MIN expectations at first, and
 * twice as rarely each time the other choice proves no better (up to one in EXPLORE_MAX: an
 * exploration that loses is a few slow round trips), back to one in EXPLORE_MIN as soon as one
 * wins clearly (WIN). A burst rather than one sample: one sample is at the mercy of a single
 * preemption or a cold start (the first request of a process, compiled on the way, took 3.4 ms
 * here and held polling's average at the cap for thousands of round trips), and from both ends
 * asleep, the first exploring round trip only tells the peer that polling started (see
 * expect-poll.ts): the next ones show what polling gives.
 */
const EXPLORE_MIN = 16;
const EXPLORE_MAX = 1024;
/** Expectations in a row that one exploration takes. */
const BURST = 4;
/** An exploration wins when its mean took less than this share of the usual choice's average. */
const WIN = 0.75;
/** Weight of the newest sample in the averages; explorations are rarer, and weigh more. */
const EWMA = 0.125;
const EWMA_EXPLORED = 0.5;
/** Samples are capped (ms): a peer idle for longer, or a process preempted that long, says little about polling. */
const CAP_MS = 0.5;

export class PollBudget {
  /** How long one expectation polls at most (ms) before sleeping. */
  readonly windowMs: number;
  /** Expectations between explorations now, and left before the next one (without keys). */
  #every = EXPLORE_MIN;
  #countdown = EXPLORE_MIN;
  #exploring = false;
  /** The current exploration's samples so far (they may span intervals: an expectation ending
   *  without a sample, or keys seen by another budget, leave gaps): how many, and their sum (ms). */
  #burstN = 0;
  #burstSum = 0;
  /** Average time to the frame (ms) when polling / sleeping; NaN until measured. */
  #pollMs = Number.NaN;
  #sleepMs = Number.NaN;
  /** performance.now() when the current expectation started; 0: none. */
  #since = 0;
  #polling = false;
  /** Counts since construction, for diagnostics (`MessageChannel.roundTripStats`). */
  readonly stats = { polled: 0, slept: 0, explored: 0, exploreWins: 0, late: 0 };

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
   * given, picks the explorations instead of a count: the first BURST keys of each interval (a
   * power of two). Both ends of a channel pass the request's id, so their explorations fall on the
   * same round trips: from both sides asleep, one side polling alone saves one wake-up of two,
   * which may not show; both polling in the same round trips shows what polling gives.
   */
  start(now: number, key?: number): boolean {
    this.#since = now;
    let explore: boolean;
    if (key === undefined) {
      if (--this.#countdown <= 0) this.#countdown = this.#every;
      explore = this.#countdown <= BURST;
    } else {
      explore = ((key >>> 0) & (this.#every - 1)) < BURST;
    }
    // Unmeasured choices are tried first: polling, then sleeping.
    let poll: boolean;
    if (Number.isNaN(this.#pollMs)) poll = true;
    else if (Number.isNaN(this.#sleepMs)) poll = false;
    else poll = this.#pollMs < this.#sleepMs !== explore;
    this.#polling = poll;
    this.#exploring = explore;
    if (poll) this.stats.polled++;
    else this.stats.slept++;
    if (explore) this.stats.explored++;
    return poll;
  }

  /** Forgets the current expectation without a sample (the channel closed). */
  cancel(): void {
    this.#since = 0;
  }

  /**
   * The current poll did not happen (the notifier slept: no idle core, or backing off after a
   * preemption) and the frame came at `now`. While polling is unmeasured, that is its first
   * sample, the worst (else an unmeasured budget asks to poll on every expectation); later it
   * leaves the averages alone (a backoff of a few milliseconds says nothing about the polling
   * before it), but an exploration still counts toward its burst, as a loss, so explorations the
   * machine does not allow back off like lost ones.
   */
  refused(now: number): void {
    if (this.#since === 0) return;
    if (Number.isNaN(this.#pollMs)) {
      this.end(now, true);
      return;
    }
    this.#since = 0;
    if (this.#exploring) this.#burstDone(CAP_MS);
  }

  /**
   * The expected frame came at `now`. `worst`: count it as the worst sample (a poll that was
   * preempted: it took a CPU somebody else needed).
   */
  end(now: number, worst = false): void {
    if (this.#since === 0) return;
    let dt = Math.min(CAP_MS, now - this.#since);
    // A poll whose frame came after the window bought nothing (it slept for it anyway) and burned
    // the window's CPU: it counts as the worst (a slow handler is not polled for).
    if (this.#polling && (worst || dt > this.windowMs)) {
      dt = CAP_MS;
      this.stats.late++;
    }
    this.#since = 0;
    let w = EWMA;
    if (this.#exploring) {
      w = EWMA_EXPLORED;
      this.#burstDone(dt);
    }
    if (this.#polling)
      this.#pollMs = Number.isNaN(this.#pollMs) ? dt : this.#pollMs + w * (dt - this.#pollMs);
    else this.#sleepMs = Number.isNaN(this.#sleepMs) ? dt : this.#sleepMs + w * (dt - this.#sleepMs);
  }

  /** One more sample of the current exploration; at BURST of them, judge it. */
  #burstDone(dt: number): void {
    this.#burstN++;
    this.#burstSum += dt;
    if (this.#burstN < BURST) return;
    // Did the other choice clearly beat what the usual one has been giving? A poll on one side
    // while the other sleeps saves one of the two wake-ups (a quarter to a half of a round trip);
    // a lucky burst on a busy machine rarely does as well.
    const usual = this.#polling ? this.#sleepMs : this.#pollMs;
    const won = this.#burstSum / this.#burstN < usual * WIN;
    if (won) this.stats.exploreWins++;
    this.#every = won ? EXPLORE_MIN : Math.min(EXPLORE_MAX, this.#every * 2);
    if (this.#countdown > this.#every) this.#countdown = this.#every;
    this.#burstN = 0;
    this.#burstSum = 0;
  }
}
