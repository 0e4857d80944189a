import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { RunQueue } from './run-queue.js';
import { parseSchedstat, RUN_WAIT_CLEAR, RUN_WAIT_CONTENDED, RUN_WAIT_FREE, RunWait } from './run-wait.js';

const enc = (s: string) => new TextEncoder().encode(s);

test('parseSchedstat reads the first two fields and rejects malformed text', () => {
  const out = new Float64Array(2);
  const ok = enc('107781 1827037 2\n');
  assert.equal(parseSchedstat(ok, ok.length, out), true);
  assert.deepEqual([...out], [107781, 1827037]);
  for (const bad of ['', '\n', '12', '12 ', '12 x4 3\n', '-1 2 3\n', ' 1 2 3\n', `${'9'.repeat(20)} 1 1\n`]) {
    const b = enc(bad);
    assert.equal(parseSchedstat(b, b.length, out), false, JSON.stringify(bad));
  }
  // Only the bytes read count, whatever follows in the buffer.
  const cut = enc('5 6 7\n99');
  assert.equal(parseSchedstat(cut, 4, out), true);
  assert.deepEqual([...out], [5, 6]);
});

/** A schedstat file whose counters a test advances. */
function fakeSchedstat(dir: string) {
  const file = join(dir, 'schedstat');
  const c = { ran: 1e9, waited: 1e8, runs: 10 };
  const put = () => writeFileSync(file, `${c.ran} ${c.waited} ${c.runs}\n`);
  put();
  /** Adds `waitMs` waiting for a CPU (and, unused by the rule, `runMs` on one). */
  const advance = (waitMs: number, runMs = 0) => {
    c.ran += runMs * 1e6;
    c.waited += waitMs * 1e6;
    c.runs += 1;
    put();
  };
  return { file, advance };
}

test('RunWait: a thread that polls is contended above the threshold, clear again only below the lower one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const f = fakeSchedstat(dir);
    const rw = new RunWait(f.file);
    let t = 0;
    // The first turn opens a window; every later one (SAMPLE_MS apart) closes it and opens the next.
    assert.equal(rw.contended(t), false);
    /** `ms` of wall-clock time pass, `waitMs` of them waiting for a CPU; then a turn asks. */
    const step = (ms: number, waitMs: number) => {
      f.advance(waitMs, ms - waitMs);
      t += ms;
      return rw.contended(t);
    };
    assert.equal(step(11, 1), false);
    assert.equal(step(10, 5), true, `share 0.5 > ${RUN_WAIT_CONTENDED}`);
    assert.ok(Math.abs(rw.share - 0.5) < 1e-9);
    assert.equal(step(10, 2), true, `share 0.2 is not below ${RUN_WAIT_CLEAR}: still contended`);
    // Asked again within the sampling period: the file is not read again (the wait counts in
    // the window that the next reading closes).
    f.advance(0.5);
    assert.equal(rw.contended(t + 1), true, 'within SAMPLE_MS: the answer stands');
    assert.equal(step(10, 1.5), true, 'share 0.2: not below the lower threshold');
    // A short window closed by a sleep (1 ms: under MIN_AWAKE_MS) does not decide alone.
    f.advance(0.1);
    rw.asleep(t + 1);
    assert.equal(rw.stats.decisions, 4);
    t += 1;
    assert.equal(step(20, 5), true, 'after a sleep a turn opens a window, nothing is decided');
    assert.equal(rw.stats.decisions, 4);
    assert.equal(step(20, 0.5), false, 'with the short window: share 0.6/21 clears it');
    assert.equal(rw.stats.decisions, 5);
    rw.close();
    assert.equal(rw.contended(t + 100), false, 'closed: never contended');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: the wait that comes with each wake-up is not contention, waits while awake are', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const f = fakeSchedstat(dir);
    const rw = new RunWait(f.file);
    let t = 0;
    /** One round trip of a thread that sleeps between frames: asleep 10 ms, woken (after
     *  `wakeUs` in a run queue), a turn of `runUs` with `awakeWaitUs` waiting in it, asleep. */
    const roundTrip = (wakeUs: number, runUs: number, awakeWaitUs: number) => {
      f.advance(wakeUs / 1000);
      t += 10 + wakeUs / 1000;
      rw.contended(t);
      f.advance(awakeWaitUs / 1000, runUs / 1000);
      t += (runUs + awakeWaitUs) / 1000;
      rw.asleep(t);
    };
    // The idle VM of session 4: wake-ups of 50-130 us onto halted vCPUs, 20 us turns (a window
    // each: SAMPLE_MS apart). The whole wait share is 0.8; the awake one is 0.
    for (let i = 0; i < 300; i++) roundTrip(50 + (i % 5) * 20, 20, 0);
    assert.equal(rw.contended(t + 100), false);
    assert.ok(rw.stats.decisions >= 2, `decisions ${rw.stats.decisions}`);
    assert.equal(rw.share, 0);
    assert.equal(rw.stats.awakeWaitedMs, 0);
    // A loaded machine: some turns are preempted for a slice (1.5 ms) while awake.
    let n = 0;
    for (; n < 2000 && !rw.contended(t); n++) roundTrip(20, 20, n % 8 === 0 ? 1500 : 0);
    assert.equal(rw.contended(t), true, `share ${rw.share}`);
    assert.ok(n < 50, `${n} round trips to see it`);
    assert.ok(rw.share > RUN_WAIT_CONTENDED);
    // The machine frees again: round trips 1 ms apart with no waits while awake. Windows open on
    // every turn while contended (not every SAMPLE_MS), so it clears within ~100 of them.
    const roundTripEvery = (gapMs: number) => {
      f.advance(0.08);
      t += gapMs;
      rw.contended(t);
      t += 0.02;
      rw.asleep(t);
    };
    let k = 0;
    for (; k < 5000 && rw.contended(t); k++) roundTripEvery(1);
    assert.equal(rw.contended(t), false);
    assert.ok(k <= 200, `${k} round trips to clear`);
    // Clear, the same round trips open a window only every SAMPLE_MS (10 ms): a tenth as many.
    const windows = rw.stats.windows;
    for (let i = 0; i < 1000; i++) roundTripEvery(1);
    assert.ok(rw.stats.windows - windows <= 101, `${rw.stats.windows - windows} windows`);
    // Sleeps close windows: a wait while asleep (between asleep() and the next turn) is outside.
    const before = rw.stats.awakeWaitedMs;
    rw.asleep(t);
    f.advance(50);
    t += 100;
    rw.contended(t);
    assert.equal(rw.stats.awakeWaitedMs, before);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: readings that go backwards or exceed the window are dropped, garbage ends it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const file = join(dir, 'schedstat');
    writeFileSync(file, '5000000 5000000 3\n');
    const rw = new RunWait(file);
    assert.equal(rw.contended(0), false);
    writeFileSync(file, '1000 1000 1\n');
    assert.equal(rw.contended(50), false);
    assert.equal(rw.stats.dropped, 1, 'backwards');
    writeFileSync(file, '1000 900001000 2\n');
    assert.equal(rw.contended(100), false);
    assert.equal(rw.stats.dropped, 2, '900 ms of wait in a 50 ms window');
    // From the last reading on, windows count again.
    writeFileSync(file, '2001000 940001000 9\n');
    assert.equal(rw.contended(150), true);
    for (const garbage of ['', 'x y z\n', '\u0000\u0000', '9'.repeat(300), '-5 -6 -7\n']) {
      writeFileSync(file, garbage);
      const fresh = new RunWait(file);
      assert.equal(fresh.contended(0), false, JSON.stringify(garbage));
      fresh.asleep(5);
      assert.equal(fresh.contended(100), false, JSON.stringify(garbage));
      fresh.close();
    }
    writeFileSync(file, 'garbage\n');
    assert.equal(rw.contended(200), false, 'unreadable now: closed, never contended');
    rw.asleep(201);
    writeFileSync(file, '9000000000 9000000000 9\n');
    assert.equal(rw.contended(300), false, 'stays closed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: an unreadable or malformed source is never contended', () => {
  // A loaded machine's run queue (a missing loadavg reads as oversubscribed): a poll for an
  // expected frame, or a sleep for one, is still not contended without this thread's schedstat.
  const missing = new RunWait('/nonexistent/ferry/schedstat', new RunQueue('/nonexistent/ferry/loadavg', 2));
  for (let t = 0; t < 50; t += 2) {
    assert.equal(missing.contended(1e6 + t), false);
    assert.equal(missing.contended(1e6 + t + 1, 'poll'), false);
    assert.equal(missing.contended(1e6 + t + 1, 'sleep'), false);
  }
  assert.equal(missing.polling.stats.decisions, 0);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const file = join(dir, 'schedstat');
    writeFileSync(file, 'not numbers\n');
    const bad = new RunWait(file);
    assert.equal(bad.contended(1e6), false);
    bad.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait on this thread reads real counters', { skip: process.platform !== 'linux' }, () => {
  const rw = new RunWait();
  rw.contended(performance.now());
  // Keep this thread runnable for a while so a window covers more than 2 ms.
  const until = performance.now() + 30;
  while (performance.now() < until) {
    // spin
  }
  rw.contended(performance.now());
  assert.ok(rw.share >= 0 && rw.share <= 1, `share ${rw.share}`);
  rw.close();
});

test('parseSchedstat reads the run count as a third field when asked, NaN when it is not there', () => {
  const out = new Float64Array(3);
  const ok = enc('107781 1827037 42\n');
  assert.equal(parseSchedstat(ok, ok.length, out), true);
  assert.deepEqual([...out], [107781, 1827037, 42]);
  for (const partial of ['5 6\n', '5 6 ', '5 6 x\n']) {
    const b = enc(partial);
    assert.equal(parseSchedstat(b, b.length, out), true, JSON.stringify(partial));
    assert.deepEqual([out[0], out[1]], [5, 6]);
    assert.ok(Number.isNaN(out[2]), `${JSON.stringify(partial)}: no run count`);
  }
});

test('RunWait: a poll for an expected frame is vetoed only when its waits while polling and the machine both say contended', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const f = fakeSchedstat(dir);
    const loadavg = join(dir, 'loadavg');
    const runnable = (n: number) => writeFileSync(loadavg, `0.50 0.50 0.50 ${n}/150 777\n`);
    // A quiet 2-vCPU machine read as oversubscribed: both ends of a ping-pong polling, plus a helper
    // thread of theirs, ferryd or the bench's parent (session 6's quiet run: 3.34 on average).
    runnable(4);
    const rw = new RunWait(f.file, new RunQueue(loadavg, 2));
    let t = 0;
    // Half of each awake window (between sleeps) waiting for a CPU: the share says contended.
    rw.contended(t);
    for (let i = 0; i < 3; i++) {
      f.advance(5.5, 5.5);
      t += 11;
      rw.contended(t);
    }
    assert.equal(rw.contended(t), true, `share ${rw.share}`);
    // The caller polls for its reply; while polling it waits for a CPU 2% of the time (its own
    // helper threads): polls go on, whatever the run queue and the sleeping share say.
    let vetoed = 0;
    for (let i = 0; i < 50; i++) {
      if (rw.contended(t, 'poll')) vetoed++;
      f.advance(0.02, 0.98);
      t += 1;
    }
    assert.equal(vetoed, 0);
    assert.ok(rw.polling.stats.decisions >= 20, `${rw.polling.stats.decisions} decisions`);
    assert.ok(rw.polling.share < 0.05, `polling share ${rw.polling.share}`);
    // Another task takes the CPU half of the time while it polls, on a machine with more runnable
    // tasks than CPUs: vetoed within a few windows.
    let k = 0;
    for (; k < 50 && !rw.contended(t, 'poll'); k++) {
      f.advance(0.5, 0.5);
      t += 1;
    }
    assert.ok(k >= 1 && k <= 12, `${k} windows`);
    // Polls stay vetoed for the pause; the windows meanwhile (the thread sleeps for its frames, and
    // its wake-ups land beside the peer) do not count as polling.
    const decisions = rw.polling.stats.decisions;
    for (let i = 0; i < 10; i++) {
      f.advance(0.3, 0.7);
      t += 1;
      assert.equal(rw.contended(t, 'poll'), true, `${i} ms into the pause`);
    }
    assert.equal(rw.polling.stats.decisions, decisions);
    // The machine empties (1-2 runnable: the round trip alone): polls go through, although the last
    // waits while polling read contended.
    runnable(2);
    let m = 0;
    for (; m < 50 && rw.contended(t, 'poll'); m++) {
      f.advance(0.3, 0.7);
      t += 1;
    }
    assert.ok(m >= 1 && m <= 12, `${m} readings of the machine`);
    rw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: with a core of its own (no waits while awake) a poll is never vetoed, whatever the machine runs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const f = fakeSchedstat(dir);
    const loadavg = join(dir, 'loadavg');
    writeFileSync(loadavg, '9.00 9.00 9.00 12/300 777\n');
    const rw = new RunWait(f.file, new RunQueue(loadavg, 2));
    let t = 0;
    rw.contended(t);
    // Waits while polling (a probe caught a busy moment), but the awake share is ~0 (real-time
    // priority, an isolated CPU: 0.000-0.008 in msgs7's runs).
    for (let i = 0; i < 5; i++) {
      f.advance(0, 11);
      t += 11;
      rw.contended(t);
    }
    assert.ok(rw.share < RUN_WAIT_FREE, `share ${rw.share}`);
    rw.polling.add(2, 1, t);
    assert.equal(rw.polling.contended(t), true);
    assert.equal(rw.contended(t, 'poll'), false);
    rw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: a caller that sleeps for its frames keeps the machine read, and is contended while it is oversubscribed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const f = fakeSchedstat(dir);
    const loadavg = join(dir, 'loadavg');
    const runnable = (n: number) => writeFileSync(loadavg, `0.50 0.50 0.50 ${n}/150 777\n`);
    runnable(2);
    const rw = new RunWait(f.file, new RunQueue(loadavg, 2));
    // An idle 2-vCPU machine, round trips 0.25 ms apart whose budget sleeps, no waits while awake:
    // the share decides as without an expectation (not contended), and the run queue is read along
    // the way (at most once per ms).
    let t = 0;
    let contended = 0;
    for (let i = 0; i < 200; i++) {
      t += 0.25;
      if (rw.contended(t, 'sleep')) contended++;
    }
    assert.ok(rw.runQueue.stats.samples >= 40, `${rw.runQueue.stats.samples} readings`);
    assert.ok(
      contended <= 60,
      `${contended} contended turns (0.25 ms apart) while the average left its start`,
    );
    assert.equal(rw.contended(t, 'sleep'), false);
    // An exploration: its first poll is let through at once.
    t += 0.25;
    assert.equal(rw.contended(t, 'poll'), false, `mean ${rw.runQueue.mean}`);
    // The machine fills up; this thread waits a little while awake (5%: the share reads clear): a
    // sleeping caller is contended (the notifier does not poll on its own after each send).
    runnable(7);
    let k = 0;
    for (; k < 100 && !rw.contended(t, 'sleep'); k++) {
      f.advance(0.05, 0.95);
      t += 1;
    }
    assert.ok(k > 0 && k <= 12, `${k} readings`);
    assert.equal(rw.contended(t, 'none'), false, `share ${rw.share}: clear without an expectation`);
    rw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
