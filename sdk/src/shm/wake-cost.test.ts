// Tests for wake-cost.ts: the estimate is twice the median of the wakes, starts at and never
// leaves WAKE_COST_MIN_MS..WAKE_COST_MAX_MS, and implausible samples are dropped.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WAKE_COST_MAX_MS, WAKE_COST_MIN_MS, WakeCost } from './wake-cost.js';

/** Feeds `rounds` times each of `ms` (a fixed order: deterministic). */
const feed = (w: WakeCost, ms: number[], rounds: number) => {
  for (let r = 0; r < rounds; r++) for (const x of ms) w.sample(x);
};

describe('WakeCost', () => {
  it('starts at the old constant (50 us)', () => {
    const w = new WakeCost();
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    assert.equal(WAKE_COST_MAX_MS, 0.05);
  });

  it('settles at twice the median of the wakes', () => {
    const w = new WakeCost();
    // Half the wakes take 5-7 us, the other half 9-200 us: the median is 7-9 us.
    feed(w, [0.005, 0.009, 0.1, 0.006, 0.2, 0.007, 0.009, 0.006], 100);
    assert.ok(w.ms >= 0.013 && w.ms <= 0.019, `${w.ms}`);
    // All fast (5-7 us): 10-14 us.
    feed(w, [0.005, 0.006, 0.007, 0.006], 100);
    assert.ok(w.ms >= 0.009 && w.ms <= 0.015, `${w.ms}`);
  });

  it('a loaded machine, where most wakes wait behind other work, keeps the old rule (50 us)', () => {
    const w = new WakeCost();
    feed(w, [0.006], 100);
    assert.ok(w.ms < 0.015, `${w.ms}`);
    // 1 in 8 wakes fast (10 us), the rest 70-300 us (HTTP 16 B at load 10: p5 11, p25 70).
    feed(w, [0.01, 0.07, 0.08, 0.09, 0.12, 0.15, 0.2, 0.3], 60);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    // An idle VM: a quarter of the wakes fast (7-11 us), the rest 18-40 us (halted vCPUs).
    feed(w, [0.006], 100);
    feed(w, [0.007, 0.018, 0.028, 0.04, 0.011, 0.02, 0.03, 0.035], 60);
    assert.ok(w.ms >= 0.04, `${w.ms}`);
  });

  it('after a slow spell, fast wakes bring it down within a few dozen', () => {
    const w = new WakeCost();
    feed(w, [9], 1000);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    feed(w, [0.005], 40);
    assert.ok(w.ms < 0.011, `${w.ms}`);
  });

  it('never goes below the floor, whatever the wakes read', () => {
    const w = new WakeCost();
    feed(w, [0], 500);
    assert.equal(w.ms, WAKE_COST_MIN_MS);
  });

  it('drops samples that are not a wake of this machine (NaN, negative, infinite, > 10 ms)', () => {
    const w = new WakeCost();
    feed(w, [Number.NaN, -0.001, -1, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 10.5, 4294.9], 32);
    assert.equal(w.samples, 0);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
  });

  it('any sequence of samples (hostile stamps) leaves the estimate finite and within its bounds', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.double(), fc.double({ min: 0, max: 0.2, noNaN: true }), fc.constant(Number.NaN)),
          {
            maxLength: 400,
          },
        ),
        (xs) => {
          const w = new WakeCost();
          for (const x of xs) {
            w.sample(x);
            assert.ok(w.ms >= WAKE_COST_MIN_MS && w.ms <= WAKE_COST_MAX_MS, `${w.ms}`);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
