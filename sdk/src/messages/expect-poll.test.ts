import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type ExpectHost, ExpectPoll } from './expect-poll.js';

const WINDOW = 0.2;

/** A host that records what the expectation asked for; `wake()`/`preempt()` move its counters. */
function fakeHost(mode: ExpectHost['mode'] = 'adaptive') {
  const h = {
    wakeupCount: 0,
    preemptionCount: 0,
    announced: 0,
    announcements: [] as number[],
    /** performance.now()-style deadlines asked for with pollUntil, and with sleepUntil. */
    deadlines: [] as number[],
    sleeps: [] as number[],
    sleepHooks: [] as (() => void)[],
    sleep(): void {
      for (const fn of h.sleepHooks.splice(0)) fn();
    },
  };
  const host: ExpectHost = {
    mode,
    wakeups: () => h.wakeupCount,
    preemptions: () => h.preemptionCount,
    pollUntil: (ms) => h.deadlines.push(ms),
    sleepUntil: (ms) => h.sleeps.push(ms),
    announce: (id) => {
      h.announced = id;
      h.announcements.push(id);
    },
    beforeSleep: (fn) => h.sleepHooks.push(fn),
  };
  return { h, host };
}

test('a poll is announced with its id, asks the notifier for at most the window, and is taken back', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  // Nothing measured yet: the first expectation polls. (Keys from 5: keys 0-3 of every 16 explore.)
  assert.equal(e.start(100, 5, false, 7), true);
  assert.equal(h.announced, 7);
  assert.deepEqual(h.deadlines, [100 + WINDOW]);
  assert.equal(e.active, true);
  e.end(100.01);
  assert.equal(h.announced, 0, 'the frame came: no longer polling for it');
  assert.equal(e.active, false);
  assert.equal(e.stats.foundPolling, 1);
  // Then sleeping is measured once: nothing announced.
  assert.equal(e.start(200, 6, false, 8), false);
  assert.equal(h.announced, 0);
  h.wakeupCount++;
  e.end(200.08);
  // Polling was faster: it polls again, and the announcement ends when the notifier goes to sleep.
  assert.equal(e.start(300, 7, false, 9), true);
  assert.equal(h.announced, 9);
  h.sleep();
  assert.equal(h.announced, 0, 'asleep: the announcement ends');
  e.end(300.01);
  // stop() (the channel closed) takes it back and forgets the expectation.
  assert.equal(e.start(400, 8, false, 10), true);
  e.stop();
  assert.equal(h.announced, 0);
  assert.equal(e.active, false);
  e.end(401);
  assert.equal(e.stats.foundPolling + e.stats.foundWoken, 3, 'end() after stop() is ignored');
  // The budget of a peer that did not announce took all four choices; the other none.
  const b = e.budgetStats;
  assert.equal(b.peerAsleep.polled, 3);
  assert.equal(b.peerAsleep.slept, 1);
  assert.equal(b.peerPolling.polled + b.peerPolling.slept, 0);
  b.peerAsleep.polled = 99;
  assert.equal(e.budgetStats.peerAsleep.polled, 3, 'a copy: the caller cannot move the counts');
});

test('interrupt mode never polls nor announces; poll mode always polls and says so', () => {
  const i = fakeHost('interrupt');
  const never = new ExpectPoll(WINDOW, i.host);
  const p = fakeHost('poll');
  const always = new ExpectPoll(WINDOW, p.host);
  for (let id = 1; id <= 100; id++) {
    assert.equal(never.start(id, id, true, id), false);
    assert.equal(i.h.announced, 0);
    assert.equal(always.start(id, id, false, id), true);
    assert.equal(p.h.announced, id);
    i.h.wakeupCount++;
    never.end(id + 0.3);
    always.end(id + 0.3);
    assert.equal(p.h.announced, 0);
  }
  assert.deepEqual(i.h.deadlines, []);
  assert.equal(never.stats.sleptPeerPolling, 100);
  assert.equal(always.stats.polledPeerAsleep, 100);
  assert.ok(Number.isNaN(always.averages.peerAsleep.pollMs), 'nothing learned outside adaptive mode');
});

test('budgets are kept per peer state: polling pays only while the peer polls too', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  let now = 1000;
  let polledWithPeer = 0;
  let polledAlone = 0;
  for (let id = 1; id <= 4000; id++) {
    const peerPolling = id % 2 === 0;
    const poll = e.start(now, id, peerPolling, id);
    if (poll && peerPolling) polledWithPeer++;
    if (poll && !peerPolling) polledAlone++;
    // With the peer polling, polling brings the frame in 10 us and sleeping in 80; with the peer
    // asleep, polling alone gains nothing (its wake-up is the whole wait) and sleeping takes 70.
    let took: number;
    if (peerPolling) took = poll ? 0.01 : 0.08;
    else took = poll ? 0.3 : 0.07;
    if (!poll) h.wakeupCount++;
    now += took;
    e.end(now);
    now += 0.05;
  }
  assert.ok(polledWithPeer > 1900, `polled ${polledWithPeer} of 2000 with the peer polling`);
  assert.ok(polledAlone < 150, `polled ${polledAlone} of 2000 with the peer asleep`);
  const { peerPolling, peerAsleep } = e.averages;
  assert.ok(peerPolling.pollMs < peerPolling.sleepMs && peerAsleep.pollMs > peerAsleep.sleepMs);
});

test('a peer that announces polling and then vanishes does not keep this end polling', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  let now = 1000;
  let polled = 0;
  const n = 5000;
  for (let id = 1; id <= n; id++) {
    // The stale announcement matches every time; no frame comes within the window (the channel
    // would fail on its own; here each expectation ends 5 ms later, after a wake-up).
    const poll = e.start(now, id, true, id);
    if (poll) polled++;
    const deadline = h.deadlines.at(-1);
    if (poll) assert.ok(deadline !== undefined && deadline <= now + WINDOW, 'every poll is bounded');
    h.wakeupCount++;
    now += 5;
    e.end(now);
  }
  // The unmeasured first try, then explorations only: a few bursts, ever rarer.
  assert.ok(polled <= 50, `polled ${polled} of ${n} expectations for a vanished peer`);
  assert.ok(e.stats.late >= 1);
});

test('a poll the notifier did not make seeds an unmeasured budget as the worst, then leaves averages alone', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  // Asked to poll, the notifier slept (contended) and was woken within the window.
  assert.equal(e.start(10, 5, true, 5), true);
  h.wakeupCount++;
  e.end(10.05);
  assert.equal(e.stats.voided, 1);
  assert.equal(e.averages.peerPolling.pollMs, 0.5, 'unmeasured: the cap');
  // Measured polling (fast), then a backoff: refused polls do not move the average.
  const g = fakeHost();
  const m = new ExpectPoll(WINDOW, g.host);
  assert.equal(m.start(20, 6, true, 6), true);
  m.end(20.01);
  assert.equal(m.start(30, 7, true, 7), false, 'sleeping is measured once');
  g.h.wakeupCount++;
  m.end(30.08);
  assert.equal(m.start(40, 8, true, 8), true);
  g.h.wakeupCount++;
  m.end(40.07);
  assert.equal(m.stats.voided, 1);
  assert.ok(Math.abs(m.averages.peerPolling.pollMs - 0.01) < 1e-9, `${m.averages.peerPolling.pollMs}`);
  // A poll during which the notifier was preempted counts as the cap, whatever the frame's time.
  assert.equal(m.start(50, 9, true, 9), true);
  g.h.preemptionCount++;
  m.end(50.01);
  assert.equal(m.stats.late, 1);
  assert.ok(m.averages.peerPolling.pollMs > 0.05);
});

test('explorations the notifier does not make (contended: it sleeps) back off like lost ones', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  let now = 1000;
  let polled = 0;
  for (let id = 1; id <= 5000; id++) {
    if (e.start(now, id, false, id)) polled++;
    // Whatever was chosen, the notifier slept and was woken: 70 us.
    h.wakeupCount++;
    now += 0.07;
    e.end(now);
    now += 0.01;
  }
  assert.ok(e.stats.voided > 0);
  assert.ok(polled <= 50, `chose to poll ${polled} times of 5000 while the notifier never could`);
});

test('announcements are u32: ids at the wrap-around and garbage-sized keys do not throw', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  for (const [key, id] of [
    [0xffffffff, 0xffffffff],
    [2 ** 40 + 3, 2 ** 33 + 5],
    [-1, -1],
  ] as const) {
    const poll = e.start(1, key, true, id);
    if (poll) assert.ok(h.announced >= 0 && h.announced <= 0xffffffff, `announced ${h.announced}`);
    e.end(1.01);
  }
});

/**
 * Two ends of a channel, coupled only through their announcements, under a model of the machine:
 * a frame reaches a polling end in 5 us and a sleeping one after a wake-up of `wakeMs`; while the
 * machine is `loaded`, a polling end is preempted and its frame comes after the window.
 */
function pair() {
  const c = fakeHost();
  const s = fakeHost();
  const client = new ExpectPoll(WINDOW, c.host);
  const server = new ExpectPoll(WINDOW, s.host);
  let now = 1000;
  let id = 0;
  // The server's expectation of the first request starts asleep (nothing measured at connect).
  let serverPolls = false;
  const arrive = (polling: boolean, loaded: boolean, wakeMs: number) =>
    polling ? (loaded ? 0.6 : 0.005) : wakeMs;
  /** One round trip; returns its time (ms) and whether both ends polled. */
  const roundTrip = (loaded: boolean, wakeMs = 0.07): { ms: number; both: boolean } => {
    id++;
    const t0 = now;
    const peerPolling = serverPolls && s.h.announced === id;
    const clientPolls = client.start(now, id, peerPolling, id);
    // The request reaches the server, which had been expecting it since its last reply.
    now += arrive(serverPolls, loaded, wakeMs);
    if (!serverPolls) s.h.wakeupCount++;
    server.end(now);
    now += 0.005; // the handler
    const callerPolls = c.h.announced === id;
    serverPolls = server.start(now, id + 1, callerPolls, id + 1);
    now += arrive(clientPolls, loaded, wakeMs);
    if (!clientPolls) c.h.wakeupCount++;
    client.end(now);
    const ms = now - t0;
    now += 0.005; // the caller's own work before its next request
    return { ms, both: clientPolls && callerPolls };
  };
  return { roundTrip, client, server };
}

test('two ends find polling together from both asleep once the machine frees, and leave it when loaded', () => {
  const p = pair();
  // A loaded machine: polls come late, so both ends settle asleep.
  let both = 0;
  for (let i = 0; i < 3000; i++) if (p.roundTrip(true).both) both++;
  assert.ok(both < 100, `both polled in ${both} of 3000 round trips on the loaded machine`);
  let late = 0;
  for (let i = 0; i < 2000; i++) if (p.roundTrip(true).ms > WINDOW) late++;
  assert.ok(late < 60, `${late} of 2000 round trips paid for a late poll (explorations only)`);
  // The machine frees: within a few bursts both ends poll, and round trips take ~15 us.
  let settle = 0;
  while (settle < 3000 && !p.roundTrip(false).both) settle++;
  assert.ok(settle < 3000, 'they started polling together');
  both = 0;
  const times: number[] = [];
  for (let i = 0; i < 3000; i++) {
    const r = p.roundTrip(false);
    if (r.both) both++;
    times.push(r.ms);
  }
  times.sort((a, b) => a - b);
  assert.ok(both > 2700, `both polled in ${both} of 3000 round trips on the free machine`);
  assert.ok((times[1500] as number) < 0.03, `median ${times[1500]} ms`);
  // Loaded again: they stop.
  for (let i = 0; i < 3000; i++) p.roundTrip(true);
  both = 0;
  for (let i = 0; i < 2000; i++) if (p.roundTrip(true).both) both++;
  assert.ok(both < 60, `both polled in ${both} of 2000 round trips once loaded again`);
});

test('adaptive: an expectation that chose to sleep keeps the notifier from polling on its own for the window', () => {
  const { h, host } = fakeHost();
  const e = new ExpectPoll(WINDOW, host);
  assert.equal(e.start(100, 5, false, 7), true, 'unmeasured: polls first');
  assert.deepEqual(h.sleeps, [], 'a poll asks nothing of the kind');
  e.end(100.3);
  assert.equal(e.start(200, 6, false, 8), false, 'then sleeping is measured');
  assert.deepEqual(h.sleeps, [200 + WINDOW]);
  assert.deepEqual(h.deadlines, [100 + WINDOW], 'and no polling is asked for');
  h.wakeupCount++;
  e.end(200.05);
  // Outside adaptive mode nothing is asked: interrupt never polls, poll always does.
  for (const mode of ['interrupt', 'poll'] as const) {
    const o = fakeHost(mode);
    const x = new ExpectPoll(WINDOW, o.host);
    for (let id = 1; id <= 20; id++) {
      x.start(id, id, false, id);
      x.end(id + 0.1);
    }
    assert.deepEqual(o.h.sleeps, [], mode);
  }
});
