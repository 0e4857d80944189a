import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Notifier, type NotifyMode } from './notifier.js';

// A poll that settles a promise calls yieldTurn(): the promise's continuation must run before the
// next poll, not after a whole spin turn (spinUs is huge here, so without the yield the turn would
// go on polling for 100 ms before any microtask ran).
for (const mode of ['poll', 'adaptive'] as NotifyMode[]) {
  test(`${mode}: yieldTurn() lets the microtasks of a poll run before the next poll`, async () => {
    let polls = 0;
    let pollsWhenContinued = -1;
    let yields = 0;
    const n: Notifier = new Notifier({
      mode,
      doorbell: { onRing: () => {} },
      spinUs: 100_000,
      // Adaptive must not go to sleep before the third poll (nothing would wake it): the longest
      // idle window there is, and no preemption check, which a loaded machine tripped (an empty
      // poll over 100 us: asleep after 2 polls, 'yields 0 !== 1' after 5 s, at load 12).
      adaptiveIdleUs: 10_000_000,
      preemptedUs: 1e9,
      poll: () => {
        polls++;
        if (polls === 3) {
          Promise.resolve().then(() => {
            pollsWhenContinued = polls;
          });
          n.yieldTurn();
          yields++;
          return 1;
        }
        return 0;
      },
      arm: () => false,
    });
    n.start();
    // Wait for the polls after the yield rather than a fixed time: a loaded machine can hold this
    // process off its CPU past a short sleep, which then stopped the notifier before it polled
    // again (seen in CI at load 10). Bounded: a notifier that never polls again fails below.
    const deadline = Date.now() + 5_000;
    while (polls <= 3 && Date.now() < deadline) await sleep(5);
    n.stop();
    assert.equal(yields, 1);
    assert.equal(pollsWhenContinued, 3, 'the continuation ran right after the poll that settled it');
    assert.ok(polls > 3, 'polling went on after the yield');
  });
}
