import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Notifier, type NotifyMode } from './notifier.js';
import { FakeDoorbell, turn, untilAsleep, withFakeClock } from './testing/notifier-fakes.js';

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
  // One loop turn (its setImmediate runs after the notifier's), not a 20 ms timer: started from the
  // check phase, a process held off its CPU for 20 ms runs that timer before the notifier's turn.
  await turn();
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
  // Starving the loop is read in polls, not in a timer's delay: this asserted a 5 ms timer ran
  // within 100 ms, which a loaded machine outlasts ('timer delayed 131 ms' at load 13). On the fake
  // clock a turn ends after spinUs (200) readings, at most CLOCK_EVERY_MAX (64) polls each; a
  // setImmediate of the test's, run between the notifier's turns, counts the polls in one turn. A
  // notifier that never yields is stopped at a million polls in one turn, so the test fails, not hangs.
  await withFakeClock(async () => {
    const doorbell = new FakeDoorbell();
    const state = { pending: 0, done: 0, arms: 0, polls: 0 };
    let sinceTick = 0;
    let mostInOneTurn = 0;
    let ticks = 0;
    let starved = false;
    const n: Notifier = new Notifier({
      mode: 'poll',
      doorbell,
      spinUs: 200,
      poll: () => {
        state.polls++;
        if (++sinceTick > 1_000_000) {
          starved = true;
          n.stop();
        }
        const k = Math.min(state.pending, 3);
        state.pending -= k;
        state.done += k;
        return k;
      },
      arm: () => {
        state.arms++;
        return false;
      },
    });
    let ticking = true;
    const tick = (): void => {
      ticks++;
      mostInOneTurn = Math.max(mostInOneTurn, sinceTick);
      sinceTick = 0;
      if (ticking) setImmediate(tick);
    };
    n.start();
    setImmediate(tick);
    // A timer runs while it polls (the loop reaches its timers phase).
    await sleep(5);
    state.pending = 7;
    for (let i = 0; i < 1000 && state.done < 7; i++) await turn();
    ticking = false;
    n.stop();
    assert.equal(starved, false, 'a turn polled a million times without yielding');
    assert.equal(state.arms, 0);
    assert.equal(state.done, 7);
    assert.ok(ticks >= 2, `the loop turned while it polled (${ticks} ticks)`);
    assert.ok(
      mostInOneTurn <= 200 * 64,
      `a turn polled ${mostInOneTurn} times: longer than spinUs on its clock`,
    );
    assert.ok(state.polls > 100, 'it polled');
    const polls = state.polls;
    await sleep(10);
    assert.equal(state.polls, polls, 'stop() stops');
  });
});

test('adaptive: polls while busy, arms and sleeps after idle, wakes on ring', async () => {
  // The notifier's clock advances 1 us per reading, so its idle window passes after a fixed number
  // of polls however loaded the machine is. With the real clock this waited 1 ms and expected the
  // work done: a first turn preempted past its 50 us spin left the last unit to the next loop turn,
  // after that timer (3 !== 4, once in 20 runs of the other shm tests at load 7).
  await withFakeClock(async () => {
    const { n, doorbell, state } = harness('adaptive', {
      spinUs: 50,
      adaptiveIdleUs: 2000,
      preemptedUs: 1e9,
    });
    state.pending = 4;
    n.start();
    await turn();
    assert.equal(state.done, 4, 'one turn does it all (3 a poll)');
    assert.equal(state.arms, 0, 'still polling inside the idle window');
    for (let i = 0; i < 1000 && !n.sleeping; i++) await turn();
    assert.equal(n.sleeping, true);
    assert.ok(state.arms >= 1);
    const asleepAt = performance.now();
    assert.ok(asleepAt >= 2, `asleep at ${asleepAt} ms on its clock: not before the 2 ms idle window`);
    state.pending = 2;
    doorbell.ring();
    assert.equal(state.done, 6, 'the ring polls at once');
    assert.equal(n.wakeups, 1);
    n.stop();
  });
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
  // One loop turn, not a timer: a process held off its CPU past a 10 ms sleep ran the timer before
  // the notifier's first turn (sleeping false, 2 runs in 4 at load 12).
  await turn();
  assert.equal(pending, 0, 'the racing work was polled without a ring');
  assert.equal(n.sleeping, true);
  n.stop();
  assert.throws(() => new Notifier({ mode: 'x' as NotifyMode, doorbell, poll: () => 0, arm: () => false }), {
    code: 'ERR_INVALID_ARG_VALUE',
  });
});

test('adaptive: busy() keeps polling past the idle window, bounded by adaptiveBusyUs', async () => {
  // On the fake clock, and loop turns instead of timers: with the real clock a test held off its
  // CPU for longer than adaptiveBusyUs (200 ms) during its 20 ms sleep saw the bound, not busy().
  await withFakeClock(async () => {
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
      preemptedUs: 1e9,
    });
    const t0 = performance.now();
    n.start();
    // Ten idle windows (1 ms on its clock, about 20 turns of 50 us).
    for (let i = 0; i < 1000 && performance.now() - t0 < 1; i++) await turn();
    assert.ok(performance.now() - t0 >= 1, 'polled past the idle window');
    assert.equal(arms, 0, 'blocked writes keep the notifier polling');
    assert.equal(n.sleeping, false);
    busy = false;
    for (let i = 0; i < 1000 && !n.sleeping; i++) await turn();
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
      preemptedUs: 1e9,
    });
    const t1 = performance.now();
    m.start();
    for (let i = 0; i < 1000 && !m.sleeping; i++) await turn();
    assert.equal(m.sleeping, true);
    assert.ok(armed >= 1);
    const asleepAfter = performance.now() - t1;
    assert.ok(asleepAfter >= 2, `asleep after ${asleepAfter} ms on its clock: before the 2 ms bound`);
    m.stop();
  });
});

test('adaptive: stops polling at once when an empty poll shows the CPU was lost, even while busy', async () => {
  // On the fake clock a slow poll is 2 ms added to it, and the 2 ms backoff that follows lasts until
  // the test has looked: with the real clock, a test held off its CPU for 2 ms after the notifier
  // went to sleep found the backoff over ('no polling during the backoff', 200 !== 0, at load 9).
  await withFakeClock(async (advance) => {
    const doorbell = new FakeDoorbell();
    let arms = 0;
    let slow = false;
    const n = new Notifier({
      mode: 'adaptive',
      doorbell,
      poll: () => {
        // Stands for a preemption: an empty poll that took 2 ms.
        if (slow) advance(2);
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
    for (let i = 0; i < 1000 && !n.sleeping; i++) await turn();
    assert.equal(n.sleeping, true, 'sleeps although a write is blocked');
    assert.ok(n.preemptions >= 1);
    assert.equal(n.pollWindowUs, 0, 'no polling during the backoff');
    assert.ok(arms >= 1);
    n.stop();
  });
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
  // One loop turn, not a 20 ms timer the loop may reach first (as in the interrupt test).
  await turn();
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

/**
 * A source whose work comes in chains: after each unit of work, the next comes `replyAfter` polls
 * later (a peer answering fast), while `chain` lasts; the test delivers it by a ring instead when
 * the notifier fell asleep first.
 */
function chainHarness() {
  const doorbell = new FakeDoorbell();
  const st = { pending: 0, polls: 0, done: 0, chain: 0, replyIn: 0, replyAfter: 3 };
  const n = new Notifier({
    mode: 'adaptive',
    doorbell,
    spinUs: 50,
    adaptiveIdleUs: 200,
    preemptedUs: 1e9,
    poll: () => {
      st.polls++;
      if (st.replyIn > 0 && --st.replyIn === 0) st.pending++;
      if (st.pending === 0) return 0;
      st.pending--;
      st.done++;
      if (st.chain > 0) {
        st.chain--;
        st.replyIn = st.replyAfter;
      }
      return 1;
    },
    arm: () => st.pending > 0,
  });
  return { n, doorbell, st };
}

test('adaptive, window 0: idle stretches probe less and less while probes find nothing, and sleep at their first empty poll', async () => {
  const { n, doorbell, st } = chainHarness();
  n.start();
  // Bursts 5 ms apart: the window goes to 0 after the first.
  const polls: number[] = [];
  for (let i = 0; i < 20; i++) {
    await untilAsleep(n);
    await sleep(5);
    const before = st.polls;
    st.pending = 1;
    doorbell.ring();
    await untilAsleep(n);
    polls.push(st.polls - before);
  }
  assert.equal(st.done, 20);
  assert.equal(n.pollWindowUs, 0);
  // One poll with the work and one empty poll, except the probes (a clock batch of empty polls),
  // which came at the 1st, 3rd, 7th and 15th stretch once the window was 0.
  const cheap = polls.slice(1).filter((k) => k === 2).length;
  assert.ok(cheap >= 14, `stretches that slept at their first empty poll: ${cheap} of 19 (${polls})`);
  n.stop();
});

test('adaptive, window 0: a probe that finds work makes every stretch probe again', async () => {
  // On the fake clock, where every clock batch takes 1 us a reading and so grows to 64 polls: with
  // the real clock, batches a loaded machine slowed were halved to 1-2 polls, too few to catch a
  // reply 3 polls later, and the rings counted followed from the load.
  await withFakeClock(async (advance) => {
    const { n, doorbell, st } = chainHarness();
    n.start();
    // Long gaps first (2 ms on its clock): probes find nothing and become rare (every 16th stretch).
    for (let i = 0; i < 24; i++) {
      await untilAsleep(n);
      advance(2);
      st.pending = 1;
      doorbell.ring();
    }
    await untilAsleep(n);
    assert.equal(n.pollWindowUs, 0, 'long gaps: window 0');
    // Then a fast peer: each unit of work brings the next 3 polls later, within a probe's batch. A
    // stretch that skips its probe sleeps and is rung 1 ms later (counted); once a probe caught the
    // next unit, every stretch probes again and catches it (here 7 rings: 5 before the first probe,
    // 2 where a stretch began at the end of a clock batch and slept 1-2 polls into it).
    st.chain = 60;
    st.pending = 1;
    let rings = 0;
    const ringsAt: number[] = [];
    doorbell.ring();
    for (let i = 0; st.chain > 0 || st.replyIn > 0 || st.pending > 0; i++) {
      if (i > 100_000) assert.fail(`chain stuck at ${st.chain}`);
      if (n.sleeping && st.replyIn > 0) {
        // The ring comes as late as a wake-up does on a slow VM: the gap it shows is long.
        advance(1);
        st.replyIn = 0;
        st.pending++;
        rings++;
        ringsAt.push(st.chain);
        doorbell.ring();
      }
      await turn();
    }
    // Up to 15 stretches skip before the first probe; after it, each stretch probes, and misses only
    // when it began at a clock batch's end. Without the reset, 15 of every 16 stretches would need a ring, and their long gaps
    // would keep the window at 0.
    assert.ok(rings <= 16, `rings: ${rings} (chain left at each: ${ringsAt})`);
    n.stop();
  });
});

test('adaptive: a polling stretch that finds nothing makes the next one shorter, down to 20 us', async () => {
  // HTTP 16 B (BENCHMARKS.md, wake8): the server's gaps read short (a client turn's requests land a
  // few us apart), so its windows were 40-80 us, yet 97% of its polling stretches found nothing:
  // rarer (1 in 16), each still polled its whole window. On the fake clock (1 us per reading).
  await withFakeClock(async (advance) => {
    const { n, doorbell, st } = chainHarness();
    n.start();
    // The first stretch polls the longest window (adaptiveIdleUs, 200 us: no gaps seen yet).
    await untilAsleep(n);
    const perUs = st.polls / 200;
    /** Polls of the stretch after one unit of work that comes `gapMs` after the last sleep. */
    const cycle = async (gapMs: number): Promise<number> => {
      await untilAsleep(n);
      advance(gapMs);
      const before = st.polls;
      st.pending = 1;
      doorbell.ring();
      await untilAsleep(n);
      return st.polls - before;
    };
    // Gaps of 30 us: the window is about 3 x 30 us; nothing ever comes within it.
    const polls: number[] = [];
    for (let i = 0; i < 200; i++) polls.push(await cycle(0.03));
    assert.ok(n.pollWindowUs >= 50, `window ${n.pollWindowUs} us`);
    // Stretches that polled (the skipped ones make one poll with the work and one empty).
    const polled = polls.filter((k) => k > 2);
    assert.ok(polled.length >= 8, `polling stretches: ${polled.length}`);
    const last = polled.slice(-3);
    // 20 us, and a clock batch of slack; the window would take about 90.
    const most = 30 * perUs;
    assert.ok(
      last.every((k) => k <= most),
      `later stretches: ${last} polls, at most ${most.toFixed(0)} (${perUs.toFixed(1)} a us; window ${n.pollWindowUs.toFixed(0)} us)`,
    );
    n.stop();
  });
});
