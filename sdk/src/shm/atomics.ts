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
