import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FerryError } from '../errors.js';
import { EVENT_QUEUE_TAIL_OFFSET } from '../shm/event-queue-layout.js';
import { eventQueueFootprint, initEventQueue, Segment } from '../shm/index.js';
import { Doorbell, dup } from '../sys/index.js';
import { AppSegment } from './app-segment.js';

test('a peer that corrupts the event queue fails the sessions in that segment once, and the queue is never armed again', () => {
  const size = 1024 * 1024;
  const creator = Segment.create('app-segment-test', size);
  const capacity = 64;
  const rxq = creator.alloc(eventQueueFootprint(capacity));
  const txq = creator.alloc(eventQueueFootprint(capacity));
  initEventQueue(creator.buffer, rxq, capacity);
  initEventQueue(creator.buffer, txq, capacity);
  const bell = Doorbell.create({ unref: true });
  const seg = new AppSegment(
    {
      t: 'segment-add',
      id: 0,
      segment: 1,
      size,
      rxQueueOffset: rxq,
      txQueueOffset: txq,
      queueCapacity: capacity,
      maxSlot: capacity - 1,
      fds: ['segment', 'doorbell'],
    },
    dup(creator.fd),
    dup(bell.ringFd),
  );
  const failures: FerryError[] = [];
  let events = 0;
  seg.add(3, { onSlotEvent: () => events++, onSegmentFailure: (e) => failures.push(e) });
  // The peer claims 10,000 entries in a 64-entry ring.
  new Uint32Array(creator.buffer, rxq + EVENT_QUEUE_TAIL_OFFSET, 1)[0] = 10_000;
  assert.equal(seg.poll(), 0);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]?.code, 'ERR_FERRY_QUEUE_CORRUPT');
  assert.equal(seg.failed, true);
  assert.equal(seg.armWake(), false, 'a failed queue does not keep the notifier busy');
  assert.equal(seg.poll(), 0);
  assert.equal(failures.length, 1, 'reported once');
  assert.equal(events, 0);
  seg.release();
  bell.close();
  creator.release();
});

/** Two ends of one segment's queues (client posts to server), the server's doorbell counting rings. */
function pair() {
  const size = 1024 * 1024;
  const capacity = 64;
  const creator = Segment.create('app-segment-test', size);
  const toServer = creator.alloc(eventQueueFootprint(capacity));
  const toClient = creator.alloc(eventQueueFootprint(capacity));
  initEventQueue(creator.buffer, toServer, capacity);
  initEventQueue(creator.buffer, toClient, capacity);
  const bell = Doorbell.create({ unref: true });
  const ends = { rings: 0 };
  bell.onRing(() => ends.rings++);
  const add = (rx: number, tx: number) => ({
    t: 'segment-add' as const,
    id: 0 as const,
    segment: 1,
    size,
    rxQueueOffset: rx,
    txQueueOffset: tx,
    queueCapacity: capacity,
    maxSlot: capacity - 1,
    fds: ['segment' as const, 'doorbell' as const],
  });
  const client = new AppSegment(add(toClient, toServer), dup(creator.fd), dup(bell.ringFd));
  const server = new AppSegment(add(toServer, toClient), dup(creator.fd), dup(bell.ringFd));
  const slots: number[] = [];
  for (const slot of [3, 4, 5])
    server.add(slot, { onSlotEvent: () => slots.push(slot), onSegmentFailure: () => {} });
  let clientReleased = false;
  return Object.assign(ends, {
    client,
    server,
    slots,
    releaseClient() {
      clientReleased = true;
      client.release();
    },
    close() {
      if (!clientReleased) client.release();
      server.release();
      bell.close();
      creator.release();
    },
  });
}

const settle = () => new Promise((r) => setTimeout(r, 50));

test('postSoon queues at once and rings a sleeping peer once, at the end of the turn', async () => {
  const p = pair();
  try {
    assert.equal(p.server.armWake(), false, 'nothing queued: the server sleeps');
    p.client.postSoon(3);
    p.client.postSoon(4);
    p.client.postSoon(5);
    assert.equal(p.client.postSoonPending, true, 'the ring waits for the end of the turn');
    await settle();
    assert.equal(p.client.postSoonPending, false);
    assert.equal(p.rings, 1, 'three events, one ring');
    // The diagnostics (Attachment.notifierStats) count them as post() does.
    assert.equal(p.client.posts, 3);
    assert.equal(p.client.rings, 1);
    assert.equal(p.server.poll(), 3);
    assert.deepEqual(p.slots, [3, 4, 5]);
  } finally {
    p.close();
  }
});

test('postSoon does not ring a peer that polls (it did not arm its wake-up)', async () => {
  const p = pair();
  try {
    p.client.postSoon(3);
    p.client.postSoon(4);
    await settle();
    assert.equal(p.rings, 0, 'a polling peer is not rung');
    assert.equal(p.client.posts, 2);
    assert.equal(p.client.rings, 0);
    assert.equal(p.server.poll(), 2);
    assert.deepEqual(p.slots, [3, 4]);
  } finally {
    p.close();
  }
});

test('a ring postSoon deferred is rung when the segment is released first', async () => {
  const p = pair();
  try {
    assert.equal(p.server.armWake(), false);
    p.client.postSoon(3);
    p.releaseClient();
    assert.equal(p.client.postSoonPending, false, 'rung on release');
    await settle();
    assert.equal(p.rings, 1);
    assert.equal(p.server.poll(), 1);
  } finally {
    p.close();
  }
});
