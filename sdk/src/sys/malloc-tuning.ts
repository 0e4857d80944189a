// Keeps glibc from giving the memory of large freed read Buffers back to the kernel at once.
//
// Why: a stream's receiver copies each read (up to 1 MiB, all a fifo holds, one push per wake) into
// a fresh Buffer; V8 frees those in batches when a scavenge finds them dead (about every 32 MiB of
// young ArrayBuffers here). With glibc's defaults the freed top of the heap over 2x the largest
// chunk freed so far is returned to the kernel, and the next reads fault every 4 KiB page in again,
// zeroed: on the receiver of `npm run bench`'s stream, 21 faults per MiB and about a quarter of its
// CPU (BENCHMARKS.md, "Stream 'data' and HTTP 64 KiB (data4)"). Raising M_TRIM_THRESHOLD above
// what is freed between two scavenges lets the next reads reuse that memory (5.5 faults per MiB).
// The cost: after a burst the process keeps up to TRIM_THRESHOLD_BYTES of freed heap instead of
// returning it (a receiver's RSS after 2 GiB: 97-129 MB against 94-96 without; BENCHMARKS.md).
//
// It is process-wide, so it is skipped when the process chose its own malloc settings
// (GLIBC_TUNABLES with glibc.malloc.*, the MALLOC_* tuning variables), when
// FERRY_MALLOC_TUNING=off, and where mallopt fails. Setting either threshold turns glibc's
// dynamic threshold off, so both are set, never below glibc's defaults (128 KiB each).

import { libc } from './libc.js';

/** mallopt parameters (malloc.h). */
const M_TRIM_THRESHOLD = -1;
const M_MMAP_THRESHOLD = -3;
/** Chunks up to this come from the heap (glibc's dynamic threshold would reach 1-2 MiB too). */
export const MMAP_THRESHOLD_BYTES = 4 * 1024 * 1024;
/** Freed heap top kept before trimming: above the ~32 MiB of reads V8 frees per scavenge. */
export const TRIM_THRESHOLD_BYTES = 64 * 1024 * 1024;

/** Reads at least this large are the pattern the tuning is for (glibc's default mmap threshold). */
export const LARGE_READ_BYTES = 128 * 1024;

export type MallocTuningState = 'untried' | 'applied' | 'skipped' | 'failed';

let state: MallocTuningState = 'untried';
let reason = '';

/** Why tuning would be skipped for this environment, or null when it may be applied. */
export function mallocTuningVeto(env: NodeJS.ProcessEnv): string | null {
  const opt = env['FERRY_MALLOC_TUNING'];
  if (opt !== undefined && /^(off|0|false|no)$/i.test(opt.trim())) return 'FERRY_MALLOC_TUNING=off';
  if (/glibc\.malloc\./.test(env['GLIBC_TUNABLES'] ?? '')) return 'GLIBC_TUNABLES sets malloc';
  for (const k of [
    'MALLOC_TRIM_THRESHOLD_',
    'MALLOC_MMAP_THRESHOLD_',
    'MALLOC_MMAP_MAX_',
    'MALLOC_TOP_PAD_',
    'MALLOC_ARENA_MAX',
    'MALLOC_ARENA_TEST',
  ]) {
    if (env[k] !== undefined) return `${k} is set`;
  }
  return null;
}

/**
 * Applies the thresholds once per process (later calls return at once). Called on the first large
 * read; never throws: on any failure reads work as before.
 */
export function tuneMallocForLargeReads(): MallocTuningState {
  if (state !== 'untried') return state;
  const veto = mallocTuningVeto(process.env);
  if (veto !== null) {
    state = 'skipped';
    reason = veto;
    return state;
  }
  try {
    // mallopt returns 1 on success, 0 on error.
    const ok =
      libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) === 1 &&
      libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) === 1;
    state = ok ? 'applied' : 'failed';
    reason = ok ? '' : 'mallopt refused';
  } catch (e) {
    state = 'failed';
    reason = (e as Error).message;
  }
  return state;
}

/** What tuneMallocForLargeReads() did, for diagnostics and tests. */
export function mallocTuning(): { state: MallocTuningState; reason: string } {
  return { state, reason };
}
