// Adaptive's polling window and what it is conditioned on (wake-switches.ts): yielding before the
// window, so that what a turn's work queued for later in the loop goes out first, and stopping it
// once every peer sleeps. On a fake clock: what is checked follows from the polls, not the load.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Notifier } from './notifier.js';
import { FakeDoorbell, untilAsleep, withFakeClock } from './testing/notifier-fakes.js';
import { WakeCost } from './wake-cost.js';
import { parseWakeSwitches } from './wake-switches.js';

/** Starts the notifier on the fake clock, lets it run until it sleeps, and stops it. */
async function runUntilAsleep(n: Notifier): Promise<void> {
  await withFakeClock(async () => {
    n.start();
    await untilAsleep(n);
    n.stop();
  });
}

/**
 * Work arrives at the first poll; handling it queues a setImmediate (as undici queues the write of
 * its next request) which makes the peer's answer available at once. Returns the poll count when
 * that immediate ran, whether the answer was found without sleeping, and the polls in all.
 */
async function afterWork(yieldBeforeWindow: boolean) {
  const st = { pending: 1, polls: 0, done: 0, immediateAtPoll: -1 };
  const doorbell = new FakeDoorbell();
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    spinUs: 10_000,
    adaptiveIdleUs: 10_000,
    preemptedUs: 1e9,
    wakeCost: new WakeCost(),
    yieldBeforeWindow,
    poll: () => {
      st.polls++;
      if (st.pending === 0) return 0;
      st.pending--;
      st.done++;
      if (st.done === 1) {
        setImmediate(() => {
          st.immediateAtPoll = st.polls;
          st.pending++;
        });
      }
      return 1;
    },
    arm: () => st.pending > 0,
  });
  await runUntilAsleep(n);
  return { ...st, wakeups: n.wakeups };
}

test('adaptive, yieldBeforeWindow: what the work queued with setImmediate runs before the window polls', async () => {
  const y = await afterWork(true);
  // Poll 1 found the work, poll 2 found nothing and ended the turn: the immediate ran then.
  assert.equal(y.immediateAtPoll, 2);
  assert.equal(y.done, 2, 'the answer it made possible was found by the window');
  assert.equal(y.wakeups, 0, 'without a sleep');
  // Without the yield the same turn polls its window first (10 ms of fake clock: many polls), and
  // the immediate waits for the end of it.
  const n = await afterWork(false);
  assert.ok(n.immediateAtPoll > 100, `immediate ran at poll ${n.immediateAtPoll}`);
  assert.equal(n.done, 2);
});

/**
 * A chain of `items` works, each of whose handling queues a setImmediate that makes the next one
 * (rings if the notifier sleeps), and "sends" (moves the posts count) when `sends`. Returns how
 * many of those immediates ran right after the first empty poll with the notifier awake: after a yield.
 */
async function yieldsInChain(items: number, sends: boolean): Promise<number> {
  const st = { pending: 1, polls: 0, made: 1, sent: 0, yielded: 0 };
  const doorbell = new FakeDoorbell();
  const n: Notifier = new Notifier({
    mode: 'adaptive',
    doorbell,
    spinUs: 50,
    adaptiveIdleUs: 200,
    preemptedUs: 1e9,
    wakeCost: new WakeCost(),
    yieldBeforeWindow: true,
    posts: () => st.sent,
    poll: () => {
      st.polls++;
      if (st.pending === 0) return 0;
      st.pending--;
      const at = st.polls;
      setImmediate(() => {
        if (st.polls === at + 1 && !n.sleeping) st.yielded++;
        if (sends) st.sent++;
        if (st.made < items) {
          st.made++;
          st.pending++;
          if (n.sleeping) doorbell.ring();
        }
      });
      return 1;
    },
    arm: () => st.pending > 0,
  });
  await withFakeClock(async () => {
    n.start();
    for (let i = 0; i < 100_000 && !(st.made === items && st.pending === 0 && n.sleeping); i++) {
      await new Promise<void>((r) => setImmediate(r));
    }
    n.stop();
  });
  assert.equal(st.made, items);
  return st.yielded;
}

test('adaptive, yieldBeforeWindow: yields after which nothing was sent become rarer (1 in 16 at most)', async () => {
  const sending = await yieldsInChain(64, true);
  const silent = await yieldsInChain(64, false);
  assert.equal(sending, 64, 'every stretch yields while what runs after the yield sends');
  // Every 1st, 2nd, 4th, 8th, then 16th yielding stretch (fewer: stretches that skip their probe
  // do not count).
  assert.ok(silent <= 8, `${silent} yields where nothing was sent`);
  assert.ok(silent >= 2, `${silent} yields: it still tries now and then`);
});

/** Polls made between the last work and sleep, with peersAsleep saying `asleep` and busy() `busy`. */
async function pollsBeforeSleep(asleep: boolean, busy: boolean): Promise<number> {
  const st = { pending: 1, polls: 0, atWork: 0 };
  const n = new Notifier({
    mode: 'adaptive',
    doorbell: new FakeDoorbell(),
    spinUs: 50,
    adaptiveIdleUs: 200,
    adaptiveBusyUs: 2000,
    preemptedUs: 1e9,
    wakeCost: new WakeCost(),
    peersAsleep: () => asleep,
    busy: () => busy,
    poll: () => {
      st.polls++;
      if (st.pending === 0) return 0;
      st.pending--;
      st.atWork = st.polls;
      return 1;
    },
    arm: () => st.pending > 0,
  });
  await runUntilAsleep(n);
  return st.polls - st.atWork;
}

test('adaptive, peersAsleep: a window stops at its first look once every peer sleeps, unless busy()', async () => {
  const awake = await pollsBeforeSleep(false, false);
  const asleep = await pollsBeforeSleep(true, false);
  const busy = await pollsBeforeSleep(true, true);
  // The window (200 us of a clock that moves 1 us per reading) against one clock batch.
  assert.ok(asleep < awake / 4, `peers asleep: ${asleep} polls, awake: ${awake}`);
  assert.ok(asleep <= 64 + 1, `one clock batch at most, got ${asleep}`);
  // Local work blocked on the peer keeps polling as before (the busy window is longer still).
  assert.ok(busy > awake, `busy: ${busy} polls, awake: ${awake}`);
});

test('interrupt and poll modes ignore both switches', async () => {
  for (const mode of ['interrupt', 'poll'] as const) {
    let polls = 0;
    let asked = 0;
    const n = new Notifier({
      mode,
      doorbell: new FakeDoorbell(),
      spinUs: 50,
      yieldBeforeWindow: true,
      peersAsleep: () => {
        asked++;
        return true;
      },
      poll: () => (++polls === 1 ? 1 : 0),
      arm: () => false,
    });
    await withFakeClock(async () => {
      n.start();
      if (mode === 'interrupt') await untilAsleep(n);
      else for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
      n.stop();
    });
    assert.equal(asked, 0, `${mode} asked whether peers sleep`);
    assert.ok(polls > 1, mode);
  }
});

test('the switches: the yield on and the gate off unless set, 0 or 1, anything else a clear error', () => {
  assert.deepEqual(parseWakeSwitches({}), { peerGate: false, yieldBeforeWindow: true });
  assert.deepEqual(parseWakeSwitches({ FERRY_ADAPTIVE_PEER_GATE: '1', FERRY_ADAPTIVE_YIELD: '0' }), {
    peerGate: true,
    yieldBeforeWindow: false,
  });
  assert.deepEqual(parseWakeSwitches({ FERRY_ADAPTIVE_YIELD: '1', FERRY_ADAPTIVE_PEER_GATE: '' }), {
    peerGate: false,
    yieldBeforeWindow: true,
  });
  for (const bad of ['yes', '2', ' 1', 'true']) {
    assert.throws(
      () => parseWakeSwitches({ FERRY_ADAPTIVE_YIELD: bad }),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_INVALID_ARG_VALUE' && e.message.includes('FERRY_ADAPTIVE_YIELD'),
    );
  }
});
