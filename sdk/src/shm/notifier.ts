// Per-consumer wake policy: sleep on a doorbell, poll shared memory, or poll then sleep (adaptive).
//
// Defaults, and why: a wake through the kernel and Node's event loop costs about 25 us per hop on
// our machines, while a poll of shared memory costs well under 1 us. spinUs = 50: in poll modes one
// synchronous turn spins at most this long before yielding with setImmediate, so timers and I/O on
// the same loop wait at most ~50 us (plus their own work) and the loop is never starved.
// adaptiveIdleUs = 200: the longest adaptive polls after the last work before arming (about eight
// wake costs). Within it, adaptive learns how long to poll: three times the recent gap between a
// burst of work and the next (an EWMA; at least 20 us), and not at all when that gap is longer than
// a wake costs (measured: shm/wake-cost.ts, 5-50 us): polling across it would burn more CPU than the
// ring and wake it saves. A poll of nothing that takes far
// longer than a poll (the process lost its CPU: no idle core, or the peer runs on ours) means the
// polling steals CPU someone needs: adaptive then sleeps at once and only rings wake it, for a
// backoff that doubles while it keeps happening. adaptiveBusyUs = 2000: while `busy()` says local
// work is blocked on the peer (a write waits for fifo space), the peer is draining and will post
// soon, so adaptive keeps polling that much longer: sleeping would cost the peer a ring (a syscall
// that wakes us, measured at tens of us on a VM) and us a wake, on every fifo-full cycle of a stream.

import { FerryError } from '../errors.js';
import { processWakeCost, type WakeCost } from './wake-cost.js';

export const NOTIFY_MODE = { INTERRUPT: 'interrupt', POLL: 'poll', ADAPTIVE: 'adaptive' } as const;
export type NotifyMode = (typeof NOTIFY_MODE)[keyof typeof NOTIFY_MODE];

export const NOTIFIER_DEFAULT_SPIN_US = 50;
export const NOTIFIER_DEFAULT_ADAPTIVE_IDLE_US = 200;
export const NOTIFIER_DEFAULT_ADAPTIVE_BUSY_US = 2000;
/** In interrupt mode, polls per turn before yielding even if work keeps coming. */
const INTERRUPT_POLLS_PER_TURN = 64;
/** An empty poll slower than this (us) means the process was preempted while polling. */
export const NOTIFIER_DEFAULT_PREEMPTED_US = 100;
/** First and largest time (ms) adaptive stops polling after it was preempted while polling. */
const BACKOFF_MIN_MS = 2;
const BACKOFF_MAX_MS = 256;
/** Shortest polling window (ms) once polling pays: a little longer than the gaps seen. */
const MIN_WINDOW_MS = 0.02;
/** Weight of the newest gap in the gap estimate. */
const GAP_EWMA = 0.25;
/**
 * Adaptive polls after work only while that has recently paid. Each idle stretch (from the first
 * empty poll after work to the next work or to sleep) polls its window, or one clock batch (a few
 * us) when the window is 0: a probe that catches work coming sooner than the gaps say (a
 * ping-pong speeding up again: the window reopens from such short gaps, since a gap measured
 * across a sleep includes the wake-up). A stretch that slept without finding work makes the next
 * polling ones rarer, every 2nd, 4th... up to every PROBE_EVERY_MAX-th stretch; one that found
 * work makes every stretch poll again. The others sleep at their first empty poll (unless busy()).
 * HTTP 16 B (undici, 8 connections): of ~300 polling stretches per 20,000 requests on either side,
 * 0-8 found work, while the server's windows (its gaps read short) made 18-58 empty polls per
 * request (BENCHMARKS.md, wake7).
 */
const PROBE_EVERY_MAX = 16;

/**
 * Diagnostics (FERRY_NOTIFIER_TRACE=1): a ring of the last 2^20 sleeps and wakes of this thread's
 * notifiers, wall-clock ms and why (TRACE_CODE), for bench/stalls.js to line up with slow round
 * trips. Written on sleeps and wakes only, never per poll; off, it costs a null check there.
 */
export const TRACE_CODE = {
  /** Slept: the polling window after the last work ran out. */
  WINDOW_EXPIRED: 1,
  /** Slept at once: the gaps between bursts are longer than a wake costs. */
  GAP_LONG: 2,
  /** Slept at once: backing off after a preemption. */
  BACKOFF: 3,
  /** Woken by the doorbell. */
  WOKEN: 4,
  /** An empty poll took longer than preemptedUs: preempted while polling. */
  PREEMPTED: 5,
  /** Slept at once: this thread waits for a CPU (contended). */
  CONTENDED: 6,
  /** Slept after an interrupt-style turn (interrupt mode, or adaptive while contended). */
  INTERRUPT: 9,
} as const;
const TRACE_SIZE = 1 << 20;
const TRACE: { t: Float64Array; c: Uint8Array; n: number } | null = process.env['FERRY_NOTIFIER_TRACE']
  ? { t: new Float64Array(TRACE_SIZE), c: new Uint8Array(TRACE_SIZE), n: 0 }
  : null;
if (TRACE !== null) (globalThis as Record<symbol, unknown>)[Symbol.for('ferry.notifierTrace')] = TRACE;
function trace(code: number): void {
  if (TRACE === null) return;
  const i = TRACE.n++ & (TRACE_SIZE - 1);
  TRACE.t[i] = performance.timeOrigin + performance.now();
  TRACE.c[i] = code;
}

export interface DoorbellLike {
  onRing(cb: () => void): void;
  /** In an onRing callback: ms since the peer rang, when known (else NaN or absent). */
  readonly ringAgeMs?: number;
}

export interface NotifierOptions {
  mode: NotifyMode;
  /** Rung by the peer after it saw this end armed. */
  doorbell: DoorbellLike;
  /** Does available work; returns how much (0 = nothing to do). Must not block. */
  poll: () => number;
  /** Arms the wake flag(s) and re-checks; true = work arrived meanwhile, do not sleep. */
  arm: () => boolean;
  /** True while local work waits on the peer; adaptive mode then polls up to adaptiveBusyUs. */
  busy?: () => boolean;
  /**
   * Adaptive: true while this thread waits for a CPU a large share of the time it could run (no
   * idle core: sys/run-wait.ts); adaptive then sleeps whenever a poll finds nothing, as interrupt
   * does. Given the clock (ms). Absent: never.
   */
  contended?: (nowMs: number) => boolean;
  spinUs?: number;
  adaptiveIdleUs?: number;
  adaptiveBusyUs?: number;
  /** Adaptive: an empty poll slower than this (us) means the process lost its CPU. Default 100. */
  preemptedUs?: number;
  /**
   * What a wake costs (adaptive polls only across gaps shorter than it); fed with this notifier's
   * wakes from sleep. Default: the process's (shm/wake-cost.ts).
   */
  wakeCost?: WakeCost;
  /**
   * Adaptive: true when every peer that could post to this notifier sleeps (armed its own wake
   * flag, and nothing rang it since): an idle stretch then stops polling, since nothing can come
   * until this side posts. Absent: never (shm/wake-switches.ts, FERRY_ADAPTIVE_PEER_GATE).
   */
  peersAsleep?: () => boolean;
  /**
   * Adaptive: after a turn that found work, end the turn before polling a window, so that what
   * the work scheduled for later in the loop runs first (FERRY_ADAPTIVE_YIELD). A yield after
   * which nothing was posted (`posts` did not move before the next turn: a stream's reader, whose
   * work queues nothing) makes the next ones rarer, as failed probes do.
   */
  yieldBeforeWindow?: boolean;
  /** What this process posted to peers so far (a count; only its changes are read). */
  posts?: () => number;
}

/**
 * While spinning, the clock is read once per batch of empty polls (see #pollTurn), the batch sized
 * to take about CLOCK_BATCH_US: a poll of a few idle queues is well under a microsecond (then up to
 * CLOCK_EVERY_MAX polls per reading), one over hundreds of segments may take tens (then every poll
 * reads it), so deadlines and preemption (100 µs) are seen within a few µs either way.
 */
const CLOCK_BATCH_US = 8;
const CLOCK_EVERY_MAX = 64;

/** Runs `poll` on the event loop according to `mode`; never blocks the loop for long. */
export class Notifier {
  readonly #mode: NotifyMode;
  /** Empty polls per clock reading while spinning (a power of two, 1..CLOCK_EVERY_MAX). */
  #clockEvery = 1;
  readonly #poll: () => number;
  readonly #arm: () => boolean;
  readonly #busy: (() => boolean) | undefined;
  readonly #contended: ((nowMs: number) => boolean) | undefined;
  readonly #spinMs: number;
  readonly #idleMs: number;
  readonly #busyMs: number;
  readonly #preemptedMs: number;
  readonly #wakeCost: WakeCost;
  readonly #peersAsleep: (() => boolean) | undefined;
  readonly #yieldBeforeWindow: boolean;
  readonly #posts: () => number;
  /** Yields: one per #yieldEvery stretches, stretches since the last, posts at the last (-1: none). */
  #yieldEvery = 1;
  #sinceYield = 0;
  #yieldPosts = -1;
  #running = false;
  #scheduled = false;
  #sleeping = false;
  #lastWorkMs = 0;
  #wakeups = 0;
  /** Adaptive: estimate of the gap between bursts of work (ms), and whether we are in one. */
  #gapMs = 0;
  #idle = false;
  /** Adaptive: no polling before this time (preempted while polling); the next backoff. */
  #backoffUntilMs = 0;
  #backoffMs = BACKOFF_MIN_MS;
  #preemptions = 0;
  #contendedTurns = 0;
  /** Why the last #idleEnough said yes was contention (for the trace). */
  #lastContended = false;
  /** Set by yieldTurn(): end the running turn after the current poll. */
  #yield = false;
  /** Adaptive, window 0: idle stretches per probe, stretches since the last, and one is running. */
  #probeEvery = 1;
  #sinceProbe = 0;
  #probing = false;
  /**
   * Adaptive: the longest a polling stretch polls now (ms), whatever its window. One that slept
   * without finding work sets it to half what it polled (MIN_WINDOW_MS at least); one that finds
   * work lifts it. Rarer stretches alone did not bound their cost: HTTP 16 B's server read gaps of
   * 30-60 us (a client turn's requests land a few us apart), so each stretch that polled took a
   * window of 40-80 us, and 97% of them found nothing (BENCHMARKS.md, wake8). The floor keeps
   * replies that come within MIN_WINDOW_MS (a fast ping-pong) found, so polling can pay again.
   */
  #probeMs = Number.POSITIVE_INFINITY;

  constructor(options: NotifierOptions) {
    const { mode, doorbell, poll, arm } = options;
    if (!Object.values(NOTIFY_MODE).includes(mode)) {
      throw new FerryError('ERR_INVALID_ARG_VALUE', `mode must be interrupt, poll or adaptive, got ${mode}`);
    }
    const spinUs = options.spinUs ?? NOTIFIER_DEFAULT_SPIN_US;
    const idleUs = options.adaptiveIdleUs ?? NOTIFIER_DEFAULT_ADAPTIVE_IDLE_US;
    const busyUs = Math.max(idleUs, options.adaptiveBusyUs ?? NOTIFIER_DEFAULT_ADAPTIVE_BUSY_US);
    if (
      !(spinUs >= 0 && spinUs <= 1_000_000) ||
      !(idleUs >= 0 && idleUs <= 10_000_000) ||
      !(busyUs <= 10_000_000)
    ) {
      throw new FerryError(
        'ERR_OUT_OF_RANGE',
        `spinUs ${spinUs} / adaptiveIdleUs ${idleUs} / adaptiveBusyUs ${busyUs} out of range`,
      );
    }
    this.#mode = mode;
    this.#poll = poll;
    this.#arm = arm;
    this.#busy = options.busy;
    this.#contended = options.contended;
    this.#spinMs = spinUs / 1000;
    this.#idleMs = idleUs / 1000;
    this.#busyMs = busyUs / 1000;
    this.#preemptedMs = (options.preemptedUs ?? NOTIFIER_DEFAULT_PREEMPTED_US) / 1000;
    if (!(this.#preemptedMs > 0)) {
      throw new FerryError('ERR_OUT_OF_RANGE', `preemptedUs must be positive, got ${options.preemptedUs}`);
    }
    const wakeCost = options.wakeCost ?? processWakeCost;
    this.#wakeCost = wakeCost;
    this.#peersAsleep = options.peersAsleep;
    this.#yieldBeforeWindow = options.yieldBeforeWindow === true;
    this.#posts = options.posts ?? (() => 0);
    const adaptive = mode === NOTIFY_MODE.ADAPTIVE;
    doorbell.onRing(() => {
      if (!this.#running) return;
      if (!this.#sleeping || this.#scheduled) {
        this.#schedule();
        return;
      }
      // Woken from sleep: work right here, in the doorbell's read callback, rather than one more
      // hop through setImmediate (a socket's bytes are handled in its read callback too).
      // Only wakes from sleep measure a wake: a ring that came while this loop was busy waited
      // for that work too. Only adaptive uses the estimate; the others read no clock on a wake.
      // (WakeCost drops the NaN of an unstamped ring.)
      if (adaptive) {
        const age = doorbell.ringAgeMs;
        if (age !== undefined) wakeCost.sample(age);
      }
      this.#wakeups++;
      trace(TRACE_CODE.WOKEN);
      this.#sleeping = false;
      this.#turn();
    });
  }

  get mode(): NotifyMode {
    return this.#mode;
  }

  /** True while armed and waiting for the doorbell. */
  get sleeping(): boolean {
    return this.#sleeping;
  }

  /** Times the doorbell woke this notifier from sleep. */
  get wakeups(): number {
    return this.#wakeups;
  }

  /** Adaptive: how long it polls now after the last work before sleeping, in us. */
  get pollWindowUs(): number {
    return this.#windowMs(performance.now()) * 1000;
  }

  /** Adaptive: turns that did not poll on after work because this thread's CPU was contended. */
  get contendedTurns(): number {
    return this.#contendedTurns;
  }

  /** Adaptive: times polling was cut short because the process lost its CPU meanwhile. */
  get preemptions(): number {
    return this.#preemptions;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#lastWorkMs = performance.now();
    this.#schedule();
  }

  /** Stops polling; later rings are ignored. The owner closes the doorbell. */
  stop(): void {
    this.#running = false;
    this.#sleeping = false;
  }

  /**
   * Ends the running poll turn right after the current poll, polling on from the next loop turn
   * (setImmediate): the poll settled promises (a reply to an awaited request), whose continuations
   * run only once this turn returns. A spinning turn would otherwise hold them for up to spinUs.
   */
  yieldTurn(): void {
    this.#yield = true;
  }

  /** Runs a poll turn soon (local state changed, or to wake a sleeping notifier). */
  kick(): void {
    if (this.#running) this.#schedule();
  }

  #schedule(): void {
    this.#sleeping = false;
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(this.#turn);
  }

  readonly #turn = (): void => {
    this.#scheduled = false;
    this.#yield = false;
    if (!this.#running) return;
    if (this.#yieldPosts >= 0) {
      // The turn after a yield: did what ran in between send anything? If not, it needed no yield.
      this.#yieldEvery =
        this.#posts() !== this.#yieldPosts ? 1 : Math.min(PROBE_EVERY_MAX, this.#yieldEvery * 2);
      this.#yieldPosts = -1;
    }
    if (this.#mode === NOTIFY_MODE.INTERRUPT) this.#interruptTurn();
    else if (this.#mode === NOTIFY_MODE.ADAPTIVE && this.#contended?.(performance.now()) === true) {
      // No idle core: a turn as in interrupt mode (arm after the first empty poll).
      this.#contendedTurns++;
      this.#interruptTurn();
    } else this.#pollTurn();
  };

  #interruptTurn(): void {
    for (let i = 0; i < INTERRUPT_POLLS_PER_TURN && this.#running; i++) {
      if (this.#poll() > 0) {
        // Settled promises (yieldTurn) run before the next look, not after a sleep: their
        // continuation may ask for polling (a message channel's next request, Attachment.pollUntil).
        if (this.#yield) break;
        continue;
      }
      if (this.#arm()) continue;
      this.#sleeping = true;
      trace(TRACE_CODE.INTERRUPT);
      return;
    }
    if (this.#running) this.#schedule();
  }

  #pollTurn(): void {
    const adaptive = this.#mode === NOTIFY_MODE.ADAPTIVE;
    let now = performance.now();
    const deadline = now + this.#spinMs;
    let empty = 0;
    /** The idle stretch this turn is in was looked at (probe or not); skip: decide at once. */
    let stretchSeen = this.#idle;
    let skip = false;
    let worked = false;
    do {
      if (this.#poll() > 0) {
        worked = true;
        if (this.#idle) this.#learnGap(now - this.#lastWorkMs);
        this.#lastWorkMs = now;
        stretchSeen = false;
        skip = false;
        if (this.#probing) {
          this.#probing = false;
          this.#probeEvery = 1;
          this.#probeMs = Number.POSITIVE_INFINITY;
        }
        if (this.#yield) break;
      } else {
        if (!stretchSeen) {
          stretchSeen = true;
          skip = adaptive && this.#skipProbe();
          if (
            adaptive &&
            worked &&
            !skip &&
            this.#yieldBeforeWindow &&
            ++this.#sinceYield >= this.#yieldEvery
          ) {
            // The window polls from the next turn, after what this turn's work queued (setImmediate).
            this.#sinceYield = 0;
            this.#yieldPosts = this.#posts();
            this.#idle = true;
            this.#lastWorkMs = now;
            this.#schedule();
            return;
          }
        }
        // Empty polls read the clock once per batch: each reading returns a fresh heap number
        // (performance.now() is not inlined), and reading it after every poll made a spinning
        // process allocate ~30 MB/s: a scavenge every ~50 ms, each 0.5-5 ms and more under load
        // (the p99.9 stalls).
        if (++empty % this.#clockEvery !== 0 && !skip) {
          if (!this.#running) return;
          continue;
        }
        const after = performance.now();
        const skipped = skip;
        if (skip) skip = false;
        else {
          const batchUs = (after - now) * 1000;
          if (batchUs < CLOCK_BATCH_US / 2 && this.#clockEvery < CLOCK_EVERY_MAX) this.#clockEvery *= 2;
          else if (batchUs > CLOCK_BATCH_US * 2 && this.#clockEvery > 1) this.#clockEvery /= 2;
        }
        if (!this.#idle) {
          this.#idle = true;
          this.#lastWorkMs = now;
        } else if (adaptive && after - now > this.#preemptedMs) {
          this.#preempted(after);
        }
        now = after;
        // Every peer sleeps: nothing can come before this side posts (not the window's failure).
        const gated = adaptive && !skipped && this.#peersAsleep?.() === true;
        if (
          adaptive &&
          (((skipped || gated || (this.#probing && now - this.#lastWorkMs >= this.#probeMs)) &&
            this.#busy?.() !== true) ||
            this.#idleEnough(now - this.#lastWorkMs, now))
        ) {
          if (!this.#arm()) {
            this.#sleeping = true;
            if (gated) this.#probing = false;
            else if (this.#probing) {
              this.#probing = false;
              this.#probeEvery = Math.min(PROBE_EVERY_MAX, this.#probeEvery * 2);
              this.#probeMs = Math.max(MIN_WINDOW_MS, (now - this.#lastWorkMs) / 2);
            }
            if (TRACE !== null) trace(this.#sleepReason(now));
            return;
          }
          this.#lastWorkMs = now;
        }
      }
      if (!this.#running) return;
      now = performance.now();
    } while (now < deadline);
    this.#schedule();
  }

  /**
   * An idle stretch starts (the first empty poll after work): true when it should not poll
   * (PROBE_EVERY_MAX), but arm and sleep at once unless busy().
   */
  #skipProbe(): boolean {
    if (++this.#sinceProbe < this.#probeEvery) return true;
    this.#sinceProbe = 0;
    this.#probing = true;
    return false;
  }

  /** The gap between the last burst of work and this one: the next polling window follows it. */
  #learnGap(gapMs: number): void {
    this.#idle = false;
    const g = Math.min(gapMs, this.#idleMs * 2);
    this.#gapMs = this.#gapMs === 0 ? g : this.#gapMs + GAP_EWMA * (g - this.#gapMs);
  }

  /** An empty poll took far too long: this process lost its CPU while polling. Stop for a while. */
  #preempted(now: number): void {
    this.#preemptions++;
    trace(TRACE_CODE.PREEMPTED);
    this.#backoffUntilMs = now + this.#backoffMs;
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, this.#backoffMs * 2);
  }

  /** How long to poll after the last work before arming, in ms (adaptive). */
  #windowMs(now: number): number {
    if (now < this.#backoffUntilMs) return 0;
    // Back from a backoff without being preempted since: start the next one small again.
    if (this.#backoffUntilMs !== 0) {
      this.#backoffUntilMs = 0;
      this.#backoffMs = Math.max(BACKOFF_MIN_MS, this.#backoffMs / 2);
    }
    if (this.#gapMs === 0) return this.#idleMs;
    // Polling across a gap longer than a wake costs more CPU than the wake it saves.
    if (this.#gapMs > this.#wakeCost.ms) return 0;
    return Math.min(this.#idleMs, Math.max(MIN_WINDOW_MS, 3 * this.#gapMs));
  }

  #sleepReason(now: number): number {
    if (now < this.#backoffUntilMs) return TRACE_CODE.BACKOFF;
    if (this.#lastContended) return TRACE_CODE.CONTENDED;
    return this.#gapMs > this.#wakeCost.ms ? TRACE_CODE.GAP_LONG : TRACE_CODE.WINDOW_EXPIRED;
  }

  #idleEnough(idleMs: number, now: number): boolean {
    // Preempted while polling: a peer that must drain our blocked writes needs this CPU too.
    this.#lastContended = false;
    if (now < this.#backoffUntilMs) return true;
    // No idle core: a spin would hold a core that another task (maybe the peer) waits for, until
    // the scheduler takes it back a slice later; a wake-up costs little there (the cores are awake).
    if (this.#contended?.(now) === true) {
      this.#contendedTurns++;
      this.#lastContended = true;
      return true;
    }
    if (idleMs < this.#windowMs(now)) return false;
    return idleMs >= this.#busyMs || this.#busy === undefined || !this.#busy();
  }
}
