// Per-consumer wake policy: sleep on a doorbell, poll shared memory, or poll then sleep (adaptive).
//
// Defaults, and why: a wake through the kernel and Node's event loop costs about 25 us per hop on
// our machines, while a poll of shared memory costs well under 1 us. spinUs = 50: in poll modes one
// synchronous turn spins at most this long before yielding with setImmediate, so timers and I/O on
// the same loop wait at most ~50 us (plus their own work) and the loop is never starved.
// adaptiveIdleUs = 200: after the last work, adaptive keeps polling for about eight wake costs
// before arming; a peer that sends at least every 200 us is then never paid a wake, one that goes
// quiet costs at most 200 us of polling. adaptiveBusyUs = 2000: while `busy()` says local work is
// blocked on the peer (a write waits for fifo space), the peer is draining and will post soon, so
// adaptive keeps polling that much longer: sleeping would cost the peer a ring (a syscall that
// wakes us, measured at tens of us on a VM) and us a wake, on every fifo-full cycle of a stream.

import { FerryError } from '../errors.js';

export const NOTIFY_MODE = { INTERRUPT: 'interrupt', POLL: 'poll', ADAPTIVE: 'adaptive' } as const;
export type NotifyMode = (typeof NOTIFY_MODE)[keyof typeof NOTIFY_MODE];

export const NOTIFIER_DEFAULT_SPIN_US = 50;
export const NOTIFIER_DEFAULT_ADAPTIVE_IDLE_US = 200;
export const NOTIFIER_DEFAULT_ADAPTIVE_BUSY_US = 2000;
/** In interrupt mode, polls per turn before yielding even if work keeps coming. */
const INTERRUPT_POLLS_PER_TURN = 64;

export interface DoorbellLike {
  onRing(cb: () => void): void;
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
  spinUs?: number;
  adaptiveIdleUs?: number;
  adaptiveBusyUs?: number;
}

/** Runs `poll` on the event loop according to `mode`; never blocks the loop for long. */
export class Notifier {
  readonly #mode: NotifyMode;
  readonly #poll: () => number;
  readonly #arm: () => boolean;
  readonly #busy: (() => boolean) | undefined;
  readonly #spinMs: number;
  readonly #idleMs: number;
  readonly #busyMs: number;
  #running = false;
  #scheduled = false;
  #sleeping = false;
  #lastWorkMs = 0;
  #wakeups = 0;

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
    this.#spinMs = spinUs / 1000;
    this.#idleMs = idleUs / 1000;
    this.#busyMs = busyUs / 1000;
    doorbell.onRing(() => {
      if (!this.#running) return;
      if (this.#sleeping) this.#wakeups++;
      this.#schedule();
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
    if (!this.#running) return;
    if (this.#mode === NOTIFY_MODE.INTERRUPT) this.#interruptTurn();
    else this.#pollTurn();
  };

  #interruptTurn(): void {
    for (let i = 0; i < INTERRUPT_POLLS_PER_TURN && this.#running; i++) {
      if (this.#poll() > 0) continue;
      if (this.#arm()) continue;
      this.#sleeping = true;
      return;
    }
    if (this.#running) this.#schedule();
  }

  #pollTurn(): void {
    let now = performance.now();
    const deadline = now + this.#spinMs;
    do {
      if (this.#poll() > 0) this.#lastWorkMs = now;
      else if (this.#mode === NOTIFY_MODE.ADAPTIVE && this.#idleEnough(now - this.#lastWorkMs)) {
        if (!this.#arm()) {
          this.#sleeping = true;
          return;
        }
        this.#lastWorkMs = now;
      }
      if (!this.#running) return;
      now = performance.now();
    } while (now < deadline);
    this.#schedule();
  }

  #idleEnough(idleMs: number): boolean {
    if (idleMs < this.#idleMs) return false;
    return idleMs >= this.#busyMs || this.#busy === undefined || !this.#busy();
  }
}
