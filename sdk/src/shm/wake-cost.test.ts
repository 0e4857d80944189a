// Tests for wake-cost.ts: the estimate follows the fastest wakes of each window, starts at and never
// leaves WAKE_COST_MIN_MS..WAKE_COST_MAX_MS, and implausible samples are dropped.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { WAKE_COST_MAX_MS, WAKE_COST_MIN_MS, WakeCost } from './wake-cost.js';

const feed = (w: WakeCost, ms: number, n: number) => {
  for (let i = 0; i < n; i++) w.sample(ms);
};

describe('WakeCost', () => {
  it('starts at the old constant (50 us) and stays there while no window is complete', () => {
    const w = new WakeCost();
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    assert.equal(WAKE_COST_MAX_MS, 0.05);
    feed(w, 0.008, 15);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    assert.equal(w.samples, 15);
  });

  it('a wake costs twice its latency, which moves half way to each window minimum', () => {
    const w = new WakeCost();
    feed(w, 0.008, 16);
    // Latency 25 us (50 / 2) -> 16.5 us.
    assert.ok(Math.abs(w.ms - 0.033) < 1e-9, `${w.ms}`);
    for (let i = 0; i < 20; i++) feed(w, 0.008, 16);
    assert.ok(Math.abs(w.ms - 0.016) < 1e-6, `${w.ms}`);
  });

  it('after a slow spell, fast wakes count again from the next window', () => {
    const w = new WakeCost();
    feed(w, 9, 16 * 10);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
    feed(w, 0.005, 16);
    // From 25 us (the ceiling) half way to 5 us: 15 us, a cost of 30 us.
    assert.ok(Math.abs(w.ms - 0.03) < 1e-9, `${w.ms}`);
  });

  it('takes the fastest wake of a window, not the slow ones that waited behind other work', () => {
    const w = new WakeCost();
    for (let k = 0; k < 30; k++) {
      for (let i = 0; i < 15; i++) w.sample(0.2 + i * 0.1);
      w.sample(0.012);
    }
    assert.ok(Math.abs(w.ms - 0.024) < 1e-6, `${w.ms}`);
  });

  it('slow wakes keep the old behaviour: the estimate never exceeds 50 us', () => {
    const w = new WakeCost();
    feed(w, 0.008, 16 * 20);
    assert.ok(w.ms < 0.02);
    // The machine gets slower (a VM whose wakes take 30-100 us; halted vCPUs: 50-130 us).
    for (let k = 0; k < 30; k++) for (let i = 0; i < 16; i++) w.sample(0.03 + (i % 8) * 0.01);
    assert.equal(w.ms, WAKE_COST_MAX_MS);
  });

  it('never goes below the floor, whatever the wakes read', () => {
    const w = new WakeCost();
    feed(w, 0, 16 * 40);
    assert.equal(w.ms, WAKE_COST_MIN_MS);
  });

  it('drops samples that are not a wake of this machine (NaN, negative, infinite, > 10 ms)', () => {
    const w = new WakeCost();
    for (const bad of [
      Number.NaN,
      -0.001,
      -1,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      10.5,
      4294.9,
    ]) {
      feed(w, bad, 32);
    }
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
