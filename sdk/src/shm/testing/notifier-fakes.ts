// What the notifier's tests drive it with: a clock that moves only as the test says, a doorbell
// rung by hand, and loop turns, so that what they check follows from the polls, not from the load.
import assert from 'node:assert/strict';
import type { Notifier } from '../notifier.js';

/** One turn of the event loop (setImmediate callbacks queued before this one run first). */
export const turn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Runs `fn` with performance.now (the notifier's clock) replaced by one that moves 1 us per reading
 * and when `advance` says.
 */
export async function withFakeClock(fn: (advance: (ms: number) => void) => Promise<void>): Promise<void> {
  const realNow = performance.now;
  let ms = 0;
  performance.now = () => {
    ms += 0.001;
    return ms;
  };
  try {
    await fn((d) => {
      ms += d;
    });
  } finally {
    performance.now = realNow;
  }
}

/** A doorbell rung by hand; a ring may say how long ago it was rung (what sys/doorbell.ts reads from stamps). */
export class FakeDoorbell {
  #cbs: Array<() => void> = [];
  ringAgeMs = Number.NaN;
  onRing(cb: () => void): void {
    this.#cbs.push(cb);
  }
  ring(ageMs = Number.NaN): void {
    this.ringAgeMs = ageMs;
    for (const cb of this.#cbs) cb();
    this.ringAgeMs = Number.NaN;
  }
}

/** Loop turns until `n` sleeps (bounded in turns: the fake clock's milliseconds are not time). */
export async function untilAsleep(n: Notifier): Promise<void> {
  for (let i = 0; i < 100_000 && !n.sleeping; i++) await turn();
  assert.equal(n.sleeping, true);
}
