// FifoProducer.writableView + commit: the in-place write a kernel read into the fifo relies on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fifoFootprint, initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import { FIFO_HEAD_OFFSET, FIFO_TAIL_OFFSET } from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';

const OFFSET = 128;

function makeFifo(size: number) {
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  const ctl = new Uint32Array(buf, OFFSET, 48);
  return { buf, ctl, p: new FifoProducer(buf, OFFSET, size), c: new FifoConsumer(buf, OFFSET, size) };
}

const bytes = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

test('writableView offers the free space up to the ring end; commit publishes what was written', () => {
  const { ctl, p, c } = makeFifo(64);
  const v = p.writableView();
  assert.equal(v.length, 64);
  v.set(bytes(10));
  assert.equal(c.readable(), 0, 'nothing visible before commit');
  assert.equal(p.commit(10), 10);
  assert.equal(ctl[FIFO_TAIL_OFFSET / 4], 10);
  assert.equal(c.readable(), 10);
  const out = new Uint8Array(10);
  assert.equal(c.dequeue(out), 10);
  assert.deepEqual(out, bytes(10));

  // Tail at 10, head at 10: the view stops at the ring's end, then restarts at 0.
  assert.equal(p.enqueue(bytes(50)), 50);
  assert.equal(c.drop(50), 50);
  const end = p.writableView();
  assert.equal(end.length, 4, 'from 60 to the end of the ring');
  end.set(bytes(4, 100));
  assert.equal(p.commit(4), 4);
  const start = p.writableView();
  assert.equal(start.length, 60, 'wrapped: from 0 up to the head');
  start.set(bytes(60, 104));
  assert.equal(p.commit(60), 60);
  assert.equal(p.writableView().length, 0, 'full: an empty view');
  const all = new Uint8Array(64);
  assert.equal(c.dequeue(all), 64);
  assert.deepEqual(all, bytes(64, 100));
});

test('writableView honours maxBytes and never offers a fractional, negative or NaN length', () => {
  const { p } = makeFifo(64);
  assert.equal(p.writableView(16).length, 16);
  assert.equal(p.writableView(2.5).length, 2);
  assert.equal(p.writableView(0).length, 0);
  assert.equal(p.writableView(-3).length, 0);
  assert.equal(p.writableView(Number.NaN).length, 0);
  assert.equal(p.commit(1), -1, 'the empty view lent nothing');
});

test('commit refuses counts the view did not offer, stale views, and after fin or reset', () => {
  const { ctl, p } = makeFifo(64);
  p.writableView(8);
  assert.equal(p.commit(9), -1, 'more than offered');
  assert.equal(p.commit(8), -1, 'a refused commit used the view up');
  for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
    p.writableView(8);
    assert.equal(p.commit(bad), -1, `commit(${bad})`);
  }
  p.writableView(8);
  assert.equal(p.commit(0), 0);
  assert.equal(p.commit(1), -1, 'one commit per view');
  assert.equal(p.commit(0), 0, 'committing nothing needs no view');

  p.writableView();
  assert.equal(p.enqueue(bytes(4)), 4);
  assert.equal(p.commit(4), -1, 'an enqueue invalidated the view');
  p.writableView();
  assert.equal(p.commit(4), 4);
  p.writableView();
  p.commit(2);
  assert.equal(p.commit(2), -1, 'a commit invalidated the view');
  assert.equal(ctl[FIFO_TAIL_OFFSET / 4], 10);

  p.writableView();
  p.fin();
  assert.equal(p.commit(1), -1, 'after fin');
  assert.equal(p.writableView().length, 0, 'no view after fin');
  assert.equal(ctl[FIFO_TAIL_OFFSET / 4], 10, 'tail unmoved by refused commits');

  const r = makeFifo(64);
  r.p.writableView();
  r.p.reset();
  assert.equal(r.p.commit(1), -1, 'after reset');
});

test('a hostile head: the view never covers bytes the consumer may still read, or fails the fifo', () => {
  const { ctl, p } = makeFifo(64);
  assert.equal(p.enqueue(bytes(40)), 40);
  ctl[FIFO_HEAD_OFFSET / 4] = 41; // past the tail
  assert.equal(p.writableView().length, 0);
  assert.equal(p.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
  assert.equal(p.commit(0), -1);

  const b = makeFifo(64);
  assert.equal(b.p.enqueue(bytes(40)), 40);
  b.ctl[FIFO_HEAD_OFFSET / 4] = 20;
  assert.equal(b.p.writableView().length, 24, 'head moved legally: 24 B free to the end');
  b.ctl[FIFO_HEAD_OFFSET / 4] = 10; // backwards
  assert.equal(b.p.writableView().length, 0);
  assert.equal(b.p.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
});

test('views and commits against a consumer (honest or scribbling its head) keep the stream intact', {
  timeout: 30_000,
}, () => {
  const SIZE = 256;
  const seen = { bytes: 0, corrupt: 0, wraps: 0 };
  const op = fc.oneof(
    fc.record({ op: fc.constant('fill' as const), max: fc.integer({ min: 0, max: 300 }), n: fc.nat(300) }),
    fc.record({ op: fc.constant('enqueue' as const), n: fc.nat(300) }),
    fc.record({ op: fc.constant('read' as const), n: fc.nat(300) }),
    fc.record({ op: fc.constant('head' as const), v: fc.integer({ min: 0, max: 0xffff_ffff }) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
      const { ctl, p, c } = makeFifo(SIZE);
      let sent = 0;
      let got = 0;
      let hostile = false;
      const out = new Uint8Array(300);
      for (const o of ops) {
        if (o.op === 'fill') {
          const free = p.freeSpace();
          const v = p.writableView(o.max);
          assert.ok(v.length <= Math.min(o.max, SIZE), `view of ${v.length}`);
          if (!hostile) assert.ok(v.length <= free, `view of ${v.length} with ${free} free`);
          if (v.byteOffset + v.length === v.buffer.byteLength) seen.wraps++;
          const n = Math.min(o.n, v.length);
          v.set(bytes(n, sent));
          const r = p.commit(n);
          if (r >= 0) {
            assert.equal(r, n);
            sent += n;
          } else assert.ok(p.error !== null, 'commit of what the view offered fails only on a failed fifo');
        } else if (o.op === 'enqueue') {
          const n = p.enqueue(bytes(o.n, sent));
          if (n > 0) sent += n;
        } else if (o.op === 'read') {
          const n = c.dequeue(out.subarray(0, o.n));
          if (n > 0 && !hostile) {
            for (let i = 0; i < n; i++) assert.equal(out[i], (got + i) & 0xff, 'stream intact');
            got += n;
          }
        } else {
          ctl[FIFO_HEAD_OFFSET / 4] = o.v;
          hostile = true;
        }
        assert.ok(p.freeSpace() <= SIZE);
      }
      if (!hostile) {
        assert.equal(c.readable(), sent - got, 'every committed byte is readable');
        seen.bytes += sent;
      }
      if (p.error) seen.corrupt++;
    }),
    { numRuns: 300 },
  );
  assert.ok(seen.bytes > 0 && seen.corrupt > 0 && seen.wraps > 0, JSON.stringify(seen));
});
