import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CpuContention,
  parseLoadavgRunnable,
  parsePressureSomeTotal,
  type TextFile,
} from './cpu-contention.js';

const PSI = (total: number) =>
  `some avg10=1.00 avg60=0.50 avg300=0.10 total=${total}\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n`;

test('parsers: golden procfs text', () => {
  assert.equal(parsePressureSomeTotal(PSI(8563913508)), 8563913508);
  assert.equal(parseLoadavgRunnable('6.25 4.19 3.35 3/345 1151\n'), 3);
});

test('parsers: hostile or foreign text gives null, never a number made up', () => {
  for (const t of [
    '',
    'full avg10=0.00 total=5\n',
    'some avg10=1.00 total=\n',
    'some avg10=1.00 total=-5\n',
    'some avg10=1.00 total=12x\n',
    `some total=${'9'.repeat(30)}\n`,
    '\u0000\u0001garbage',
  ]) {
    assert.equal(parsePressureSomeTotal(t), null, JSON.stringify(t));
  }
  for (const t of ['', '1 2 3\n', '1 2 3 x/5 7\n', 'a b c 1/2\n'])
    assert.equal(parseLoadavgRunnable(t), null, t);
});

/** Files whose text the test sets; paths not in the map do not exist. */
function fakeFs(texts: Map<string, string | null>) {
  const closed: string[] = [];
  const open = (path: string): TextFile => {
    if (!texts.has(path)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return { text: () => texts.get(path) ?? null, close: () => closed.push(path) };
  };
  return { open, closed };
}

test('PSI: contended when tasks waited for a CPU more than 10% of the interval; sampled every 50 ms', () => {
  const texts = new Map<string, string | null>([['/proc/pressure/cpu', PSI(1_000_000)]]);
  const fs = fakeFs(texts);
  let now = 1000;
  const c = new CpuContention({ now: () => now, open: fs.open, cpus: 2 });
  assert.equal(c.kind, 'psi');
  assert.equal(c.contended(), false, 'first sample: no interval yet');
  // 100 ms later, 50 ms of stall: 50%.
  now += 100;
  texts.set('/proc/pressure/cpu', PSI(1_050_000));
  assert.equal(c.contended(), true);
  // Within 50 ms the answer is reused, whatever the file says.
  now += 10;
  texts.set('/proc/pressure/cpu', PSI(1_050_000));
  assert.equal(c.contended(), true);
  // 100 ms after the last sample, 5 ms of stall: 5%.
  now += 90;
  texts.set('/proc/pressure/cpu', PSI(1_055_000));
  assert.equal(c.contended(), false);
});

test('no PSI: falls back to runnable tasks against CPUs', () => {
  const texts = new Map<string, string | null>([['/proc/loadavg', '0.5 0.5 0.5 2/300 99\n']]);
  const fs = fakeFs(texts);
  let now = 1000;
  const c = new CpuContention({ now: () => now, open: fs.open, cpus: 2 });
  assert.equal(c.kind, 'loadavg');
  assert.equal(c.contended(), false, '2 runnable on 2 CPUs');
  now += 60;
  texts.set('/proc/loadavg', '4.1 3.0 2.0 5/300 99\n');
  assert.equal(c.contended(), true, '5 runnable on 2 CPUs');
});

test('a source that turns to garbage is dropped; nothing readable means never contended', () => {
  const texts = new Map<string, string | null>([['/proc/pressure/cpu', PSI(10)]]);
  const fs = fakeFs(texts);
  let now = 1000;
  const c = new CpuContention({ now: () => now, open: fs.open, cpus: 2 });
  assert.equal(c.contended(), false);
  now += 100;
  texts.set('/proc/pressure/cpu', 'some nonsense\n');
  assert.equal(c.contended(), false);
  assert.equal(c.kind, 'none');
  assert.deepEqual(fs.closed, ['/proc/pressure/cpu']);
  now += 100;
  assert.equal(c.contended(), false);

  const none = new CpuContention({ now: () => now, open: fakeFs(new Map()).open, cpus: 2 });
  assert.equal(none.kind, 'none');
  assert.equal(none.contended(), false);
  // Unreadable at open (read error): skipped the same way.
  const unreadable = new CpuContention({
    now: () => now,
    open: fakeFs(new Map([['/proc/pressure/cpu', null]])).open,
    cpus: 2,
  });
  assert.equal(unreadable.kind, 'none');
});

test('this machine: the real sampler answers without throwing', () => {
  const c = new CpuContention();
  assert.ok(['psi', 'loadavg', 'none'].includes(c.kind));
  assert.equal(typeof c.contended(), 'boolean');
  c.close();
});
