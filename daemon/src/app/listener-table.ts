/** Cut-through listeners: endpoint -> listening app, per namespace. */
import { endpointKey, type SessionUri } from '@ferry/sdk/internal';
import { mayBeLocalHost } from './local-address.js';

export interface Listener {
  id: number;
  appId: number;
  namespace: string;
  uri: SessionUri;
  /** Sessions accepted through it, for `ferry show listeners`. */
  accepted: number;
}

export class ListenerTable {
  /** Whether a wildcard listener may answer a connect to this host (tests replace it). */
  readonly #isLocal: (host: string) => boolean;
  #byId = new Map<number, Listener>();
  #byKey = new Map<string, Listener>();
  /** Every namespace's listener on an endpoint: what a connect could reach if rules allow. */
  #byEndpoint = new Map<string, Set<Listener>>();
  #nextId = 1;

  constructor(isLocal: (host: string) => boolean = mayBeLocalHost) {
    this.#isLocal = isLocal;
  }

  get size(): number {
    return this.#byId.size;
  }

  values(): IterableIterator<Listener> {
    return this.#byId.values();
  }

  get(id: number): Listener | undefined {
    return this.#byId.get(id);
  }

  /** True when the exact endpoint is taken in that namespace. */
  has(namespace: string, uri: SessionUri): boolean {
    return this.#byKey.has(`${namespace}|${endpointKey(uri)}`);
  }

  /** Registers a listener; null if the endpoint is taken in that namespace. */
  add(appId: number, namespace: string, uri: SessionUri): Listener | null {
    const ep = endpointKey(uri);
    const key = `${namespace}|${ep}`;
    if (this.#byKey.has(key)) return null;
    const l: Listener = { id: this.#nextId++, appId, namespace, uri, accepted: 0 };
    this.#byId.set(l.id, l);
    this.#byKey.set(key, l);
    let set = this.#byEndpoint.get(ep);
    if (!set) {
      set = new Set();
      this.#byEndpoint.set(ep, set);
    }
    set.add(l);
    return l;
  }

  remove(id: number): Listener | undefined {
    const l = this.#byId.get(id);
    if (!l) return undefined;
    this.#byId.delete(id);
    const ep = endpointKey(l.uri);
    this.#byKey.delete(`${l.namespace}|${ep}`);
    const set = this.#byEndpoint.get(ep);
    set?.delete(l);
    if (set?.size === 0) this.#byEndpoint.delete(ep);
    return l;
  }

  /**
   * The listener a connect reaches: exact host first, then a wildcard on the same port, but only
   * for a host that may be this machine (a wildcard does not answer for another host's address).
   */
  lookup(namespace: string, uri: SessionUri): Listener | undefined {
    const exact = this.#byKey.get(`${namespace}|${endpointKey(uri)}`);
    if (exact || !this.#isLocal(uri.host)) return exact;
    return this.#byKey.get(`${namespace}|${endpointKey({ ...uri, host: '*' })}`);
  }

  /** Listeners of every namespace a connect to `uri` would reach (exact host, then wildcard). */
  lookupAll(uri: SessionUri): Listener[] {
    const exact = this.#byEndpoint.get(endpointKey(uri)) ?? [];
    if (!this.#isLocal(uri.host)) return [...exact];
    const wild = this.#byEndpoint.get(endpointKey({ ...uri, host: '*' })) ?? [];
    return [...exact, ...wild];
  }
}
