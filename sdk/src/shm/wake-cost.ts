// What a wake costs on this machine, measured: adaptive polls only across gaps shorter than that.
//
// Why measured: a wake (the peer's ring, the kernel waking this thread, Node's loop getting to the
// doorbell) took 50-130 us on the VMs the notifier was tuned on and ~5 us on a fast kernel. A fixed
// 50 us kept adaptive polling across gaps of 10-50 us there, where sleeping costs less: the HTTP
// client made ~60 polls per request, 99% of them empty (BENCHMARKS.md, wake10).
//
// How: the doorbell carries the ringer's clock in some rings (sys/doorbell.ts); a notifier woken
// from sleep by one passes how long it took (ring to its callback) here. The latency estimate
// tracks the median of those wakes (each sample above it raises it by a small factor, each one
// below lowers it by as much). A wake costs COST_PER_LATENCY times it: the woken side waits that
// long, and both sides spend about as much CPU again (the ringer's write, the sleeper's epoll_wait
// in and out and its read of the pipe). Twice a wake lands where measurements put the constant:
// 10 us on the fast kernel of session 7 (unix RTT p50 13.8 us: two wakes and node:net's work, so a
// wake of ~5 us), 50 us on the VMs.
//
// Why the median and not the fastest wakes (nor the lower quartile): the wakes that count are the
// slower ones. On a loaded machine most wait behind other work (HTTP 16 B at load 8-15: p5 10-18
// us, p25 50-75, p50 85-110), and that wait is part of what a sleep costs there; on an idle VM
// the wakes after short sleeps are fast and those after longer ones land on halted vCPUs (unix RTT
// p50 70-90 us while Ferry's wakes read p5 3-8, p25 11-18, p50 20-38). The fastest of each 16 read
// 20-40 us on the loaded machine and the HTTP client spent ~3 us more CPU per request than with
// the constant; the lower quartile read 38 us on the idle VM, the median 42-50 (BENCHMARKS.md,
// wake10).
//
// The estimate starts at, and never exceeds, WAKE_COST_MAX_MS (the old constant): where wakes are
// slow, or the machine so loaded that they are, adaptive behaves as it always did (and
// sys/run-wait.ts keeps it from polling on a contended CPU). Its floor WAKE_COST_MIN_MS keeps short
// gaps (a fast ping-pong) worth polling across whatever a peer writes into its stamps; samples
// outside 0..SAMPLE_MAX_MS (garbage, a clock from the future, another clock namespace) are dropped.

/** The estimate before any sample, and its ceiling (ms): the constant this replaced. */
export const WAKE_COST_MAX_MS = 0.05;
/** The estimate's floor (ms). */
export const WAKE_COST_MIN_MS = 0.005;
/** Samples above this (ms) are not wakes of this machine. */
const SAMPLE_MAX_MS = 10;
/** What a wake costs, in wake latencies. */
const COST_PER_LATENCY = 2;
/** The factor by which each sample moves the latency estimate towards it. */
const STEP = 0.05;
const UP = 1 + STEP;
const DOWN = 1 - STEP;
const LATENCY_MIN_MS = WAKE_COST_MIN_MS / COST_PER_LATENCY;
const LATENCY_MAX_MS = WAKE_COST_MAX_MS / COST_PER_LATENCY;

export class WakeCost {
  #latencyMs = LATENCY_MAX_MS;
  #samples = 0;

  /** A wake's latency in ms (ring to the woken side running); anything implausible is ignored. */
  sample(ms: number): void {
    if (!(ms >= 0 && ms <= SAMPLE_MAX_MS)) return;
    this.#samples++;
    // Bounded, so that after a slow spell the first fast wakes bring it down at once.
    const next = ms > this.#latencyMs ? this.#latencyMs * UP : this.#latencyMs * DOWN;
    this.#latencyMs = Math.min(LATENCY_MAX_MS, Math.max(LATENCY_MIN_MS, next));
  }

  /** The estimate in ms, within WAKE_COST_MIN_MS..WAKE_COST_MAX_MS. */
  get ms(): number {
    return COST_PER_LATENCY * this.#latencyMs;
  }

  /** Samples taken (diagnostics). */
  get samples(): number {
    return this.#samples;
  }
}

/** This process's estimate: every notifier's wakes feed it and read it. */
export const processWakeCost = new WakeCost();
