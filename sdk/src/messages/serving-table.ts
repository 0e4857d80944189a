/**
 * The requests a channel is serving, by the peer's id: one in a field (a peer that waits for each
 * reply before its next request has one at a time), more in a Map. A Map alone cost a round trip
 * four hash operations and, emptied after every reply, a shrink of its table (a fresh allocation).
 * Ids are the peer's: any u32, looked up, never used as an index.
 */
export class ServingTable<T> {
  #oneId = 0;
  #one: T | null = null;
  #more: Map<number, T> | null = null;

  get size(): number {
    return (this.#one === null ? 0 : 1) + (this.#more === null ? 0 : this.#more.size);
  }

  get(id: number): T | undefined {
    if (this.#one !== null && this.#oneId === id) return this.#one;
    return this.#more === null ? undefined : this.#more.get(id);
  }

  /** Adds `v` for `id`, which must not be held (see get). */
  set(id: number, v: T): void {
    if (this.#one === null) {
      this.#oneId = id;
      this.#one = v;
      return;
    }
    this.#more ??= new Map();
    this.#more.set(id, v);
  }

  delete(id: number): void {
    if (this.#one !== null && this.#oneId === id) this.#one = null;
    else this.#more?.delete(id);
  }

  /** Every entry, in no particular order. */
  values(): T[] {
    const out: T[] = [];
    if (this.#one !== null) out.push(this.#one);
    if (this.#more !== null) for (const v of this.#more.values()) out.push(v);
    return out;
  }

  clear(): void {
    this.#one = null;
    this.#more = null;
  }
}
