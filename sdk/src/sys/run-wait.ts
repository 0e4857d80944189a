// How long this thread waits for a CPU while it is awake: adaptive polling asks before it spins.
//
// Why: polling shared memory pays only while a core is free for it. On a machine with more
// runnable tasks than cores, a spinning process holds a core others need, the scheduler takes it
// back for a whole slice (milliseconds) and the peer's reply sits unread meanwhile. The kernel
// counts, per thread, the time spent runnable but waiting in a run queue (`run_delay`, the 2nd
// field of /proc/thread-self/schedstat) beside the time on a CPU (the 1st).
//
// Which waits count: only those while the thread is awake, between a wake-up and its next sleep
// (or all along while it polls and never sleeps): there a wait means another task held the CPU
// this thread could have used, which is what a spin would fight. The wait that comes WITH each
// wake-up, from the ring to the first instruction, is left out: on this VM a wake-up onto an idle
// (halted) vCPU takes 50-130 us with nothing else running, so a thread that sleeps between frames
// read a wait share of 0.3-0.5 on the idle machine and adaptive mode never polled there (the quiet
// run of session 4: 1.2 "contended" turns per round trip, polls chosen for 9% of the replies);
// under load the same wake-ups are faster (the vCPUs are awake), so that wait even reads the wrong
// way round. Earlier signals and why they were dropped: the machine's pressure (PSI "some": two
// pollers on an idle 2-vCPU machine make any third task wait, so it read 30-55% there), counts of
// involuntary switches (frequent and short on an idle machine too), and a fixed allowance per
// wake-up (50 us: too small for this VM's idle wake-ups, and a guess on any other).
//
// How: the owner calls contended(now) on its turns and asleep(now) right before the thread blocks
// for a wake-up. A reading is taken at most every SAMPLE_MS on a turn (it opens a window) and at
// the sleep after it (it closes the window): a window never spans a sleep, so the wait before the
// wake-up that precedes it is outside (the kernel adds a wait to run_delay when the thread gets
// the CPU, before the window opens). The share is the wait over the windows' wall-clock time,
// which is runnable time since the thread does not sleep inside one; not over the time on a CPU
// (the 1st field): that is brought up to date only at ticks and switches, so a window of tens of
// microseconds read 0 on a CPU unless it held a switch, and only windows with waits in them
// counted (a share of 0.5-0.9 with nothing else running on the core). Windows add up until they
// cover MIN_AWAKE_MS; their share then decides (with hysteresis). A thread that sleeps between
// short bursts covers that slowly (tens of us per window: about half a second to see contention
// come, a few dozen ms to see it go: windows open more often then), a polling one within one
// window. One pread of a file kept open per reading, parsed without allocating; where the file
// cannot be read the answer is always "not contended".
//
// One exception (contended(now, 'poll')): while the caller polls for a frame it expects (a message
// channel's reply or next request), its waits while polling (poll-contention.ts: a thread that
// spins and waits for a CPU lost it to another task that wanted it; windows opened on those turns
// every POLL_SAMPLE_MS are fed there) and the machine (run-queue.ts, with this thread's share
// under RUN_WAIT_FREE as "a core of its own") must both say contended. The machine alone decided
// in session 6, and it counts the round trip's own threads: on a quiet 2-vCPU VM it read 3.34
// runnable tasks and vetoed two thirds of the polls. While it sleeps for one
// (contended(now, 'sleep')) the machine test is added to the share's: the notifier's own window
// must not poll after each send on a loaded machine, but on an idle one, or with a core of its own,
// it stays as it was (with real-time main threads it found 80-99% of the frames while the budgets
// chose to sleep for half of them). The machine is read on those turns (at most once per ms).

import { closeSync, openSync, readSync } from 'node:fs';
import { PollContention } from './poll-contention.js';
import { RunQueue } from './run-queue.js';

/**
 * A window opens on a turn when the last reading is older than this (ms); while contended, sooner:
 * a thread that sleeps between frames then covers MIN_AWAKE_MS in a few dozen round trips, not a
 * second of them (a ping-pong that read contended while it started, or in a busy moment, kept
 * sleeping through a whole benchmark round after the machine was free again).
 */
const SAMPLE_MS = 10;
const SAMPLE_CONTENDED_MS = 1;
/** While the caller polls for an expected frame, a window opens this often (ms). */
const POLL_SAMPLE_MS = 1;
/** Time (ms) the windows must cover to change the answer. */
const MIN_AWAKE_MS = 2;
/** Wait share from which the CPU counts as contended, and below which it stops counting so. */
export const RUN_WAIT_CONTENDED = 0.3;
export const RUN_WAIT_CLEAR = 0.15;
/**
 * A share below this means a core of its own (real-time priority, an isolated CPU: 0.000-0.008 in
 * msgs7's runs), where polling pays whatever else the machine runs; a loaded machine's shares were
 * 0.44-0.94.
 */
export const RUN_WAIT_FREE = 0.02;

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

/** Totals since construction, for diagnostics (windows closed by a sleep or a later turn). */
export interface RunWaitStats {
  /** Wall-clock time inside windows (ms), and time spent waiting for a CPU in them (ms). */
  awakeMs: number;
  awakeWaitedMs: number;
  /** Windows measured, and decisions taken (each over at least MIN_AWAKE_MS). */
  windows: number;
  decisions: number;
  /** Readings dropped because they went backwards (not a schedstat, or a reset). */
  dropped: number;
}

/** Keeps the calling thread's wait share while awake and says whether it is contended. */
export class RunWait {
  #fd: number;
  readonly #buf = new Uint8Array(128);
  readonly #now = new Float64Array(2);
  /** The reading that opened the current window, and when. */
  readonly #base = new Float64Array(2);
  #open = false;
  #lastMs = Number.NEGATIVE_INFINITY;
  /** Windows since the last decision: wall-clock time and waits (ms). */
  #awakeMs = 0;
  #waitedMs = 0;
  #contended = false;
  /** Wait share of the last decision (NaN before the first). */
  share = Number.NaN;
  readonly stats: RunWaitStats = { awakeMs: 0, awakeWaitedMs: 0, windows: 0, decisions: 0, dropped: 0 };
  /** Read while a caller sleeps for an expected frame (see contended). */
  readonly runQueue: RunQueue;
  /** Fed the windows opened while the caller polled for an expected frame (see contended). */
  readonly polling = new PollContention();
  /** The open window was opened on a turn that polled for an expected frame. */
  #pollWindow = false;

  /** `path` and `runQueue` for tests; by default the calling thread's schedstat and /proc/loadavg. */
  constructor(path?: string, runQueue?: RunQueue) {
    this.runQueue = runQueue ?? new RunQueue();
    this.#fd = -1;
    for (const p of path === undefined ? ['/proc/thread-self/schedstat', '/proc/self/schedstat'] : [path]) {
      try {
        this.#fd = openSync(p, 'r');
        break;
      } catch {
        // Not Linux, no procfs, or no schedstats: never contended.
      }
    }
    if (this.#fd >= 0 && !this.#read(this.#base)) this.close();
  }

  /**
   * True while this thread, awake, waits for a CPU a large share of the time it could run. Also
   * opens a measuring window when the last reading is SAMPLE_MS old (closing the open one first).
   * `expect`: 'poll', the caller polls for a frame it expects: contended only when its waits
   * while polling say so (poll-contention.ts) and the machine is oversubscribed and this thread
   * has no core of its own (the rule before, which the first now overrides when clear). 'sleep',
   * it chose to sleep for one: contended also while the machine is oversubscribed (unless this
   * thread has a core of its own), and the machine's average is kept current.
   */
  contended(nowMs: number, expect: 'none' | 'poll' | 'sleep' = 'none'): boolean {
    const c = this.#measure(nowMs, expect === 'poll');
    if (expect === 'none' || this.#fd < 0) return c;
    const busy = this.runQueue.oversubscribed(nowMs) && !(this.share < RUN_WAIT_FREE);
    if (expect === 'sleep') return c || busy;
    // Every signal must agree before a poll is vetoed: the run queue counts our own threads on an
    // idle machine, and the waits while polling include the peer woken onto our CPU while the other
    // is busy (0.18-0.63 with this session's processes favoured on a machine at load 10). Polls let
    // through that do not pay are the budget's to stop (preempted ones count as its worst sample).
    const vetoed = busy && this.polling.contended(nowMs);
    // A vetoed turn sleeps for its frame: what follows is not polling.
    if (vetoed) this.#pollWindow = false;
    return vetoed;
  }

  #measure(nowMs: number, poll: boolean): boolean {
    const period = poll ? POLL_SAMPLE_MS : this.#contended ? SAMPLE_CONTENDED_MS : SAMPLE_MS;
    if (this.#fd < 0 || nowMs - this.#lastMs < period) return this.#contended;
    if (!this.#read(this.#now)) {
      this.close();
      return false;
    }
    if (this.#open) this.#add(nowMs);
    this.#lastMs = nowMs;
    this.#base.set(this.#now);
    this.#open = true;
    // Only a window in which the thread may poll measures polling (see contended): a vetoed one
    // sleeps for its frame, and its wake-ups land beside the peer that rang.
    this.#pollWindow = poll;
    return this.#contended;
  }

  /** The thread is about to block until woken: the open window (if any) ends here. */
  asleep(nowMs?: number): void {
    if (!this.#open) return;
    this.#open = false;
    if (!this.#read(this.#now)) {
      this.close();
      return;
    }
    this.#add(nowMs ?? performance.now());
  }

  close(): void {
    this.#open = false;
    this.#contended = false;
    this.runQueue.close();
    if (this.#fd < 0) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Already gone.
    }
    this.#fd = -1;
  }

  /** Adds the window from #base (at #lastMs) to #now (at `nowMs`); decides once enough is covered. */
  #add(nowMs: number): void {
    const waitedMs = ((this.#now[1] as number) - (this.#base[1] as number)) / 1e6;
    const ms = nowMs - this.#lastMs;
    // The wait in a window cannot exceed its length by more than clock skew: else not a schedstat.
    if (!(waitedMs >= 0 && ms >= 0 && waitedMs <= ms + 1)) {
      this.stats.dropped++;
      return;
    }
    if (this.#pollWindow) this.polling.add(ms, waitedMs, nowMs);
    this.stats.windows++;
    this.stats.awakeMs += ms;
    this.stats.awakeWaitedMs += waitedMs;
    this.#awakeMs += ms;
    this.#waitedMs += Math.min(waitedMs, ms);
    if (this.#awakeMs < MIN_AWAKE_MS) return;
    this.share = this.#waitedMs / this.#awakeMs;
    this.#awakeMs = 0;
    this.#waitedMs = 0;
    this.stats.decisions++;
    if (this.#contended ? this.share < RUN_WAIT_CLEAR : this.share > RUN_WAIT_CONTENDED) {
      this.#contended = !this.#contended;
    }
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
