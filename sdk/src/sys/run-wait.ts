// How long this thread waits for a CPU while it could run: adaptive polling asks before it spins.
//
// Why: polling shared memory pays only while a core is free for it. On a machine with more
// runnable tasks than cores, a spinning process holds a core others need, the scheduler takes it
// back for a whole slice (milliseconds) and the peer's reply sits unread meanwhile; wake-ups from
// sleep, on the other hand, are quick there (the cores are awake). The kernel counts, per thread,
// the time spent runnable but waiting in a run queue (`run_delay`, the 2nd field of
// /proc/thread-self/schedstat) beside the time on a CPU (the 1st). Their ratio is this thread's
// own wait share: about the CPU share of other tasks competing with it. Unlike the machine's
// pressure (PSI "some", tried and reverted: two pollers on an idle 2-vCPU machine make any third
// task wait, so it read 30-55% there) or counts of involuntary switches (frequent and short on an
// idle machine too), it weighs waits by their length and only counts this thread's.
//
// A thread that sleeps between frames also waits each time it is woken, before it runs: on a VM
// whose idle vCPUs halt, 10-30 us per wake-up with no other task in the way (measured: a ping-pong
// of two processes in interrupt mode, given a CPU share far above everything else's, read a wait
// share of 0.29-0.45 at 9-18 us per run; the same pair polling read 0.20-0.29, in rare waits of
// 0.6-0.7 ms). That wait is the cost of sleeping, not a sign that polling would be preempted, and
// it keeps a sleeping thread "contended" for good. `contendedBeyondWakes` counts only the wait
// beyond WAKE_ALLOWANCE_NS per run (the 3rd field, the number of times it ran); message channels
// use it while they expect a frame (app/attachment.ts), so that their own budget
// (messages/expect-poll.ts) can find out whether polling pays.
//
// Sampled at most every SAMPLE_MS from the caller's clock, with one pread of a file kept open and
// parsed without allocating; where the file cannot be read the answer is always "not contended".

import { closeSync, openSync, readSync } from 'node:fs';

/** A new sample is taken when the last is older than this (ms). */
const SAMPLE_MS = 20;
/** Runnable time (ns) a sample must cover to change the answer: a mostly sleeping thread keeps it. */
const MIN_RUNNABLE_NS = 2e6;
/** Wait share from which the CPU counts as contended, and below which it stops counting so. */
export const RUN_WAIT_CONTENDED = 0.3;
export const RUN_WAIT_CLEAR = 0.15;
/** Wait per run (ns) that a wake-up from sleep costs by itself (see above): not counted as contention. */
export const WAKE_ALLOWANCE_NS = 50_000;

/**
 * The first two decimal fields of schedstat text in `buf[0..n)` (time on CPU, time waiting; ns),
 * written to `out`; false when malformed. When `out` has room for a third, the third field (times
 * it ran) goes there, NaN when absent or malformed (the first two still count). No strings are
 * made: this runs on a polling path.
 */
export function parseSchedstat(buf: Uint8Array, n: number, out: Float64Array): boolean {
  let i = 0;
  const fields = out.length > 2 ? 3 : 2;
  for (let f = 0; f < fields; f++) {
    let v = 0;
    let digits = 0;
    while (i < n && buf[i] !== 0x20 && buf[i] !== 0x0a) {
      const d = (buf[i] as number) - 0x30;
      if (d < 0 || d > 9 || digits >= 19) {
        if (f < 2) return false;
        digits = 0;
        break;
      }
      v = v * 10 + d;
      digits++;
      i++;
    }
    if (digits === 0) {
      if (f < 2) return false;
      out[f] = Number.NaN;
      break;
    }
    out[f] = v;
    i++;
  }
  return true;
}

/** Keeps the calling thread's wait share and says whether it is contended (with hysteresis). */
export class RunWait {
  #fd: number;
  readonly #buf = new Uint8Array(128);
  readonly #now = new Float64Array(3);
  readonly #last = new Float64Array(3);
  #lastMs = Number.NEGATIVE_INFINITY;
  #contended = false;
  #beyondWakes = false;
  /** Last computed share (NaN before the first). */
  share = Number.NaN;
  /** The same without the wait that wake-ups cost by themselves (see contendedBeyondWakes). */
  shareBeyondWakes = Number.NaN;

  /** `path` for tests; by default the calling thread's schedstat. */
  constructor(path?: string) {
    this.#fd = -1;
    for (const p of path === undefined ? ['/proc/thread-self/schedstat', '/proc/self/schedstat'] : [path]) {
      try {
        this.#fd = openSync(p, 'r');
        break;
      } catch {
        // Not Linux, no procfs, or no schedstats: never contended.
      }
    }
    if (this.#fd >= 0 && !this.#read(this.#last)) this.close();
  }

  /**
   * As contended(), counting only the wait beyond what each wake-up from sleep costs
   * (WAKE_ALLOWANCE_NS per run); where the run count is not readable, the same as contended().
   */
  contendedBeyondWakes(nowMs: number): boolean {
    this.contended(nowMs);
    return this.#beyondWakes;
  }

  /** True while this thread waits for a CPU a large share of the time it could run. */
  contended(nowMs: number): boolean {
    if (this.#fd < 0 || nowMs - this.#lastMs < SAMPLE_MS) return this.#contended;
    this.#lastMs = nowMs;
    if (!this.#read(this.#now)) {
      this.close();
      return false;
    }
    const ran = (this.#now[0] as number) - (this.#last[0] as number);
    const waited = (this.#now[1] as number) - (this.#last[1] as number);
    if (ran + waited < MIN_RUNNABLE_NS) return this.#contended;
    const runs = (this.#now[2] as number) - (this.#last[2] as number);
    this.#last.set(this.#now);
    this.share = waited / (ran + waited);
    if (this.#contended ? this.share < RUN_WAIT_CLEAR : this.share > RUN_WAIT_CONTENDED) {
      this.#contended = !this.#contended;
    }
    // NaN runs (no third field): no allowance.
    const beyond = runs >= 0 ? Math.max(0, waited - runs * WAKE_ALLOWANCE_NS) : waited;
    this.shareBeyondWakes = beyond / (ran + waited);
    if (
      this.#beyondWakes ? this.shareBeyondWakes < RUN_WAIT_CLEAR : this.shareBeyondWakes > RUN_WAIT_CONTENDED
    ) {
      this.#beyondWakes = !this.#beyondWakes;
    }
    return this.#contended;
  }

  close(): void {
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already gone.
    }
    this.#fd = -1;
    this.#contended = false;
    this.#beyondWakes = false;
  }

  #read(out: Float64Array): boolean {
    try {
      const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
      return parseSchedstat(this.#buf, n, out);
    } catch {
      return false;
    }
  }
}
