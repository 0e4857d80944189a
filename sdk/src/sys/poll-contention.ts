// Whether polling for an expected frame takes a CPU that another task waits for, judged by this
// thread's own waits for a CPU while it was polling.
//
// Why not the machine's run queue (run-queue.ts, session 6): it counts every runnable task, ours
// included. On a quiet 2-vCPU machine a message ping-pong with both ends polling is two runnable
// tasks already, and any helper thread of either process (V8's compiler or GC workers), ferryd, or
// the benchmark's parent made it more than the CPUs: session 6's quiet run read a mean of 3.34
// runnable tasks, above the bar, and replies were polled for a third of the time (RTT p50 0.91x
// node:net). What a poll costs others shows in the poller itself instead: a thread that spins
// never sleeps, so every wait for a CPU it has (`run_delay` of its schedstat) is time the
// scheduler gave its CPU to another task that wanted it. Our own short-lived helper threads take
// little of it (a few % of the time); a third task that wants a CPU all along takes a third or
// more (two spinners and a hog on 2 CPUs), a loaded machine most of it. A thread that sleeps between
// frames is not judged here: its wake-ups land it beside whatever rang it (the peer), which is the
// wait that polling ends (sys/run-wait.ts).
//
// How: the caller (RunWait) feeds the windows it measured that were opened while the thread
// polled for an expected frame. Once they cover MIN_POLL_MS, their share decides (hysteresis).
// While contended, polls are vetoed, but not for good: after a pause (RETRY_MIN_MS, doubling while
// each probe finds contention again, up to RETRY_MAX_MS) polls are let through until the next
// decision, so a machine that became free is found again; a probe costs at most MIN_POLL_MS of
// polling per pause (under 1% of a CPU at the longest pause, 12% at the shortest).

/**
 * Share of polling time spent waiting for a CPU from which polling counts as contended, and below
 * which a probe clears it. A third task that wants a CPU all along beside two pollers on 2 CPUs
 * reads about 1/3; this session's processes favoured on a machine at load 3 read 0.196 (others
 * still woke onto their CPUs), a loaded one 0.37-0.64. The band is narrow on purpose: the pause
 * between probes damps flapping, and a wide band kept a channel vetoed after a busy start (JIT
 * threads, connects) for as long as the share sat inside it. Latency is guarded separately: polls
 * that are preempted count as the worst sample of messages/poll-budget.ts, which then sleeps.
 */
export const POLL_WAIT_CONTENDED = 0.25;
export const POLL_WAIT_CLEAR = 0.2;
/** Polling time (ms) the windows must cover before they decide. */
export const MIN_POLL_MS = 2;
/** First and longest pause (ms) before polls are let through again to see if contention went. */
export const RETRY_MIN_MS = 16;
export const RETRY_MAX_MS = 1024;

/** Totals since construction, for diagnostics. */
export interface PollContentionStats {
  /** Wall-clock time of the polling windows (ms), and waits for a CPU in them (ms). */
  pollMs: number;
  pollWaitedMs: number;
  /** Decisions taken, and how many of them found contention. */
  decisions: number;
  contendedDecisions: number;
}

export class PollContention {
  /** Share of the last decision (NaN before the first). */
  share = Number.NaN;
  #contended = false;
  #retryAtMs = 0;
  #retryMs = RETRY_MIN_MS;
  #ms = 0;
  #waitedMs = 0;
  readonly stats: PollContentionStats = { pollMs: 0, pollWaitedMs: 0, decisions: 0, contendedDecisions: 0 };

  /**
   * True while polls for an expected frame should not happen at `nowMs`: the last decision found
   * contention and its pause has not run out. Before any decision, false: polls are let through
   * and measured.
   */
  contended(nowMs: number): boolean {
    return this.#contended && nowMs < this.#retryAtMs;
  }

  /** A window of `ms` (wall clock) the thread spent polling, `waitedMs` of it waiting for a CPU. */
  add(ms: number, waitedMs: number, nowMs: number): void {
    if (!(ms >= 0 && waitedMs >= 0)) return;
    const w = Math.min(waitedMs, ms);
    this.stats.pollMs += ms;
    this.stats.pollWaitedMs += w;
    this.#ms += ms;
    this.#waitedMs += w;
    if (this.#ms < MIN_POLL_MS) return;
    this.share = this.#waitedMs / this.#ms;
    this.#ms = 0;
    this.#waitedMs = 0;
    this.stats.decisions++;
    if (this.#contended ? this.share >= POLL_WAIT_CLEAR : this.share > POLL_WAIT_CONTENDED) {
      // Contended (still, or now): pause polls; each probe that finds it again pauses longer.
      if (this.#contended) this.#retryMs = Math.min(RETRY_MAX_MS, this.#retryMs * 2);
      this.#contended = true;
      this.#retryAtMs = nowMs + this.#retryMs;
      this.stats.contendedDecisions++;
      return;
    }
    this.#contended = false;
    this.#retryMs = RETRY_MIN_MS;
  }
}
