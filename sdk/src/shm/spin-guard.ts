// Test helper: the hang guard of a loop that spins on a fifo with no doorbell (stress tests).

/** Empty polls between two looks at the clock, each followed by a short sleep. */
const EMPTY_POLLS_PER_YIELD = 64;
/** The sleep (ms): long enough that the kernel hands this CPU to a peer waiting for it. */
const YIELD_MS = 0.05;

/**
 * Fails a spinning loop only when nothing moved for `stallMs` (a hang), never for being slow: a
 * wall-clock limit on the whole run is a limit on the machine's load (60 s for 300k messages
 * through a 4 KiB fifo was exceeded with both threads on one vCPU). After each run of empty polls it
 * sleeps a moment, so that a peer spinning on the same CPU gets it: two spinners that never sleep
 * trade the CPU only when the scheduler preempts them, one slice per fifo-full.
 */
export class SpinGuard {
  readonly #stallMs: number;
  readonly #cell = new Int32Array(new SharedArrayBuffer(4));
  #lastMoveMs = performance.now();
  #moved = false;
  #empty = 0;

  constructor(stallMs: number) {
    this.#stallMs = stallMs;
  }

  /** After one poll (`moved`: it did work). False once nothing moved for stallMs: give up. */
  step(moved: boolean): boolean {
    if (moved) {
      // The clock is read only on empty polls: the time of the first one after work stands for it.
      this.#moved = true;
      this.#empty = 0;
      return true;
    }
    if (++this.#empty % EMPTY_POLLS_PER_YIELD !== 0) return true;
    const now = performance.now();
    if (this.#moved) {
      this.#moved = false;
      this.#lastMoveMs = now;
    }
    if (now - this.#lastMoveMs >= this.#stallMs) return false;
    Atomics.wait(this.#cell, 0, 0, YIELD_MS);
    return true;
  }
}
