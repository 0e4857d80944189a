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

/**
 * The first two decimal fields of schedstat text in `buf[0..n)` (time on CPU, time waiting; ns),
 * written to `out`; false when malformed. No strings are made: this runs on a polling path.
 */
export function parseSchedstat(buf: Uint8Array, n: number, out: Float64Array): boolean {
  let i = 0;
  for (let f = 0; f < 2; f++) {
    let v = 0;
    let digits = 0;
    while (i < n && buf[i] !== 0x20 && buf[i] !== 0x0a) {
      const d = (buf[i] as number) - 0x30;
      if (d < 0 || d > 9 || digits >= 19) return false;
      v = v * 10 + d;
      digits++;
      i++;
    }
    if (digits === 0) return false;
    out[f] = v;
    i++;
  }
  return true;
}

/** Keeps the calling thread's wait share and says whether it is contended (with hysteresis). */
export class RunWait {
  #fd: number;
  readonly #buf = new Uint8Array(128);
  readonly #now = new Float64Array(2);
  readonly #last = new Float64Array(2);
  #lastMs = Number.NEGATIVE_INFINITY;
  #contended = false;
  /** Last computed share (NaN before the first). */
  share = Number.NaN;

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
    this.#last.set(this.#now);
    this.share = waited / (ran + waited);
    if (this.#contended ? this.share < RUN_WAIT_CLEAR : this.share > RUN_WAIT_CONTENDED) {
      this.#contended = !this.#contended;
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
