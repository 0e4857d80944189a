// shm/: shared-memory primitives (segments, fifos, event queues, wake policy); no sessions, no daemon.

export {
  EVENT_QUEUE_RESCAN,
  EventQueueConsumer,
  EventQueueProducer,
  type EventQueueRescan,
  eventQueueFootprint,
  initEventQueue,
} from './event-queue.js';
export {
  type FifoMemory,
  fifoFootprint,
  fifoMemory,
  initFifo,
  initFifoHeader,
  rearmFifo,
  rearmFifoAt,
} from './fifo.js';
export { FifoConsumer } from './fifo-consumer.js';
export { FIFO_HEADER_BYTES, FIFO_MAX_BYTES, FIFO_MIN_BYTES } from './fifo-layout.js';
export {
  POOL_FREE,
  POOL_NONE,
  POOL_REVOKED,
  POOL_TAKEN,
  poolEnd,
  poolEndAt,
  poolLend,
  poolLock,
  poolLockAt,
  poolRetake,
  poolRetakeAt,
  poolReuseWord,
  poolState,
  poolStateAt,
  poolSwap,
  poolSwapAt,
  poolWords,
  REUSE_CLIENT_DONE,
  REUSE_GEN_SHIFT,
  REUSE_LOCKED,
  REUSE_SERVER_DONE,
  reuseGen,
  reuseIdle,
} from './fifo-pool.js';
export { FifoProducer } from './fifo-producer.js';
export {
  alignUp,
  CACHE_LINE,
  isPowerOfTwo,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAX_BYTES,
  SEGMENT_MIN_BYTES,
} from './layout.js';
export {
  type DoorbellLike,
  NOTIFIER_DEFAULT_ADAPTIVE_IDLE_US,
  NOTIFIER_DEFAULT_SPIN_US,
  NOTIFY_MODE,
  Notifier,
  type NotifierOptions,
  type NotifyMode,
} from './notifier.js';
export { SEGMENT_REQUIRED_SEALS, Segment, type SegmentWindow } from './segment.js';
export { SegmentAllocator } from './segment-allocator.js';
export { checkSegmentHeader, initSegmentHeader, type SegmentHeader } from './segment-header.js';
