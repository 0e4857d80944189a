// A read-only look at an event queue's indices, for a supervisor (ferryd) that neither produces
// nor consumes on it but must notice a consumer that stopped draining. The values come from
// shared memory the peers write: they are hints for a policy, never trusted for memory access.
import {
  EVENT_QUEUE_HEAD_OFFSET,
  EVENT_QUEUE_OVERFLOW_OFFSET,
  EVENT_QUEUE_TAIL_OFFSET,
} from './event-queue-layout.js';

export interface EventQueueProbe {
  /** Entries consumed and produced so far (u32, wrapping). */
  head: number;
  tail: number;
  /** True while the producer found the ring full and the consumer has not rescanned yet. */
  overflow: boolean;
}

export function probeEventQueue(buf: ArrayBufferLike, offset: number): EventQueueProbe {
  const ctl = new Uint32Array(buf, offset, (EVENT_QUEUE_OVERFLOW_OFFSET + 4) / 4);
  return {
    head: Atomics.load(ctl, EVENT_QUEUE_HEAD_OFFSET / 4),
    tail: Atomics.load(ctl, EVENT_QUEUE_TAIL_OFFSET / 4),
    overflow: Atomics.load(ctl, EVENT_QUEUE_OVERFLOW_OFFSET / 4) === 1,
  };
}
