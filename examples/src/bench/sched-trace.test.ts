import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  activity,
  describeIntervals,
  parseTrace,
  runSpans,
  sweepStale,
  threadStates,
} from './sched-trace.js';

// A made-up trace of 2 CPUs (times in seconds, as tracefs prints them): the client (100) spins on
// CPU 0 until a V8 helper of its own (102) preempts it; the server (200) sleeps on CPU 1, is woken,
// runs and sleeps again; a task whose name has a space and a dash in it runs in between.
const TEXT = `# tracer: nop
#
#           TASK-PID     CPU#  |||||  TIMESTAMP  FUNCTION
          <idle>-0       [001] d..2.    10.000000: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=kworker/1:1 next_pid=50 next_prio=120
            node-100     [000] d..2.    10.000010: sched_switch: prev_comm=bash prev_pid=7 prev_prio=120 prev_state=S ==> next_comm=node next_pid=100 next_prio=120
     kworker/1:1-50      [001] d..2.    10.000020: sched_switch: prev_comm=kworker/1:1 prev_pid=50 prev_prio=120 prev_state=I ==> next_comm=swapper/1 next_pid=0 next_prio=120
            node-100     [000] dNh3.    10.000100: sched_wakeup: comm=node pid=102 prio=120 target_cpu=000
            node-100     [000] d..2.    10.000110: sched_switch: prev_comm=node prev_pid=100 prev_prio=120 prev_state=R+ ==> next_comm=node next_pid=102 next_prio=120
            node-102     [000] d..2.    10.001110: sched_switch: prev_comm=node prev_pid=102 prev_prio=120 prev_state=S ==> next_comm=node next_pid=100 next_prio=120
          <idle>-0       [001] dNh3.    10.001200: sched_wakeup: comm=node pid=200 prio=120 target_cpu=001
          <idle>-0       [001] d..2.    10.001250: sched_switch: prev_comm=swapper/1 prev_pid=0 prev_prio=120 prev_state=R ==> next_comm=node next_pid=200 next_prio=120
            node-200     [001] d..2.    10.001300: sched_switch: prev_comm=node prev_pid=200 prev_prio=120 prev_state=S ==> next_comm=my task-x next_pid=300 next_prio=120
  my task-x-300          [001] d..2.    10.001400: sched_switch: prev_comm=my task-x prev_pid=300 prev_prio=120 prev_state=S ==> next_comm=swapper/1 next_pid=0 next_prio=120
            node-100     [000] d..2.    10.002000: sched_switch: prev_comm=node prev_pid=100 prev_prio=120 prev_state=S ==> next_comm=swapper/0 next_pid=0 next_prio=120
            node-100     [000] d..2.    10.002000: some_other_event: whatever
`;

test('parseTrace reads switches and wake-ups in microseconds, and skips what it does not know', () => {
  const t = parseTrace(TEXT);
  assert.equal(t.switches.length, 9);
  assert.equal(t.wakeups.length, 2);
  assert.equal(t.skipped, 1);
  assert.equal(t.lost, false);
  const preempt = t.switches[3];
  assert.deepEqual(preempt, {
    t: 10_000_110,
    cpu: 0,
    prevComm: 'node',
    prevPid: 100,
    prevState: 'R+',
    nextComm: 'node',
    nextPid: 102,
  });
  assert.equal(t.switches[6]?.nextComm, 'my task-x');
  assert.deepEqual(t.wakeups[1], { t: 10_001_200, pid: 200 });
  assert.equal(parseTrace('CPU:1 [LOST 12 EVENTS]\n').lost, true);
});

test('runSpans gives what ran on each CPU between two switches', () => {
  const spans = runSpans(parseTrace(TEXT));
  const helper = spans.find((s) => s.tid === 102);
  assert.deepEqual(helper, { tid: 102, comm: 'node', cpu: 0, from: 10_000_110, to: 10_001_110 });
  // The last switch of a CPU opens no span: its end is unknown.
  assert.equal(
    spans.some((s) => s.cpu === 0 && s.from === 10_002_000),
    false,
  );
});

test('threadStates: preempted means waiting until switched in; woken from sleep, waiting from the wake-up', () => {
  const t = parseTrace(TEXT);
  const client = threadStates(t, 100);
  assert.deepEqual(client.run, [
    { from: 10_000_010, to: 10_000_110 },
    { from: 10_001_110, to: 10_002_000 },
  ]);
  assert.deepEqual(client.wait, [{ from: 10_000_110, to: 10_001_110 }]);
  const server = threadStates(t, 200);
  assert.deepEqual(server.wait, [{ from: 10_001_200, to: 10_001_250 }]);
  assert.deepEqual(server.run, [{ from: 10_001_250, to: 10_001_300 }]);
});

test('describeIntervals splits an interval by state and names who else held the CPUs', () => {
  const t = parseTrace(TEXT);
  const [r] = describeIntervals(
    t,
    [{ atUs: 10_000_100, us: 1_300 }],
    { client: 100, server: 200 },
    (tid, comm) => (tid === 102 ? 'client thread' : comm),
  );
  assert.ok(r);
  assert.deepEqual(r.watched['client'], { run: 300, wait: 1000, sleep: 0 });
  assert.deepEqual(r.watched['server'], { run: 50, wait: 50, sleep: 1200 });
  // CPU 1 idled from 10.000020 to 10.001250, 1150 us of it inside the interval.
  assert.deepEqual(r.others, [
    { who: 'idle', us: 1150 },
    { who: 'client thread', us: 1000 },
    { who: 'my task-x', us: 100 },
  ]);
});

test('activity counts the runs and time of labelled threads inside a window only', () => {
  const t = parseTrace(TEXT);
  const a = activity(t, 10_000_500, 10_001_350, (tid) =>
    tid === 102 ? 'helper' : tid === 300 ? 'x' : undefined,
  );
  assert.deepEqual(a, { helper: { runs: 1, us: 610 }, x: { runs: 1, us: 50 } });
});

test('sweepStale removes instances of dead processes only', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sweep-'));
  try {
    // A pid that is certainly gone: a child that has exited and been reaped.
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    assert.ok(dead !== undefined && dead > 0);
    const names = [`ferry-bench-${dead}`, `ferry-bench-${process.pid}`, `ferry-bench-${process.ppid}`];
    for (const n of [...names, 'ferry-bench-x', 'other-1']) mkdirSync(join(dir, n));
    assert.deepEqual(sweepStale('ferry-bench-', dir), [`ferry-bench-${dead}`]);
    assert.equal(existsSync(join(dir, `ferry-bench-${dead}`)), false);
    for (const n of names.slice(1)) assert.equal(existsSync(join(dir, n)), true, n);
    assert.equal(existsSync(join(dir, 'ferry-bench-x')), true);
    assert.deepEqual(sweepStale('ferry-bench-', join(dir, 'missing')), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
