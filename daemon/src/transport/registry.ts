/** Transports by URI scheme: the session layer finds the one that serves a listen or connect here. */
import { ferryError } from '@ferry/sdk/internal';
import type { Transport } from './transport.js';

export class TransportRegistry {
  readonly #byScheme = new Map<string, Transport>();

  constructor(transports: Iterable<Transport> = []) {
    for (const t of transports) this.register(t);
  }

  /** Adds a transport; one per scheme (a scheme with modes registers one transport that picks). */
  register(t: Transport): void {
    if (this.#byScheme.has(t.scheme)) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `a transport for ${t.scheme}:// is registered already`);
    }
    this.#byScheme.set(t.scheme, t);
  }

  get(scheme: string): Transport | undefined {
    return this.#byScheme.get(scheme);
  }

  values(): IterableIterator<Transport> {
    return this.#byScheme.values();
  }
}
