// A topic reader racing a publisher on another thread: whatever it loses to laps, what it receives
// plus what it counts as dropped is exactly what was published, and what it receives is in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { TopicRingReader, TopicSegment } from './topic-ring.js';

const decode = (src: Buffer, r: { start: number; end: number }) => src.readUInt32LE(r.start);

// A batch above 1: records decoded before one check of the tail, as subscribers read.
for (const [ringBytes, readBudget, batch] of [
  [4096, 3, 1],
  [4096, 1000, 1],
  [64 * 1024, 50, 1],
  [4096, 1000, 32],
  [64 * 1024, 1000, 32],
] as const) {
  test(`a reader (${readBudget} per read, batches of ${batch}) racing a publisher over a ${ringBytes}-byte ring counts every message`, async () => {
    const count = 200_000;
    const seg = TopicSegment.create('race', 1, ringBytes);
    try {
      seg.openSlot(0);
      const r = new TopicRingReader(seg, 0, 'start', seg.slotEpoch(0));
      const worker = new Worker(new URL('./topic-ring-writer-child.js', import.meta.url), {
        workerData: { fd: seg.fd, count },
      });
      const exited = new Promise<void>((resolve, reject) => {
        worker.once('exit', () => resolve());
        worker.once('error', reject);
      });
      let done = false;
      void exited.then(() => {
        done = true;
      });
      let got = 0;
      let last = -1;
      let ordered = true;
      const deliver = (v: unknown) => {
        const i = v as number;
        if (i <= last) ordered = false;
        last = i;
        got++;
      };
      // Bounded: the worker writes a fixed count; the reader takes what it can meanwhile.
      const deadline = performance.now() + 60_000;
      while (!done && performance.now() < deadline) {
        r.read(readBudget, decode, deliver, batch);
        await new Promise((resolve) => setImmediate(resolve));
      }
      await exited;
      while (r.read(1000, decode, deliver, batch) > 0);
      assert.ok(ordered, 'records arrive in publishing order');
      assert.equal(last, count - 1, 'the last record is read');
      assert.equal(got + r.dropped, count, `received ${got} + dropped ${r.dropped}`);
    } finally {
      seg.release();
    }
  });
}
