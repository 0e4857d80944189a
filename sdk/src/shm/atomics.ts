// The only place shm touches shared indices and flags: ordered loads and stores with named intent.
//
// JavaScript Atomics are sequentially consistent, stronger than the acquire/release each call site
// needs; the names say which pairing the site relies on. They work on Uint32Array views over plain
// ArrayBuffers (memory mapped through sys/) as well as SharedArrayBuffers, and V8 emits real atomic
// instructions (a locked xchg for stores on x86-64), so ordering holds across processes sharing
// the mapping, not only across threads.

/** Load-acquire: later reads of data the peer published cannot move before this load. */
export function loadAcquire(view: Uint32Array, index: number): number {
  return Atomics.load(view, index);
}

/** Store-release: earlier writes of data cannot move after this store. */
export function storeRelease(view: Uint32Array, index: number, value: number): void {
  Atomics.store(view, index, value);
}

/**
 * A plain store, no ordering of its own: for a word that readers read only after a load-acquire of
 * an index the writer store-releases after it (that pair orders it), where an Atomics.store, a
 * locked xchg on x86-64, would add a full fence per write.
 */
export function storeRelaxed(view: Uint32Array, index: number, value: number): void {
  view[index] = value;
}

/** Compare-and-swap; returns the value found (equal to `expected` on success). */
export function compareExchange(view: Uint32Array, index: number, expected: number, value: number): number {
  return Atomics.compareExchange(view, index, expected, value);
}

/**
 * x86 keeps loads in order with earlier loads and stores in order with earlier stores (TSO), and
 * V8 keeps the program's order of typed-array accesses and Atomics calls: there, the seqlocks below
 * need nothing beyond their Atomics loads and stores.
 */
const TSO = process.arch === 'x64' || process.arch === 'ia32';

/** A word no other thread or process touches: fence()'s read-modify-write orders, it shares nothing. */
const FENCE_WORD = new Int32Array(new SharedArrayBuffer(4));

/**
 * Orders the plain accesses on either side of it, where an acquire or a release alone does not,
 * for the seqlocks of the topic rings:
 * - a reader's plain reads of records, then its Atomics load of the tail that says whether they
 *   were overwritten meanwhile: on arm64 V8's Atomics.load is an LDAR, which orders only what
 *   comes after it, so an earlier plain read may be performed after it and see a newer record
 *   than the tail it checks against (a torn record delivered);
 * - a writer's store-release of the tail, then its plain stores of the next record over old ones:
 *   an STLR orders only what comes before it, so those stores may be seen before the tail that
 *   tells readers to stop trusting the old records.
 * A read-modify-write in between (LDAXR/STLXR, or LDADDAL with LSE) does: an acquire after an
 * STLR, and an LDAR after a release, are ordered after it (arm64's release and acquire are RCsc),
 * and its own acquire and release order the plain accesses beyond it. On x86 (TSO) it is skipped:
 * a locked instruction there would cost ~20 cycles per call for nothing. (Not testable on this
 * x86 machine; the reasoning is V8's arm64 mapping of Atomics.load/store/add to LDAR/STLR/RMW.)
 */
export function fence(): void {
  if (!TSO) Atomics.add(FENCE_WORD, 0, 0);
}
