// The notifier and the measured wake cost (wake-cost.ts): only wakes from sleep are measured, and the
// estimate decides which gaps adaptive polls across. On a fake clock: nothing here depends on timing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Notifier } from './notifier.js';
import { FakeDoorbell, untilAsleep, withFakeClock } from './testing/notifier-fakes.js';
import { WakeCost } from './wake-cost.js';

function harness(wakeCost: WakeCost) {
  const doorbell = new FakeDoorbell();
  const st = { pending: 0, polls: 0, done: 0 };
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    spinUs: 50,
    adaptiveIdleUs: 200,
    preemptedUs: 1e9,
    wakeCost,
    poll: () => {
      st.polls++;
      if (st.pending === 0) return 0;
      st.pending--;
      st.done++;
      return 1;
    },
    arm: () => st.pending > 0,
  });
  return { n, doorbell, st };
}

test('only a wake from sleep is a sample: a ring while awake waited for other work too', async () => {
  await withFakeClock(async () => {
    const cost = new WakeCost();
    const { n, doorbell, st } = harness(cost);
    n.start();
    await untilAsleep(n);
    st.pending = 1;
    doorbell.ring(0.009);
    assert.equal(cost.samples, 1);
    // Awake now (a turn is scheduled or running): this ring is not a wake.
    n.kick();
    doorbell.ring(0.009);
    assert.equal(cost.samples, 1);
    await untilAsleep(n);
    // Unstamped rings (NaN) wake it and are not samples.
    st.pending = 1;
    doorbell.ring(Number.NaN);
    assert.equal(cost.samples, 1);
    await untilAsleep(n);
    assert.equal(st.done, 2);
    n.stop();
  });
});

test('interrupt mode reads no wake cost (it never uses one): its wakes are not samples', async () => {
  const cost = new WakeCost();
  const doorbell = new FakeDoorbell();
  let pending = 0;
  let done = 0;
  const n = new Notifier({
    mode: 'interrupt',
    doorbell,
    wakeCost: cost,
    poll: () => {
      if (pending === 0) return 0;
      pending--;
      done++;
      return 1;
    },
    arm: () => pending > 0,
  });
  n.start();
  for (let i = 0; i < 3; i++) {
    await untilAsleep(n);
    pending = 1;
    doorbell.ring(0.009);
  }
  await untilAsleep(n);
  assert.equal(done, 3);
  assert.equal(n.wakeups, 3);
  assert.equal(cost.samples, 0);
  n.stop();
});

/**
 * Work comes `gapMs` after the notifier fell asleep, rung with a wake of `wakeMs`, `cycles` times;
 * returns the polling window it chose.
 */
async function windowAfter(wakeMs: number, gapMs: number, cycles: number): Promise<number> {
  let window = -1;
  await withFakeClock(async (advance) => {
    const cost = new WakeCost();
    const { n, doorbell, st } = harness(cost);
    n.start();
    for (let i = 0; i < cycles; i++) {
      await untilAsleep(n);
      advance(gapMs);
      st.pending = 1;
      doorbell.ring(wakeMs);
    }
    await untilAsleep(n);
    assert.equal(st.done, cycles);
    window = n.pollWindowUs;
    n.stop();
  });
  return window;
}

test('slow wakes (100 us) keep the old rule: gaps of 30 us are polled across', async () => {
  const w = await windowAfter(0.1, 0.03, 200);
  assert.ok(w >= 50, `window ${w} us`);
});

test('fast wakes (8 us): gaps of 30 us cost more to poll across than a wake, adaptive sleeps', async () => {
  assert.equal(await windowAfter(0.008, 0.03, 200), 0);
});

test('hostile stamps cannot stop polling across short gaps (the floor) nor stretch it past 200 us', async () => {
  // Every ring claims a wake of 0 us: the estimate stops at its floor (5 us), and gaps of 1 us
  // (on the fake clock each poll reads 1 us later, so gaps read a few us) are still polled across.
  const w0 = await windowAfter(0, 0.001, 200);
  assert.ok(w0 > 0, `window ${w0} us`);
  // Rings that claim 10 ms wakes and ones from the future (4.3 s): the estimate stays at 50 us,
  // and the window at most adaptiveIdleUs.
  for (const age of [10, 4294.9, Number.POSITIVE_INFINITY]) {
    const w = await windowAfter(age, 0.03, 100);
    assert.ok(w >= 50 && w <= 200, `age ${age}: window ${w} us`);
  }
});
