import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { test } from 'node:test';
import { type PerfWorkload, runPerf, slowestOf } from './perf-client.js';
import { startPerfServer } from './perf-server.js';
import { type Stack, stackFor } from './stack.js';

test('slowestOf gives the n slowest round trips, slowest first, each with its index and start', () => {
  const samples = [5, 90, 7, 300, 90, 1];
  const starts = [100, 200, 300, 400, 500, 600];
  assert.deepEqual(slowestOf(samples, starts, 3), [
    { index: 3, atUs: 400, us: 300 },
    { index: 1, atUs: 200, us: 90 },
    { index: 4, atUs: 500, us: 90 },
  ]);
  assert.equal(slowestOf(samples, starts, 100).length, samples.length);
  assert.deepEqual(slowestOf(samples, starts, 0), []);
  assert.deepEqual(slowestOf([], [], 5), []);
});

/** node:net, counting the bytes written on each connection and noting events in order. */
function countingNet(events: string[]): { stack: Stack; written: number[] } {
  const inner = stackFor('net');
  const written: number[] = [];
  const stack: Stack = {
    name: 'net',
    listen: (target, onConn) => inner.listen(target, onConn),
    connect: (target) => {
      const i = written.length;
      written.push(0);
      events.push(`connect ${i}`);
      const s: Duplex = inner.connect(target);
      const write = s.write.bind(s) as (chunk: Buffer) => boolean;
      (s as { write: (chunk: Buffer) => boolean }).write = (chunk: Buffer) => {
        written[i] = (written[i] ?? 0) + chunk.length;
        return write(chunk);
      };
      s.once('close', () => events.push(`close ${i}`));
      return s;
    },
  };
  return { stack, written };
}

for (const [workload, unit] of [
  ['rate', 64],
  ['throughput', 1],
] as [PerfWorkload, number][]) {
  test(`${workload}: the warm-up goes over a connection of its own, before the measured part and unreported`, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-perf-warm-'));
    const events: string[] = [];
    const { stack, written } = countingNet(events);
    const server = await startPerfServer(stack, `unix:${join(dir, 's.sock')}`);
    try {
      let progress = 0;
      const count = workload === 'rate' ? 1_000 : 1_000 * 64;
      const warmup = count * 3;
      const r = await runPerf(stack, {
        workload,
        target: server.uri,
        count,
        size: 64,
        concurrency: 1,
        timeoutMs: 30_000,
        warmup,
        onProgress: (n) => {
          progress += n;
        },
        onMeasureStart: () => events.push('measure'),
      });
      assert.equal(r.count, count);
      assert.equal(progress, count, 'only the measured units are reported');
      assert.deepEqual(r.warmup?.count, warmup);
      // 16-byte perf header, then the units.
      assert.deepEqual(written, [16 + warmup * unit, 16 + count * unit]);
      assert.ok(events.indexOf('measure') > events.indexOf('connect 0'));
      assert.ok(events.indexOf('measure') < events.indexOf('connect 1'));
      assert.equal(events.filter((e) => e === 'measure').length, 1);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
