import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PollBudget } from './poll-budget.js';

/** Runs `n` expectations; `took(poll)` says how long the frame took (ms) for that choice. */
function run(b: PollBudget, n: number, took: (poll: boolean) => number): { polled: number } {
  let now = 1000;
  let polled = 0;
  for (let i = 0; i < n; i++) {
    const poll = b.start(now);
    if (poll) polled++;
    now += took(poll);
    b.end(now);
    now += 1;
  }
  return { polled };
}

test('polls when polling brings frames sooner than sleeping, exploring sleep ever more rarely', () => {
  const b = new PollBudget(0.2);
  const { polled } = run(b, 1600, (poll) => (poll ? 0.01 : 0.08));
  // All but the first sleep (to measure it) and the explorations: bursts of 4, 16, 32, ... 1024 apart.
  assert.ok(polled >= 1570 && polled < 1600, `polled ${polled}`);
  assert.ok(b.averages.pollMs < b.averages.sleepMs);
  const later = run(b, 10_000, (poll) => (poll ? 0.01 : 0.08));
  assert.ok(later.polled >= 9950, `then polled ${later.polled} of 10000 (explorations 4 in 1024)`);
});

test('sleeps when polling makes frames later (an oversubscribed machine), exploring polling rarely', () => {
  const b = new PollBudget(0.2);
  const { polled } = run(b, 1600, (poll) => (poll ? 0.3 : 0.07));
  // The first expectation polls (unmeasured), then only the explorations do.
  assert.ok(polled >= 2 && polled <= 30, `polled ${polled}`);
  // Fewer than 1% of expectations pay for exploring: they stay out of the p99.
  const later = run(b, 10_000, (poll) => (poll ? 0.3 : 0.07));
  assert.ok(later.polled <= 45, `then polled ${later.polled} of 10000`);
});

test('follows a machine that changes', () => {
  const b = new PollBudget(0.2);
  run(b, 800, (poll) => (poll ? 0.3 : 0.07));
  const { polled } = run(b, 800, (poll) => (poll ? 0.01 : 0.08));
  // The first exploration that wins brings them back to one in 16, each weighing half: polling
  // is back within a few of them (after at most one wait of 1024).
  assert.ok(polled > 800 - 1024 / 2 - 100, `polled ${polled} of 800 after the machine freed up`);
});

test('an idle peer (capped samples, equal either way) is not polled for', () => {
  const b = new PollBudget(0.2);
  const { polled } = run(b, 320, () => 50);
  assert.ok(polled <= 20, `polled ${polled} of 320`);
});

test('end() without start() and twice in a row is ignored', () => {
  const b = new PollBudget(0.2);
  b.end(5);
  assert.ok(Number.isNaN(b.averages.pollMs) && Number.isNaN(b.averages.sleepMs));
  assert.equal(b.start(10), true);
  b.end(10.05);
  b.end(99);
  assert.ok(Math.abs(b.averages.pollMs - 0.05) < 1e-9);
});

test('with keys (request ids), explorations fall on the first keys of each interval on both ends', () => {
  const a = new PollBudget(0.2);
  const b = new PollBudget(0.2);
  let now = 1000;
  const explored: number[][] = [[], []];
  for (let id = 1; id <= 200; id++) {
    for (const [k, budget] of [a, b].entries()) {
      const poll = budget.start(now, id);
      // Sleeping is the usual choice here: a poll after the first two is an exploration.
      if (poll && id > 2) explored[k]?.push(id);
      now += poll ? 0.3 : 0.07;
      budget.end(now);
    }
  }
  assert.deepEqual(explored[0], explored[1]);
  for (const id of explored[0] ?? []) assert.ok(id % 16 < 4, `explored at ${id}`);
  assert.ok((explored[0]?.length ?? 0) >= 2);
});

test('a peer slower than the window (a slow handler) is not polled for: polling bought nothing', () => {
  const b = new PollBudget(0.2);
  // Polling or not, the reply takes 0.3 ms (sleeping adds nothing measurable here).
  const { polled } = run(b, 1600, () => 0.3);
  assert.ok(polled <= 30, `polled ${polled} of 1600`);
});
