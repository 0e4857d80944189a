// First-fit allocator for a segment's bytes, private to the creating process (ferryd).
//
// It is never stored in shared memory: the other mapper of a segment is untrusted, and an
// allocator it could scribble on would let it make ferryd hand the same bytes out twice.

import { FerryError } from '../errors.js';
import { alignUp, CACHE_LINE, isPowerOfTwo } from './layout.js';

interface FreeBlock {
  offset: number;
  sizeBytes: number;
}

function argError(code: 'ERR_INVALID_ARG_VALUE' | 'ERR_OUT_OF_RANGE', message: string): FerryError {
  return new FerryError(code, message);
}

/** Hands out byte ranges of [start, end); free ranges are kept sorted and coalesced. */
export class SegmentAllocator {
  readonly #start: number;
  readonly #end: number;
  /** Sorted by offset; adjacent blocks are always merged. */
  readonly #free: FreeBlock[] = [];
  /** Offset handed out -> size in bytes. */
  readonly #used = new Map<number, number>();
  #usedBytes = 0;

  constructor(start: number, end: number) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw argError('ERR_OUT_OF_RANGE', `allocator range [${start}, ${end}) is invalid`);
    }
    this.#start = start;
    this.#end = end;
    if (end > start) this.#free.push({ offset: start, sizeBytes: end - start });
  }

  get usedBytes(): number {
    return this.#usedBytes;
  }

  get freeBytes(): number {
    return this.#end - this.#start - this.#usedBytes;
  }

  /** Returns the offset of `bytes` bytes aligned to `align`, or -1 when no free block fits. */
  alloc(bytes: number, align: number = CACHE_LINE): number {
    if (!Number.isSafeInteger(bytes) || bytes <= 0) {
      throw argError('ERR_OUT_OF_RANGE', `bytes must be a positive integer, got ${bytes}`);
    }
    if (!isPowerOfTwo(align)) {
      throw argError('ERR_INVALID_ARG_VALUE', `align must be a power of two, got ${align}`);
    }
    for (let i = 0; i < this.#free.length; i++) {
      const block = this.#free[i] as FreeBlock;
      const offset = alignUp(block.offset, align);
      const end = offset + bytes;
      const blockEnd = block.offset + block.sizeBytes;
      if (end > blockEnd) continue;
      const pieces: FreeBlock[] = [];
      if (offset > block.offset) pieces.push({ offset: block.offset, sizeBytes: offset - block.offset });
      if (blockEnd > end) pieces.push({ offset: end, sizeBytes: blockEnd - end });
      this.#free.splice(i, 1, ...pieces);
      this.#used.set(offset, bytes);
      this.#usedBytes += bytes;
      return offset;
    }
    return -1;
  }

  /** Returns a range from alloc() to the free list; throws on an offset not currently allocated. */
  free(offset: number): void {
    const sizeBytes = this.#used.get(offset);
    if (sizeBytes === undefined) {
      throw argError('ERR_INVALID_ARG_VALUE', `offset ${offset} is not allocated (double free?)`);
    }
    this.#used.delete(offset);
    this.#usedBytes -= sizeBytes;
    const i = this.#insertionIndex(offset);
    this.#free.splice(i, 0, { offset, sizeBytes });
    this.#mergeWithNext(i);
    if (i > 0) this.#mergeWithNext(i - 1);
  }

  /** Size of the block allocated at `offset`, or undefined. */
  sizeOf(offset: number): number | undefined {
    return this.#used.get(offset);
  }

  /** Number of free ranges (1 when fully coalesced and nothing is allocated). */
  get freeBlockCount(): number {
    return this.#free.length;
  }

  #insertionIndex(offset: number): number {
    let lo = 0;
    let hi = this.#free.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#free[mid] as FreeBlock).offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #mergeWithNext(i: number): void {
    const a = this.#free[i];
    const b = this.#free[i + 1];
    if (a && b && a.offset + a.sizeBytes === b.offset) {
      a.sizeBytes += b.sizeBytes;
      this.#free.splice(i + 1, 1);
    }
  }
}
