import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Notifier, type NotifyMode } from './notifier.js';

class FakeDoorbell {
  #cbs: Array<() => void> = [];
  onRing(cb: () => void): void {
    this.#cbs.push(cb);
  }
  ring(): void {
    for (const cb of this.#cbs) cb();
  }
}

/** A fake source: `pending` units of work; arm() is true when work is pending. */
function harness(
  mode: NotifyMode,
  opts: { spinUs?: number; adaptiveIdleUs?: number; preemptedUs?: number } = {},
) {
  const doorbell = new FakeDoorbell();
  const state = { pending: 0, done: 0, arms: 0, polls: 0 };
  const n = new Notifier({
    mode,
    doorbell,
    poll: () => {
      state.polls++;
      const k = Math.min(state.pending, 3);
      state.pending -= k;
      state.done += k;
      return k;
    },
    arm: () => {
      state.arms++;
      return state.pending > 0;
    },
    ...opts,
  });
  return { n, doorbell, state };
}

test('interrupt: drains, arms, sleeps, wakes on ring', async () => {
  const { n, doorbell, state } = harness('interrupt');
  state.pending = 10;
  n.start();
  await sleep(20);
  assert.equal(state.done, 10);
  assert.equal(n.sleeping, true);
  const polls = state.polls;
  await sleep(20);
  assert.equal(state.polls, polls, 'no polling while asleep');
  state.pending = 5;
  doorbell.ring();
  await sleep(20);
  assert.equal(state.done, 15);
  assert.equal(n.wakeups, 1);
  n.stop();
});

test('poll: never arms and does not starve the event loop', async () => {
  const { n, state } = harness('poll', { spinUs: 200 });
  n.start();
  let timerFired = 0;
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    setTimeout(() => {
      timerFired = performance.now() - t0;
      resolve();
    }, 5);
  });
  state.pending = 7;
  await sleep(5);
  n.stop();
  assert.equal(state.arms, 0);
  assert.equal(state.done, 7);
  assert.ok(timerFired < 100, `timer delayed ${timerFired} ms`);
  assert.ok(state.polls > 100, 'it polled');
  const polls = state.polls;
  await sleep(10);
  assert.equal(state.polls, polls, 'stop() stops');
});

test('adaptive: polls while busy, arms and sleeps after idle, wakes on ring', async () => {
  const { n, doorbell, state } = harness('adaptive', { spinUs: 50, adaptiveIdleUs: 2000, preemptedUs: 1e9 });
  state.pending = 4;
  n.start();
  await sleep(1);
  assert.equal(state.done, 4);
  assert.equal(state.arms, 0, 'still polling inside the idle window');
  const t0 = performance.now();
  while (!n.sleeping && performance.now() - t0 < 1000) await sleep(1);
  assert.equal(n.sleeping, true);
  assert.ok(state.arms >= 1);
  state.pending = 2;
  doorbell.ring();
  await sleep(5);
  assert.equal(state.done, 6);
  n.stop();
});

test('arm returning true prevents sleep (work that raced the arming is not lost)', async () => {
  const doorbell = new FakeDoorbell();
  let pending = 0;
  let arms = 0;
  const n = new Notifier({
    mode: 'interrupt',
    doorbell,
    poll: () => {
      const k = pending;
      pending = 0;
      return k;
    },
    arm: () => {
      arms++;
      if (arms === 1) pending = 1; // data arrives between the poll and the arm
      return pending > 0;
    },
  });
  n.start();
  await sleep(10);
  assert.equal(pending, 0, 'the racing work was polled without a ring');
  assert.equal(n.sleeping, true);
  n.stop();
  assert.throws(() => new Notifier({ mode: 'x' as NotifyMode, doorbell, poll: () => 0, arm: () => false }), {
    code: 'ERR_INVALID_ARG_VALUE',
  });
});

test('adaptive: busy() keeps polling past the idle window, bounded by adaptiveBusyUs', async () => {
  const doorbell = new FakeDoorbell();
  let busy = true;
  let arms = 0;
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    poll: () => 0,
    arm: () => {
      arms++;
      return false;
    },
    busy: () => busy,
    spinUs: 50,
    adaptiveIdleUs: 100,
    adaptiveBusyUs: 200_000,
    // A loaded machine preempts us while polling, which (rightly) stops the polling: not tested here.
    preemptedUs: 1e9,
  });
  n.start();
  await sleep(20);
  assert.equal(arms, 0, 'blocked writes keep the notifier polling');
  assert.equal(n.sleeping, false);
  busy = false;
  const t0 = performance.now();
  while (!n.sleeping && performance.now() - t0 < 1000) await sleep(1);
  assert.equal(n.sleeping, true, 'sleeps once nothing waits on the peer');
  n.stop();
  // Still busy: the bound applies, so a peer that never drains cannot keep us spinning.
  let armed = 0;
  const m = new Notifier({
    mode: 'adaptive',
    doorbell,
    poll: () => 0,
    arm: () => {
      armed++;
      return false;
    },
    busy: () => true,
    spinUs: 50,
    adaptiveIdleUs: 100,
    adaptiveBusyUs: 2000,
  });
  m.start();
  const t1 = performance.now();
  while (!m.sleeping && performance.now() - t1 < 1000) await sleep(1);
  assert.equal(m.sleeping, true);
  assert.ok(armed >= 1);
  m.stop();
});

test('adaptive: stops polling at once when an empty poll shows the CPU was lost, even while busy', async () => {
  const doorbell = new FakeDoorbell();
  let arms = 0;
  let slow = false;
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    poll: () => {
      // Stands for a preemption: an empty poll that took 2 ms of wall time.
      if (slow) {
        const t = performance.now();
        while (performance.now() - t < 2);
      }
      return 0;
    },
    arm: () => {
      arms++;
      return false;
    },
    busy: () => true,
    spinUs: 50,
    adaptiveIdleUs: 200,
    adaptiveBusyUs: 1_000_000,
  });
  n.start();
  slow = true;
  const t0 = performance.now();
  // Looked at every loop turn, not every millisecond: the first backoff lasts only 2 ms.
  while (!n.sleeping && performance.now() - t0 < 1000) await new Promise((r) => setImmediate(r));
  assert.equal(n.sleeping, true, 'sleeps although a write is blocked');
  assert.ok(n.preemptions >= 1);
  assert.equal(n.pollWindowUs, 0, 'no polling during the backoff');
  assert.ok(arms >= 1);
  n.stop();
});

test('adaptive: polls only as long as gaps between bursts suggest; not at all when they are long', async () => {
  const { n, doorbell, state } = harness('adaptive', { spinUs: 50, adaptiveIdleUs: 200, preemptedUs: 1e9 });
  n.start();
  assert.equal(n.pollWindowUs, 200, 'the full window before anything is learnt');
  // Bursts 20 ms apart, far longer than a wake costs: after the first, adaptive sleeps right after each.
  for (let i = 0; i < 6; i++) {
    const t0 = performance.now();
    while (!n.sleeping && performance.now() - t0 < 1000) await sleep(1);
    assert.equal(n.sleeping, true);
    await sleep(20);
    state.pending = 1;
    doorbell.ring();
  }
  await sleep(5);
  assert.equal(state.done, 6, 'every burst was handled');
  assert.equal(n.pollWindowUs, 0, 'long gaps: no polling');
  n.stop();
});

test('adaptive: while the CPU is contended it sleeps after the first empty poll, as interrupt does', async () => {
  let contended = true;
  const doorbell = new FakeDoorbell();
  const state = { pending: 4, done: 0, arms: 0, polls: 0 };
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    poll: () => {
      state.polls++;
      const k = Math.min(state.pending, 3);
      state.pending -= k;
      state.done += k;
      return k;
    },
    arm: () => {
      state.arms++;
      return state.pending > 0;
    },
    contended: () => contended,
  });
  n.start();
  await sleep(20);
  assert.equal(state.done, 4);
  assert.equal(n.sleeping, true);
  assert.ok(n.contendedTurns >= 1);
  // Drained in two polls, then one empty poll and the arm: no polling window.
  assert.equal(state.polls, 3);
  state.pending = 2;
  doorbell.ring();
  await sleep(20);
  assert.equal(state.done, 6);
  assert.equal(n.sleeping, true);
  assert.equal(state.polls, 5, 'woken: one poll with work, one empty, then asleep');
  // No longer contended: adaptive polls for a window after work again (its first window is
  // adaptiveIdleUs, 200 us: many polls).
  contended = false;
  state.pending = 1;
  doorbell.ring();
  await sleep(20);
  assert.equal(state.done, 7);
  assert.ok(state.polls > 7, `polled after the work (${state.polls} polls)`);
  n.stop();
});
