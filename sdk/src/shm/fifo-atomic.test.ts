// FifoProducer.enqueueAtomic: the all-or-nothing write that datagram frames rely on.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fifoFootprint, initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import { FIFO_TAIL_OFFSET } from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';

const OFFSET = 128;

function makeFifo(size: number) {
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  return { buf, p: new FifoProducer(buf, OFFSET, size), c: new FifoConsumer(buf, OFFSET, size) };
}

const bytes = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);

test('enqueueAtomic writes every part or none, and publishes the tail once', () => {
  const { buf, p, c } = makeFifo(64);
  assert.equal(p.enqueueAtomic([bytes(10), bytes(30, 10)]), 40);
  assert.equal(c.readable(), 40);
  assert.equal(p.enqueueAtomic([bytes(10), bytes(20)]), 0, 'does not fit: nothing written');
  assert.equal(new Uint32Array(buf, OFFSET + FIFO_TAIL_OFFSET, 1)[0], 40, 'tail unmoved');
  assert.equal(p.enqueueAtomic([bytes(24)]), 24, 'exactly fills');
  assert.equal(p.enqueueAtomic([new Uint8Array(0)]), 0);
  assert.equal(p.enqueueAtomic([bytes(65)]), 0, 'larger than the fifo: never fits');
  const out = new Uint8Array(64);
  assert.equal(c.dequeue(out), 64);
  assert.deepEqual(out.subarray(0, 40), bytes(40));
});

test('enqueueAtomic wraps parts around the ring end', () => {
  const { p, c } = makeFifo(64);
  const sink = new Uint8Array(64);
  for (let round = 0; round < 50; round++) {
    const a = bytes(5 + (round % 7), round);
    const b = bytes(17 + (round % 11), round * 3);
    assert.equal(p.enqueueAtomic([a, b]), a.length + b.length);
    const got = sink.subarray(0, a.length + b.length);
    assert.equal(c.dequeue(got), got.length);
    assert.deepEqual(got.subarray(0, a.length), a);
    assert.deepEqual(got.subarray(a.length), b);
  }
});

test('enqueueAtomic refuses after fin', () => {
  const { p } = makeFifo(64);
  p.fin();
  assert.equal(p.enqueueAtomic([bytes(1)]), -1);
});
