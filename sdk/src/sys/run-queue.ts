// Whether the machine has more runnable tasks than CPUs: tells real contention from our own.
//
// Why: the contention rule (run-wait.ts) reads the waits of this thread while awake. On an idle
// 2-vCPU VM a message ping-pong still reads an awake wait share of 0.46 (the quiet run of session
// 5: the client chose to poll for 5% of replies, RTT p50 0.92x node:net): the kernel runs a wakee
// on its waker's CPU (or the V8 helper threads of the two processes run there), so each end waits
// for the other, or for its own process's helpers, while awake. That is contention between the two
// ends of one round trip, with a vCPU idle beside them; a spin there does not take a CPU from
// anybody else: the kernel moves the peer to the idle vCPU, and both ends polling is what a round
// trip of a few microseconds needs. On a loaded machine the same share means others wait too.
//
// What tells them apart: the number of runnable tasks of the whole machine (the 4th field of
// /proc/loadavg before the slash: the sum of every CPU's run queue, this thread included, read
// at that instant). A ping-pong alone reads 1-2 on 2 CPUs (this thread, and the peer finishing
// the turn that rang it); both ends polling read 2; any third runnable task, someone's or a
// helper thread of ours, makes it more than the CPUs. Samples are taken when asked (at most one
// per SAMPLE_MS), averaged (EWMA) from a start of two tasks more than the CPUs (again after a long
// pause), decided with hysteresis. Read once per sample with a pread of a file kept open (a few us: the kernel
// sums the run queues and prints the load averages), parsed without allocating. Where the file
// cannot be read, or until the first sample, the answer is "oversubscribed", which leaves the
// contention rule as it is without this gate.

import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';

/** At most one reading per this many ms; older than RESTART_MS, the average starts again. */
const SAMPLE_MS = 1;
const RESTART_MS = 100;
/** Weight of the newest reading in the average. */
const EWMA = 0.125;
/**
 * Oversubscribed when the average exceeds the CPUs by this many tasks, clear again only below the
 * CPUs plus RUN_QUEUE_CLEAR. Both ends of a round trip polling read exactly the CPUs on 2 of them,
 * with a helper thread now and then a little more; a third task that runs all along reads a whole
 * task more (3 on 2 CPUs).
 */
export const RUN_QUEUE_OVER = 0.75;
export const RUN_QUEUE_CLEAR = 0.5;

/**
 * The number of runnable tasks in /proc/loadavg text in `buf[0..n)` ("0.52 0.58 0.59 3/174 2299"):
 * the 4th field before its slash; -1 when malformed. No strings are made.
 */
export function parseRunnable(buf: Uint8Array, n: number): number {
  let i = 0;
  for (let spaces = 0; spaces < 3; i++) {
    if (i >= n) return -1;
    if (buf[i] === 0x20) spaces++;
  }
  let v = 0;
  let digits = 0;
  for (; i < n && buf[i] !== 0x2f; i++) {
    const d = (buf[i] as number) - 0x30;
    if (d < 0 || d > 9 || digits >= 9) return -1;
    v = v * 10 + d;
    digits++;
  }
  return digits > 0 && i < n ? v : -1;
}

/** Totals since construction, for diagnostics. */
export interface RunQueueStats {
  /** Readings taken, their sum (runnable tasks), and readings dropped as malformed. */
  samples: number;
  runnableSum: number;
  dropped: number;
}

/** Samples the machine's runnable tasks and says whether they exceed its CPUs. */
export class RunQueue {
  readonly cpus: number;
  #fd = -1;
  readonly #buf = new Uint8Array(128);
  #lastMs = Number.NEGATIVE_INFINITY;
  /** Average runnable tasks (NaN before the first reading). */
  mean = Number.NaN;
  #over = true;
  readonly stats: RunQueueStats = { samples: 0, runnableSum: 0, dropped: 0 };

  /** `path` and `cpuCount` for tests; by default /proc/loadavg and the online CPUs. */
  constructor(path = '/proc/loadavg', cpuCount?: number) {
    // The run queues summed are those of every online CPU, whatever this process's affinity.
    this.cpus = cpuCount ?? (cpus().length || availableParallelism());
    try {
      this.#fd = openSync(path, 'r');
    } catch {
      // Not Linux, or no procfs: always oversubscribed (the contention rule decides alone).
    }
  }

  /**
   * True while the machine's runnable tasks (averaged) exceed its CPUs; takes a reading first when
   * the last is SAMPLE_MS old.
   */
  oversubscribed(nowMs: number): boolean {
    if (this.#fd < 0 || nowMs - this.#lastMs < SAMPLE_MS) return this.#over;
    const restart = nowMs - this.#lastMs > RESTART_MS;
    this.#lastMs = nowMs;
    let r: number;
    try {
      r = parseRunnable(this.#buf, readSync(this.#fd, this.#buf, 0, this.#buf.length, 0));
    } catch {
      r = -1;
    }
    if (r < 0) {
      this.stats.dropped++;
      return this.#over;
    }
    this.stats.samples++;
    this.stats.runnableSum += r;
    // First, or after a pause: start from two tasks too many, so that a few low readings do not
    // clear it (a 2-vCPU machine at load 6 read 2 runnable in a fifth of its readings, 3 in 40%).
    if (restart || Number.isNaN(this.mean)) this.mean = this.cpus + 2;
    this.mean += EWMA * (r - this.mean);
    if (this.#over ? this.mean < this.cpus + RUN_QUEUE_CLEAR : this.mean > this.cpus + RUN_QUEUE_OVER) {
      this.#over = !this.#over;
    }
    return this.#over;
  }

  close(): void {
    this.#over = true;
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already gone.
    }
    this.#fd = -1;
  }
}
