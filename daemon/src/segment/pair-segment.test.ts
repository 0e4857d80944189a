// Tests for pair-segment.ts: ferryd views only the headers of a pair segment (windows), and what it
// writes through them is what the apps, which map all of it, read.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  dup,
  EventQueueConsumer,
  EventQueueProducer,
  FifoConsumer,
  FifoProducer,
  POOL_FREE,
  POOL_REVOKED,
  POOL_TAKEN,
  poolLend,
  poolState,
  poolSwap,
  Segment,
} from '@ferry/sdk/internal';
import { PairSegment } from './pair-segment.js';

const MIB = 1 << 20;

test('ferryd views headers only; the apps see the queues and fifos it placed', () => {
  const seg = new PairSegment(7, 1, 2, 64 * MIB, 1024);
  const app = Segment.attach(dup(seg.segment.fd), 64 * MIB);
  try {
    const pairs = [];
    for (let i = 0; i < 30; i++) {
      const p = seg.allocPair(MIB, MIB);
      assert.ok(p, `pair ${i} placed`);
      pairs.push(p);
    }
    // One window per fifo header (a page or two each) and the queues: far below the 64 MiB.
    assert.ok(seg.segment.viewedBytes < 2 * MIB, `ferryd views ${seg.segment.viewedBytes} bytes`);
    // The app maps it all and finds valid, empty fifos where ferryd said.
    for (const p of pairs) {
      const tx = new FifoProducer(app.buffer, p.a2bOffset, p.a2bSize);
      const rx = new FifoConsumer(app.buffer, p.a2bOffset, p.a2bSize);
      assert.equal(tx.enqueue(new Uint8Array([p.slot, 1, 2])), 3);
      const out = new Uint8Array(3);
      assert.equal(rx.dequeue(out), 3);
      assert.deepEqual([...out], [p.slot, 1, 2]);
    }
    // The event queues ferryd initialised through its windows carry events between the apps.
    const toB = new EventQueueProducer(app.buffer, seg.queueToB, seg.queueCapacity);
    const atB = new EventQueueConsumer(app.buffer, seg.queueToB, seg.queueCapacity, seg.maxSlot);
    toB.push(5);
    const got: number[] = [];
    atB.drain((slot) => got.push(slot), 16);
    assert.deepEqual(got, [5]);
    // Pool words: ferryd lends and revokes through a window, the app's swap sees the same word.
    const first = pairs[0];
    assert.ok(first);
    const w = seg.fifoHeader(first.a2bOffset);
    assert.equal(poolLend(w.buffer, first.a2bOffset - w.base), true);
    assert.equal(poolState(app.buffer, first.a2bOffset), POOL_FREE);
    assert.equal(poolSwap(app.buffer, first.a2bOffset, POOL_TAKEN), POOL_FREE);
    assert.equal(poolSwap(w.buffer, first.a2bOffset - w.base, POOL_REVOKED), POOL_TAKEN);
    // A pair freed and placed again reuses its header's window.
    const viewed = seg.segment.viewedBytes;
    seg.freePair(first.slot);
    assert.ok(seg.allocPair(MIB, MIB));
    assert.equal(seg.segment.viewedBytes, viewed);
  } finally {
    app.release();
    seg.release();
  }
});

test('windows: bounds are checked, and after release nothing is viewed', () => {
  const seg = new PairSegment(8, 1, 2, 4 * MIB, 64);
  try {
    assert.throws(() => seg.segment.window(4 * MIB - 64, 128), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => seg.segment.window(-64, 64), { code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => seg.segment.window(0, 0), { code: 'ERR_OUT_OF_RANGE' });
    const w = seg.segment.window(4 * MIB - 64, 64);
    assert.equal(w.base % 4096, 0);
    assert.equal(w.base + w.buffer.byteLength, 4 * MIB);
    // Once something used the whole view (sessions ferryd carries itself), windows are that view.
    const whole = seg.segment.buffer;
    assert.equal(seg.segment.window(12345 * 64, 64).buffer, whole);
    assert.equal(seg.segment.viewedBytes, 4 * MIB);
  } finally {
    seg.release();
  }
  assert.throws(() => seg.segment.window(0, 64), { code: 'ERR_FERRY_MAPPING_RELEASED' });
});

test('small fifos packed densely: ferryd views the whole segment once instead of thousands of windows', () => {
  const seg = new PairSegment(9, 1, 2, 4 * MIB, 1024);
  const app = Segment.attach(dup(seg.segment.fd), 4 * MIB);
  try {
    const pairs = [];
    for (let i = 0; i < 300; i++) {
      const p = seg.allocPair(4096, 4096);
      assert.ok(p);
      pairs.push(p);
    }
    // Windows would have covered more than an eighth of it: one view of all of it instead.
    assert.equal(seg.segment.viewedBytes, 4 * MIB);
    assert.equal(seg.fifoHeader(pairs[0]?.a2bOffset ?? 0).buffer, seg.segment.buffer);
    for (const p of [pairs[0], pairs[299]]) {
      assert.ok(p);
      const tx = new FifoProducer(app.buffer, p.b2aOffset, p.b2aSize);
      const rx = new FifoConsumer(app.buffer, p.b2aOffset, p.b2aSize);
      assert.equal(tx.enqueue(new Uint8Array([9])), 1);
      const out = new Uint8Array(1);
      assert.equal(rx.dequeue(out), 1);
      assert.equal(out[0], 9);
    }
  } finally {
    app.release();
    seg.release();
  }
});
