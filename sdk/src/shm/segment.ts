// A shared-memory segment: a sealed memfd, its mapping, its header, and (creator only) an allocator.

import { ferryError } from '../errors.js';
import { addSeals, close, fstatSize, ftruncate, getSeals, Mapping, memfdCreate, SEAL } from '../sys/index.js';
import {
  CACHE_LINE,
  isAligned,
  SEGMENT_HEADER_BYTES,
  SEGMENT_MAX_BYTES,
  SEGMENT_MIN_BYTES,
} from './layout.js';
import { SegmentAllocator } from './segment-allocator.js';
import { checkSegmentHeader, initSegmentHeader } from './segment-header.js';

/** Seals every segment carries: no peer can shrink it (SIGBUS for the others) or grow it. */
export const SEGMENT_REQUIRED_SEALS = SEAL.SHRINK | SEAL.GROW | SEAL.SEAL;

let nextSegmentId = 1;

/**
 * One mapped segment. The creator (ferryd) allocates fifos and queues in it; an attacher (an app)
 * only maps and validates it. Views built over `buffer` must be dropped before release().
 */
export class Segment {
  readonly fd: number;
  readonly size: number;
  readonly id: number;
  #mapping: Mapping | null;
  readonly #allocator: SegmentAllocator | null;
  #fdOpen = true;

  private constructor(
    fd: number,
    size: number,
    id: number,
    mapping: Mapping,
    allocator: SegmentAllocator | null,
  ) {
    this.fd = fd;
    this.size = size;
    this.id = id;
    this.#mapping = mapping;
    this.#allocator = allocator;
  }

  /** Creates, sizes, maps, initialises and seals a new segment (sizeBytes: multiple of 64, < 4 GiB). */
  static create(name: string, sizeBytes: number, opts?: { id?: number }): Segment {
    const id = opts?.id ?? nextSegmentId++;
    const fd = memfdCreate(name, { allowSealing: true });
    let mapping: Mapping | null = null;
    try {
      ftruncate(fd, sizeBytes);
      mapping = Mapping.map(fd, sizeBytes);
      initSegmentHeader(mapping.buffer, sizeBytes, id);
      addSeals(fd, SEGMENT_REQUIRED_SEALS);
      return new Segment(fd, sizeBytes, id, mapping, new SegmentAllocator(SEGMENT_HEADER_BYTES, sizeBytes));
    } catch (err) {
      mapping?.release();
      close(fd);
      throw err;
    }
  }

  /**
   * Maps a segment received from the control plane after checking its seals, its size and its
   * header. On success the Segment owns `fd`; on failure the caller still does.
   */
  static attach(fd: number, expectedSizeBytes: number): Segment {
    const seals = getSeals(fd);
    if ((seals & SEGMENT_REQUIRED_SEALS) !== SEGMENT_REQUIRED_SEALS) {
      throw ferryError('ERR_FERRY_SHM_NOT_SEALED', `seals 0x${seals.toString(16)}`);
    }
    const actual = fstatSize(fd);
    if (actual !== expectedSizeBytes) {
      throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `file is ${actual} bytes, expected ${expectedSizeBytes}`);
    }
    if (
      !isAligned(expectedSizeBytes, CACHE_LINE) ||
      expectedSizeBytes < SEGMENT_MIN_BYTES ||
      expectedSizeBytes > SEGMENT_MAX_BYTES
    ) {
      throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `size ${expectedSizeBytes} is not a valid segment size`);
    }
    const mapping = Mapping.map(fd, expectedSizeBytes);
    try {
      const header = checkSegmentHeader(mapping.buffer, expectedSizeBytes);
      return new Segment(fd, expectedSizeBytes, header.id, mapping, null);
    } catch (err) {
      mapping.release();
      throw err;
    }
  }

  /** The mapped bytes; throws ERR_FERRY_MAPPING_RELEASED after release(). */
  get buffer(): ArrayBuffer {
    if (this.#mapping === null) throw ferryError('ERR_FERRY_MAPPING_RELEASED');
    return this.#mapping.buffer;
  }

  get released(): boolean {
    return this.#mapping === null;
  }

  /** True for the creator, which alone may alloc/free. */
  get isCreator(): boolean {
    return this.#allocator !== null;
  }

  get usedBytes(): number {
    return this.#allocator?.usedBytes ?? 0;
  }

  get freeBytes(): number {
    return this.#allocator?.freeBytes ?? 0;
  }

  /** Offset of `bytes` bytes aligned to `align`, or -1 when full. Creator only. */
  alloc(bytes: number, align?: number): number {
    return this.#creatorAllocator().alloc(bytes, align);
  }

  free(offset: number): void {
    this.#creatorAllocator().free(offset);
  }

  /** Releases the mapping and closes the fd; idempotent. */
  release(): void {
    this.#mapping?.release();
    this.#mapping = null;
    if (this.#fdOpen) {
      this.#fdOpen = false;
      close(this.fd);
    }
  }

  #creatorAllocator(): SegmentAllocator {
    if (this.#allocator === null) {
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', 'only the creator of a segment allocates in it');
    }
    return this.#allocator;
  }
}
