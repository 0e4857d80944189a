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
