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

/** Windows (see Segment#window) start on this boundary, so that nearby fields share one. */
const WINDOW_ALIGN = 4096;

/** Windows stop once they would cover more than 1/WINDOWS_MAX_SHARE of the segment (see window()). */
const WINDOWS_MAX_SHARE = 8;

/** A view of part of a segment: `buffer` starts at segment offset `base`. */
export interface SegmentWindow {
  readonly buffer: ArrayBuffer;
  readonly base: number;
}

/**
 * One mapped segment. The creator (ferryd) allocates fifos and queues in it; an attacher (an app)
 * only maps and validates it. Views built over `buffer` must be dropped before release().
 *
 * `buffer` views the whole segment; `window()` views only the pages around a field. A process that
 * needs only headers (ferryd, for the pair segments of cut-through sessions) uses windows alone: V8
 * counts every ArrayBuffer's length as external memory, and one 64 MiB view per segment made ferryd
 * run a full GC per new pair of apps.
 */
export class Segment {
  readonly fd: number;
  readonly size: number;
  readonly id: number;
  #mapping: Mapping | null;
  readonly #allocator: SegmentAllocator | null;
  #fdOpen = true;
  /** Windows made so far, by the index of their first WINDOW_ALIGN block. */
  readonly #windows = new Map<number, SegmentWindow>();
  /** Bytes the windows in #windows cover. */
  #windowBytes = 0;
  #whole: SegmentWindow | null = null;

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
      const seg = new Segment(
        fd,
        sizeBytes,
        id,
        mapping,
        new SegmentAllocator(SEGMENT_HEADER_BYTES, sizeBytes),
      );
      initSegmentHeader(seg.window(0, SEGMENT_HEADER_BYTES).buffer, sizeBytes, id);
      addSeals(fd, SEGMENT_REQUIRED_SEALS);
      return seg;
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
    return this.#wholeWindow().buffer;
  }

  #wholeWindow(): SegmentWindow {
    if (this.#mapping === null) throw ferryError('ERR_FERRY_MAPPING_RELEASED');
    if (this.#whole === null) {
      this.#whole = { buffer: this.#mapping.buffer, base: 0 };
      // Windows made before stay valid for whoever holds them; new lookups use the whole view.
      this.#windows.clear();
      this.#windowBytes = 0;
    }
    return this.#whole;
  }

  /**
   * A view that holds bytes [offset, offset + bytes) of the segment, at `offset - base` of its
   * buffer: the whole segment's once `buffer` was used, else a window of the blocks around the
   * range, kept for the next call (a window is never dropped before release(); once windows would
   * cover an eighth of the segment, the whole view is made and used instead). Throws
   * ERR_OUT_OF_RANGE outside the segment.
   */
  window(offset: number, bytes: number): SegmentWindow {
    if (this.#mapping === null) throw ferryError('ERR_FERRY_MAPPING_RELEASED');
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes <= 0) {
      throw ferryError('ERR_OUT_OF_RANGE', `window at ${offset} of ${bytes} bytes`);
    }
    const end = offset + bytes;
    if (end > this.size)
      throw ferryError('ERR_OUT_OF_RANGE', `window at ${offset} (+${bytes}) past ${this.size}`);
    if (this.#whole !== null) return this.#whole;
    const block = Math.floor(offset / WINDOW_ALIGN);
    const w = this.#windows.get(block);
    if (w !== undefined && end <= w.base + w.buffer.byteLength) return w;
    const base = block * WINDOW_ALIGN;
    const stop = Math.min(this.size, Math.ceil(end / WINDOW_ALIGN) * WINDOW_ALIGN);
    if (this.#windowBytes + (stop - base) > this.size / WINDOWS_MAX_SHARE) {
      // Small fifos packed densely: windows would cover much of the segment anyway, and one view
      // costs less than thousands of small ones.
      return this.#wholeWindow();
    }
    const made = { buffer: this.#mapping.view(base, stop - base), base };
    if (w !== undefined) this.#windowBytes -= w.buffer.byteLength;
    this.#windowBytes += stop - base;
    this.#windows.set(block, made);
    return made;
  }

  /** Bytes of the segment viewed by JS so far (all of it once `buffer` was used). */
  get viewedBytes(): number {
    return this.#whole !== null ? this.size : this.#windowBytes;
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
    this.#whole = null;
    this.#windows.clear();
    this.#windowBytes = 0;
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
