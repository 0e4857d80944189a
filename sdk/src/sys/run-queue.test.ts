import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseRunnable, RUN_QUEUE_CLEAR, RUN_QUEUE_OVER, RunQueue } from './run-queue.js';

const enc = (s: string) => new TextEncoder().encode(s);

test('parseRunnable reads the runnable count before the slash and rejects malformed text', () => {
  const ok = enc('0.52 0.58 0.59 3/174 2299\n');
  assert.equal(parseRunnable(ok, ok.length), 3);
  const big = enc('14.75 6.34 2.39 125/1810 19030\n');
  assert.equal(parseRunnable(big, big.length), 125);
  for (const bad of [
    '',
    '\n',
    '1 2 3',
    '1 2 3 ',
    '1 2 3 /9 1\n',
    '1 2 3 4\n',
    '1 2 3 x/9 1\n',
    '1 2 3 1234567890/9\n',
  ]) {
    const b = enc(bad);
    assert.equal(parseRunnable(b, b.length), -1, JSON.stringify(bad));
  }
  // Only the bytes read count.
  const cut = enc('1 2 3 7/9 1\n');
  assert.equal(parseRunnable(cut, 7), -1);
  assert.equal(parseRunnable(cut, 8), 7);
});

/** A /proc/loadavg whose runnable count a test sets. */
function fakeLoadavg(dir: string) {
  const file = join(dir, 'loadavg');
  const set = (runnable: number) => writeFileSync(file, `1.00 1.00 1.00 ${runnable}/200 4242\n`);
  set(1);
  return { file, set };
}

test('RunQueue: oversubscribed until readings show no more runnable tasks than CPUs, again when they exceed them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runqueue-'));
  try {
    const f = fakeLoadavg(dir);
    const rq = new RunQueue(f.file, 2);
    let t = 0;
    /** One reading of `runnable`, `ms` after the last. */
    const at = (runnable: number, ms = 1) => {
      f.set(runnable);
      t += ms;
      return rq.oversubscribed(t);
    };
    // A few low readings do not clear it: the average starts two tasks above the CPUs.
    assert.equal(at(1), true);
    // A ping-pong alone on 2 CPUs (this thread, and the peer finishing its turn): clear within a few.
    let n = 1;
    while (n < 100 && at(n % 2 === 0 ? 2 : 1)) n++;
    assert.ok(n >= 5 && n <= 12, `${n} readings to clear`);
    assert.ok(rq.mean < 2 + RUN_QUEUE_CLEAR);
    // Both ends polling with a helper thread now and then (2, sometimes 3): stays clear.
    for (let i = 0; i < 200; i++) assert.equal(at(i % 5 === 0 ? 3 : 2), false, `reading ${i}`);
    // Asked again within a millisecond: no reading.
    const samples = rq.stats.samples;
    f.set(50);
    assert.equal(rq.oversubscribed(t + 0.5), false);
    assert.equal(rq.stats.samples, samples);
    // A third task running all along: oversubscribed within a few readings.
    let k = 0;
    while (k < 100 && !at(3)) k++;
    assert.ok(k >= 2 && k <= 20, `${k} readings to see a third task`);
    assert.ok(rq.mean > 2 + RUN_QUEUE_OVER);
    // A loaded machine, then a long pause: the average starts again from a task too many.
    for (let i = 0; i < 20; i++) at(12);
    for (let i = 0; i < 40; i++) at(2);
    assert.equal(at(2), false);
    assert.equal(at(1, 500), true, 'one reading after a pause does not clear');
    assert.equal(rq.stats.dropped, 0);
    rq.close();
    assert.equal(rq.oversubscribed(t + 100), true, 'closed: oversubscribed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunQueue: an unreadable or malformed source is always oversubscribed', () => {
  const missing = new RunQueue('/nonexistent/ferry/loadavg', 2);
  for (let t = 0; t < 50; t += 2) assert.equal(missing.oversubscribed(t), true);
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runqueue-'));
  try {
    const file = join(dir, 'loadavg');
    for (const garbage of ['', 'x y z\n', '\u0000\u0000', '9'.repeat(300), '1 2 3 -1/5 6\n']) {
      writeFileSync(file, garbage);
      const rq = new RunQueue(file, 2);
      for (let t = 0; t < 50; t += 2) assert.equal(rq.oversubscribed(t), true, JSON.stringify(garbage));
      assert.ok(rq.stats.dropped > 0);
      assert.equal(rq.stats.samples, 0);
      rq.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunQueue on this machine reads a count of at least this thread', {
  skip: process.platform !== 'linux',
}, () => {
  const rq = new RunQueue();
  rq.oversubscribed(performance.now());
  assert.equal(rq.stats.samples, 1);
  assert.ok(rq.stats.runnableSum >= 1, `runnable ${rq.stats.runnableSum}`);
  assert.ok(rq.cpus >= 1);
  rq.close();
});
