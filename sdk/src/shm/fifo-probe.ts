// A read-only look at a fifo's header, for a supervisor (ferryd) that placed the fifo but neither
// produces nor consumes on it: it counts the bytes that went through and notices a fifo that stays
// full. Every value comes from memory the two ends (possibly hostile) write: `readFifoProbe` only
// loads words, and `checkFifoProbe` says whether they are consistent with the size the supervisor
// knows privately. Nothing read here may ever be used to index memory.
import {
  FIFO_CONS_FLAGS_OFFSET,
  FIFO_HEAD_OFFSET,
  FIFO_HEADER_BYTES,
  FIFO_MAGIC,
  FIFO_MAGIC_OFFSET,
  FIFO_PROD_FLAGS_OFFSET,
  FIFO_SIZE_OFFSET,
  FIFO_TAIL_OFFSET,
} from './fifo-layout.js';

export interface FifoProbe {
  magic: number;
  size: number;
  /** Bytes consumed and produced so far (free-running u32). */
  head: number;
  tail: number;
  consFlags: number;
  prodFlags: number;
}

/** A view of one fifo's header (three cache lines), made once per fifo by the supervisor. */
export function fifoHeaderView(buf: ArrayBufferLike, offset: number): Uint32Array {
  return new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4);
}

/** Loads the header's words into `into` (no allocation on the sampling path). */
export function readFifoProbe(view: Uint32Array, into: FifoProbe): FifoProbe {
  into.magic = Atomics.load(view, FIFO_MAGIC_OFFSET / 4);
  into.size = Atomics.load(view, FIFO_SIZE_OFFSET / 4);
  // Head before tail: the consumer never passes the producer, so a head read first is at most the
  // tail read after it, and `tail - head` is a real fill level when both ends are honest.
  into.head = Atomics.load(view, FIFO_HEAD_OFFSET / 4);
  into.tail = Atomics.load(view, FIFO_TAIL_OFFSET / 4);
  into.consFlags = Atomics.load(view, FIFO_CONS_FLAGS_OFFSET / 4);
  into.prodFlags = Atomics.load(view, FIFO_PROD_FLAGS_OFFSET / 4);
  return into;
}

export function emptyFifoProbe(): FifoProbe {
  return { magic: 0, size: 0, head: 0, tail: 0, consFlags: 0, prodFlags: 0 };
}

/**
 * Null when the probe is consistent with a fifo of `size` bytes whose indices were last seen at
 * `lastHead` / `lastTail`; else why not. Indices may only move forward, by less than 2^31 between
 * two looks (a supervisor that samples often enough never sees more), and the fill never exceeds
 * the size.
 */
export function checkFifoProbe(
  p: FifoProbe,
  size: number,
  lastHead: number,
  lastTail: number,
): string | null {
  if (p.magic !== FIFO_MAGIC) return 'bad magic';
  if (p.size !== size) return `size ${p.size}, expected ${size}`;
  if ((p.tail - p.head) >>> 0 > size) return `fill ${(p.tail - p.head) >>> 0} above size ${size}`;
  if ((p.tail - lastTail) >>> 0 >= 0x8000_0000) return 'tail moved backwards';
  if ((p.head - lastHead) >>> 0 >= 0x8000_0000) return 'head moved backwards';
  return null;
}
