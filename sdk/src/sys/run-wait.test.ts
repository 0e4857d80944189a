import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseSchedstat, RUN_WAIT_CLEAR, RUN_WAIT_CONTENDED, RunWait } from './run-wait.js';

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

test('RunWait: contended above the threshold, clear again only below the lower one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const file = join(dir, 'schedstat');
    let ran = 1e9;
    let waited = 1e8;
    const put = () => writeFileSync(file, `${ran} ${waited} 10\n`);
    put();
    const rw = new RunWait(file);
    let t = 0;
    /** Advances the counters by `runMs` on CPU and `waitMs` waiting, then asks at a later time. */
    const step = (runMs: number, waitMs: number) => {
      ran += runMs * 1e6;
      waited += waitMs * 1e6;
      put();
      t += 25;
      return rw.contended(t);
    };
    assert.equal(step(10, 1), false);
    assert.equal(step(5, 5), true, `share 0.5 > ${RUN_WAIT_CONTENDED}`);
    assert.ok(Math.abs(rw.share - 0.5) < 1e-9);
    assert.equal(step(8, 2), true, `share 0.2 is not below ${RUN_WAIT_CLEAR}: still contended`);
    assert.equal(step(1, 0.5), true, 'under 2 ms runnable: the answer stands');
    assert.equal(step(18, 1), false, 'share ~0.07 clears it');
    // Asked again within the sampling period: the file is not read again.
    ran += 1e6;
    waited += 9e6;
    put();
    assert.equal(rw.contended(t + 1), false);
    rw.close();
    assert.equal(rw.contended(t + 100), false, 'closed: never contended');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RunWait: an unreadable or malformed source is never contended', () => {
  const missing = new RunWait('/nonexistent/ferry/schedstat');
  assert.equal(missing.contended(1e6), false);
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
  // Keep this thread runnable for a while so a sample covers more than 2 ms.
  const until = performance.now() + 30;
  while (performance.now() < until) {
    // spin
  }
  rw.contended(performance.now() + 1000);
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

test('RunWait: the wait that each wake-up costs is not contention beyond wakes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-runwait-'));
  try {
    const file = join(dir, 'schedstat');
    let ran = 1e9;
    let waited = 1e8;
    let runs = 1000;
    const put = () => writeFileSync(file, `${ran} ${waited} ${runs}\n`);
    put();
    const rw = new RunWait(file);
    let t = 0;
    const step = (runMs: number, waitMs: number, n: number) => {
      ran += runMs * 1e6;
      waited += waitMs * 1e6;
      runs += n;
      put();
      t += 25;
      return { plain: rw.contended(t), beyond: rw.contendedBeyondWakes(t) };
    };
    // A ping-pong that sleeps: 400 wake-ups waiting 20 us each, in 18 ms runnable (share 0.44).
    assert.deepEqual(step(10, 8, 400), { plain: true, beyond: false });
    assert.ok(rw.shareBeyondWakes === 0, `beyond wakes ${rw.shareBeyondWakes}`);
    // A poller preempted 4 times for 2 ms each: contended either way.
    assert.deepEqual(step(12, 8, 4), { plain: true, beyond: true });
    assert.ok(rw.shareBeyondWakes > 0.3);
    // Without a run count (an older kernel's format), no allowance: both say the same.
    writeFileSync(file, `${ran + 10e6} ${waited + 1e6}\n`);
    t += 25;
    assert.equal(rw.contended(t), false);
    assert.equal(rw.contendedBeyondWakes(t), false);
    rw.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
