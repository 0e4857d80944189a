/**
 * A shared segment for one pair of apps (VPP's cut-through segment per app-worker pair): their
 * two event queues, and the fifo pairs of the sessions between them.
 *
 * Allocation state stays in ferryd's private memory; the apps only learn offsets through control
 * messages, so nothing an app scribbles into the segment can mislead ferryd's allocator.
 *
 * ferryd views only what it reads and writes of a cut-through segment: the segment header, the
 * two event queues and each fifo's header, through windows of a few KiB (Segment#window). The
 * rings are the apps' business; a 64 MiB view of all of it cost ferryd a full GC per new pair of
 * apps (V8 counts a view's length as external memory). Sessions ferryd carries itself (TCP, UDP)
 * use the whole view (`segment.buffer`).
 */
import {
  eventQueueFootprint,
  FIFO_HEADER_BYTES,
  fifoFootprint,
  initEventQueue,
  initFifoHeader,
  Segment,
  type SegmentWindow,
} from '@ferry/sdk/internal';

export interface FifoPairAlloc {
  slot: number;
  /** Fifo written by side A and read by side B, and the reverse. */
  a2bOffset: number;
  b2aOffset: number;
  a2bSize: number;
  b2aSize: number;
}

export class PairSegment {
  readonly id: number;
  readonly segment: Segment;
  /** The two apps, by id; side A is the one listed first. */
  readonly appA: number;
  readonly appB: number;
  readonly queueCapacity: number;
  /** Event queue A drains (B posts) and the one B drains (A posts). */
  readonly queueToA: number;
  readonly queueToB: number;
  #slots: (FifoPairAlloc | null)[];
  #freeSlots: number[] = [];
  #live = 0;
  #fifoBytes = 0;
  /** Apps that still map it: cleared as each acknowledges segment-del or dies. */
  readonly mappedBy = new Set<number>();

  constructor(id: number, appA: number, appB: number, sizeBytes: number, queueCapacity: number) {
    this.id = id;
    this.appA = appA;
    this.appB = appB;
    this.queueCapacity = queueCapacity;
    this.segment = Segment.create(`ferry-pair-${id}`, sizeBytes);
    const qBytes = eventQueueFootprint(queueCapacity);
    this.queueToA = this.#allocOrThrow(qBytes);
    this.queueToB = this.#allocOrThrow(qBytes);
    for (const q of [this.queueToA, this.queueToB]) {
      const w = this.segment.window(q, qBytes);
      initEventQueue(w.buffer, q - w.base, queueCapacity);
    }
    this.#slots = new Array<FifoPairAlloc | null>(queueCapacity).fill(null);
    for (let i = queueCapacity - 1; i >= 0; i--) this.#freeSlots.push(i);
    this.mappedBy.add(appA).add(appB);
  }

  get liveSessions(): number {
    return this.#live;
  }

  /** Bytes of the fifos (headers and rings) placed in it now. */
  get fifoBytes(): number {
    return this.#fifoBytes;
  }

  get maxSlot(): number {
    return this.queueCapacity - 1;
  }

  /** Carves a fifo pair; null when the segment has no slot or no room left. */
  allocPair(a2bSize: number, b2aSize: number): FifoPairAlloc | null {
    const slot = this.#freeSlots.pop();
    if (slot === undefined) return null;
    const a2bOffset = this.segment.alloc(fifoFootprint(a2bSize));
    if (a2bOffset < 0) {
      this.#freeSlots.push(slot);
      return null;
    }
    const b2aOffset = this.segment.alloc(fifoFootprint(b2aSize));
    if (b2aOffset < 0) {
      this.segment.free(a2bOffset);
      this.#freeSlots.push(slot);
      return null;
    }
    let w = this.fifoHeader(a2bOffset);
    initFifoHeader(w.buffer, a2bOffset - w.base, a2bSize);
    w = this.fifoHeader(b2aOffset);
    initFifoHeader(w.buffer, b2aOffset - w.base, b2aSize);
    const pair = { slot, a2bOffset, b2aOffset, a2bSize, b2aSize };
    this.#slots[slot] = pair;
    this.#live++;
    this.#fifoBytes += fifoFootprint(a2bSize) + fifoFootprint(b2aSize);
    return pair;
  }

  /** Returns a pair's memory; only once both apps have let go of the session. */
  freePair(slot: number): void {
    const pair = this.#slots[slot];
    if (!pair) return;
    this.segment.free(pair.a2bOffset);
    this.segment.free(pair.b2aOffset);
    this.#slots[slot] = null;
    this.#freeSlots.push(slot);
    this.#live--;
    this.#fifoBytes -= fifoFootprint(pair.a2bSize) + fifoFootprint(pair.b2aSize);
  }

  /** A view holding the header of the fifo at `offset` (at `offset - base` in its buffer). */
  fifoHeader(offset: number): SegmentWindow {
    return this.segment.window(offset, FIFO_HEADER_BYTES);
  }

  /** A view holding the header of the event queue at `offset`. */
  queueHeader(offset: number): SegmentWindow {
    return this.segment.window(offset, eventQueueFootprint(this.queueCapacity));
  }

  pairAt(slot: number): FifoPairAlloc | null {
    return this.#slots[slot] ?? null;
  }

  sideOf(appId: number): 'a' | 'b' {
    return appId === this.appA ? 'a' : 'b';
  }

  release(): void {
    this.segment.release();
  }

  #allocOrThrow(bytes: number): number {
    const off = this.segment.alloc(bytes);
    if (off < 0) throw new RangeError('segment too small for its event queues');
    return off;
  }
}
