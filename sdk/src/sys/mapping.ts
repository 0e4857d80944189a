// Mapping: a MAP_SHARED mmap of an fd, exposed as ArrayBuffers that can never outlive the pages.
//
// Ownership. Reading an unmapped address crashes the process, and JS cannot be stopped from keeping
// a typed array over a mapping after the owner is done with it. So:
//  - release() does not munmap. It replaces the range in place (MAP_FIXED, one atomic mmap) with a
//    private anonymous zero mapping. The shared pages are dropped at once (the memfd can be freed
//    when the last other holder lets go), and any stale typed array now reads zeros; writes
//    through it land in private pages no one else sees.
//  - A FinalizationRegistry watches the Mapping and every ArrayBuffer made over its range by
//    koffi.view (the whole range, `buffer`, or a part of it, `view()`). Once JS can reach none of
//    them, the range is munmapped. Until then the range stays reserved, so no later mmap can be
//    placed at the same address behind a stale view.
//  - A Mapping that is dropped without release() is unmapped the same way, shared pages included.
// Views are made on demand: V8 counts each ArrayBuffer's length as external memory and runs a full
// GC when that grows by tens of MiB, so a process that needs a few headers of a 64 MiB segment
// (ferryd) views those pages only, not the whole range.
// The Mapping never owns the fd: the caller may close it right after map().
// Do not transfer a buffer to a worker (postMessage transfer list): its address range is owned
// here, and the finalizer would unmap it under the worker.

import { ferryError } from '../errors.js';
import {
  MAP_ANONYMOUS,
  MAP_FAILED,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_READ,
  PROT_WRITE,
  SC_PAGESIZE,
} from './constants.js';
import { lastErrno, libc, viewMemory } from './libc.js';
import { EINTR, sysError } from './sys-error.js';
import { validateFd, validateRange } from './validate.js';

const PAGE_SIZE = Number(libc.sysconf(SC_PAGESIZE));

interface Range {
  readonly address: bigint;
  readonly size: number;
  /** The Mapping and the views over the range that JS may still reach. */
  holders: number;
}

const unmapper = new FinalizationRegistry<Range>((range) => {
  if (--range.holders > 0) return;
  // Nothing can be reported from a finalizer; munmap of a range we reserved only fails on a bug.
  libc.munmap(range.address, range.size);
  mappingStats.unmapped++;
});

/**
 * Counts for tests and diagnostics: map() calls, release() calls, ranges munmapped after GC, and
 * ArrayBuffers made over mappings with the bytes they cover (what V8 counts as external memory).
 */
export const mappingStats = { mapped: 0, released: 0, unmapped: 0, views: 0, viewBytes: 0 };

export class Mapping {
  readonly size: number;
  readonly address: bigint;
  /** The view of the whole range, made at the first `buffer`. */
  #buffer: ArrayBuffer | null = null;
  #released = false;
  readonly #range: Range;

  private constructor(range: Range) {
    this.address = range.address;
    this.size = range.size;
    this.#range = range;
  }

  /** Maps size bytes of fd at offset (a multiple of the page size), MAP_SHARED. */
  static map(fd: number, size: number, opts?: { offset?: number; readOnly?: boolean }): Mapping {
    validateFd(fd);
    validateRange(size, 'size', 1, Number.MAX_SAFE_INTEGER);
    const offset = opts?.offset ?? 0;
    validateRange(offset, 'offset', 0, Number.MAX_SAFE_INTEGER);
    if (offset % PAGE_SIZE !== 0) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `offset must be a multiple of the page size (${PAGE_SIZE})`);
    }
    const prot = opts?.readOnly ? PROT_READ : PROT_READ | PROT_WRITE;
    const address = mmapRetry(null, size, prot, MAP_SHARED, fd, offset);
    const m = new Mapping({ address, size, holders: 1 });
    unmapper.register(m, m.#range);
    mappingStats.mapped++;
    return m;
  }

  /** All the mapped bytes (one view, made on first use). Throws ERR_FERRY_MAPPING_RELEASED after release(). */
  get buffer(): ArrayBuffer {
    if (this.#released) throw ferryError('ERR_FERRY_MAPPING_RELEASED');
    this.#buffer ??= this.#view(0, this.size);
    return this.#buffer;
  }

  /**
   * A view of `length` bytes at `offset` of the range (a new ArrayBuffer each call: callers keep
   * what they reuse). Throws ERR_OUT_OF_RANGE outside the range, ERR_FERRY_MAPPING_RELEASED after
   * release().
   */
  view(offset: number, length: number): ArrayBuffer {
    if (this.#released) throw ferryError('ERR_FERRY_MAPPING_RELEASED');
    validateRange(offset, 'offset', 0, this.size - 1);
    validateRange(length, 'length', 1, this.size - offset);
    if (offset === 0 && length === this.size) return this.buffer;
    return this.#view(offset, length);
  }

  get released(): boolean {
    return this.#released;
  }

  /** Drops the shared pages now (the range reads zeros from here on); idempotent. */
  release(): void {
    if (this.#released) return;
    mmapRetry(
      this.address,
      this.size,
      PROT_READ | PROT_WRITE,
      // MAP_NORESERVE: stale views that write must not charge the segment size to commit accounting.
      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
      -1,
      0,
    );
    this.#buffer = null;
    this.#released = true;
    mappingStats.released++;
  }

  #view(offset: number, length: number): ArrayBuffer {
    const buf = viewMemory(this.address + BigInt(offset), length);
    this.#range.holders++;
    unmapper.register(buf, this.#range);
    mappingStats.views++;
    mappingStats.viewBytes += length;
    return buf;
  }
}

function mmapRetry(
  addr: bigint | null,
  size: number,
  prot: number,
  flags: number,
  fd: number,
  offset: number,
): bigint {
  for (let i = 0; i < 1000; i++) {
    const p = libc.mmap(addr, size, prot, flags, fd, offset) as bigint;
    if (p !== MAP_FAILED) return p;
    const errno = lastErrno();
    if (errno !== EINTR) throw sysError('mmap', errno);
  }
  throw sysError('mmap', EINTR);
}
