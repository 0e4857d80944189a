// What a wake costs on this machine, measured: adaptive polls only across gaps shorter than that.
//
// Why measured: a wake (the peer's ring, the kernel waking this thread, Node's loop getting to the
// doorbell) took 50-130 us on the VMs the notifier was tuned on and ~7 us on a fast kernel. A fixed
// 50 us kept adaptive polling across gaps of 10-50 us there, where sleeping costs less: the HTTP
// client made ~60 polls per request, 99% of them empty (BENCHMARKS.md, wake10).
//
// How: the doorbell carries the ringer's clock in some rings (sys/doorbell.ts); a notifier woken
// from sleep by one passes how long it took (ring to its callback) here. Each window of WINDOW
// samples yields its minimum (the wake itself, without the loop work or run-queue waits some wakes
// also waited behind); the latency estimate moves half way to each window's minimum, and a wake
// costs COST_PER_LATENCY times it: the woken side waits that long, and both sides spend about as
// much CPU again (the ringer's write, the sleeper's epoll_wait in and out and its read of the
// pipe). Twice the latency also lands where measurements put the constant: 10 us on the fast
// kernel of session 7 (unix RTT p50 13.8 us: two wakes and node:net's work, so a wake of ~5 us),
// 50 us on the VMs.
//
// The estimate starts at, and never exceeds, WAKE_COST_MAX_MS (the old constant): where wakes are
// slow, or the machine so loaded that they look slow, adaptive behaves as it always did (the gaps
// measured across such wakes exceed it, and sys/run-wait.ts keeps it from polling on a contended
// CPU). Its floor WAKE_COST_MIN_MS keeps short gaps (a fast ping-pong) worth polling across
// whatever a peer writes into its stamps; samples outside 0..SAMPLE_MAX_MS (garbage, a clock from
// the future, another clock namespace) are dropped.

/** The estimate before any sample, and its ceiling (ms): the constant this replaced. */
export const WAKE_COST_MAX_MS = 0.05;
/** The estimate's floor (ms). */
export const WAKE_COST_MIN_MS = 0.005;
/** Samples above this (ms) are not wakes of this machine. */
const SAMPLE_MAX_MS = 10;
/** Samples per window; its minimum is the window's reading. */
const WINDOW = 16;
/** Weight of a window's minimum in the latency estimate. */
const WINDOW_WEIGHT = 0.5;
/** What a wake costs, in wake latencies. */
const COST_PER_LATENCY = 2;

export class WakeCost {
  #costMs = WAKE_COST_MAX_MS;
  #latencyMs = WAKE_COST_MAX_MS / COST_PER_LATENCY;
  #windowMinMs = Number.POSITIVE_INFINITY;
  #inWindow = 0;
  #samples = 0;

  /** A wake's latency in ms (ring to the woken side running); anything implausible is ignored. */
  sample(ms: number): void {
    if (!(ms >= 0 && ms <= SAMPLE_MAX_MS)) return;
    this.#samples++;
    if (ms < this.#windowMinMs) this.#windowMinMs = ms;
    if (++this.#inWindow < WINDOW) return;
    // Bounded like the cost, so that wakes fast again after a slow spell count from the next window.
    const latency = this.#latencyMs + WINDOW_WEIGHT * (this.#windowMinMs - this.#latencyMs);
    this.#latencyMs =
      Math.min(WAKE_COST_MAX_MS, Math.max(WAKE_COST_MIN_MS, COST_PER_LATENCY * latency)) / COST_PER_LATENCY;
    this.#costMs = COST_PER_LATENCY * this.#latencyMs;
    this.#windowMinMs = Number.POSITIVE_INFINITY;
    this.#inWindow = 0;
  }

  /** The estimate in ms, within WAKE_COST_MIN_MS..WAKE_COST_MAX_MS. */
  get ms(): number {
    return this.#costMs;
  }

  /** Samples taken (diagnostics). */
  get samples(): number {
    return this.#samples;
  }
}

/** This process's estimate: every notifier's wakes feed it and read it. */
export const processWakeCost = new WakeCost();
