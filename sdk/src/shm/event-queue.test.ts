import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  EVENT_QUEUE_RESCAN,
  EventQueueConsumer,
  EventQueueProducer,
  eventQueueFootprint,
  initEventQueue,
} from './event-queue.js';
import {
  EVENT_QUEUE_ENTRIES_OFFSET,
  EVENT_QUEUE_HEAD_OFFSET,
  EVENT_QUEUE_TAIL_OFFSET,
} from './event-queue-layout.js';

const OFFSET = 64;
const MAX_SLOT = 1000;

function makeQueue(capacity = 16) {
  const buf = new SharedArrayBuffer(OFFSET + eventQueueFootprint(capacity));
  initEventQueue(buf, OFFSET, capacity);
  const p = new EventQueueProducer(buf, OFFSET, capacity);
  const c = new EventQueueConsumer(buf, OFFSET, capacity, MAX_SLOT);
  return { buf, p, c, ctl: new Uint32Array(buf, OFFSET, 48) };
}

function drainAll(c: EventQueueConsumer, max?: number) {
  const got: number[] = [];
  const r = c.drain((v) => got.push(v), max);
  return { r, got };
}

test('entries come out in order, bounded by max', () => {
  const { p, c } = makeQueue();
  for (let i = 0; i < 10; i++) assert.equal(p.push(i * 3), true);
  assert.deepEqual(drainAll(c, 4), { r: 4, got: [0, 3, 6, 9] });
  assert.deepEqual(drainAll(c), { r: 6, got: [12, 15, 18, 21, 24, 27] });
  assert.deepEqual(drainAll(c), { r: 0, got: [] });
});

test('a full queue sets overflow; the consumer reports rescan once and nothing blocks', () => {
  const { p, c } = makeQueue(16);
  for (let i = 0; i < 16; i++) assert.equal(p.push(i), true);
  assert.equal(p.push(99), false, 'full: overflow flagged instead of blocking');
  assert.equal(p.push(100), false);
  assert.equal(c.armWake(), true, 'overflow counts as pending');
  assert.equal(drainAll(c).r, EVENT_QUEUE_RESCAN);
  assert.deepEqual(drainAll(c), { r: 0, got: [] }, 'queue emptied, overflow cleared');
  assert.equal(p.push(7), true);
  assert.deepEqual(drainAll(c), { r: 1, got: [7] });
});

test('wakeups are coalesced: one wakeNeeded per armWake', () => {
  const { p, c } = makeQueue();
  assert.equal(c.armWake(), false);
  p.push(1);
  assert.equal(p.wakeNeeded(), true);
  p.push(2);
  assert.equal(p.wakeNeeded(), false);
  assert.equal(c.armWake(), true, 'entries pending: do not sleep');
});

test('indices wrap past 2^32', () => {
  const { buf, ctl } = makeQueue(16);
  ctl[EVENT_QUEUE_HEAD_OFFSET / 4] = 0xffff_fff0;
  ctl[EVENT_QUEUE_TAIL_OFFSET / 4] = 0xffff_fff0;
  const p = new EventQueueProducer(buf, OFFSET, 16);
  const c = new EventQueueConsumer(buf, OFFSET, 16, MAX_SLOT);
  let next = 0;
  let expect = 0;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 5; i++) assert.equal(p.push(next++ % MAX_SLOT), true);
    c.drain((v) => assert.equal(v, expect++ % MAX_SLOT));
  }
  assert.equal(expect, 100);
  assert.ok((ctl[EVENT_QUEUE_TAIL_OFFSET / 4] as number) < 0x100);
});

test('hostile entries and indices fail the queue with ERR_FERRY_QUEUE_CORRUPT', () => {
  {
    const { buf, p, c } = makeQueue();
    p.push(1);
    p.push(2);
    new Uint32Array(buf, OFFSET + EVENT_QUEUE_ENTRIES_OFFSET, 16)[1] = MAX_SLOT + 1;
    assert.deepEqual(drainAll(c), { r: -1, got: [1] });
    assert.equal(c.error?.code, 'ERR_FERRY_QUEUE_CORRUPT');
    assert.equal(drainAll(c).r, -1);
    assert.equal(c.armWake(), true);
  }
  {
    const { p, c, ctl } = makeQueue();
    p.push(1);
    ctl[EVENT_QUEUE_TAIL_OFFSET / 4] = 5000;
    assert.equal(drainAll(c).r, -1);
    assert.equal(c.error?.code, 'ERR_FERRY_QUEUE_CORRUPT');
  }
  {
    const { p, ctl } = makeQueue(16);
    for (let i = 0; i < 16; i++) p.push(i);
    ctl[EVENT_QUEUE_HEAD_OFFSET / 4] = 0xffff_0000;
    assert.equal(p.push(1), false);
    assert.equal(p.error?.code, 'ERR_FERRY_QUEUE_CORRUPT');
  }
});

test('construction rejects bad layout', () => {
  const buf = new SharedArrayBuffer(OFFSET + eventQueueFootprint(16));
  initEventQueue(buf, OFFSET, 16);
  assert.throws(() => new EventQueueConsumer(buf, OFFSET, 32, 10), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
  assert.throws(() => new EventQueueProducer(buf, 0, 16), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
  assert.throws(() => new EventQueueProducer(buf, OFFSET, 24), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
});
