/**
 * Lent sockets (handoff mode, outbound): after ferryd made a second handoff connect for an app to a
 * numeric address the rules allowed (under the same URI), it lends the app a small pool of unconnected TCP sockets made
 * in its own network namespace for that address (`sockets-lent`: TCP_NODELAY set as on its own
 * connects, a session id reserved for each), keeping a duplicate of each. The app's next connects to
 * the same URI take one and connect it themselves (the kernel's speed, no round trip through
 * ferryd), then say so after the fact (`fast-open` with the reserved id, batched with its other
 * notices). ferryd then looks at its duplicate: the addresses come from the kernel, never from the
 * app; a socket connected anywhere but the address it was lent for is reset; otherwise it becomes a
 * handed session like any other (`ferry show`, limits, the rules on SIGHUP, the app's death). Each
 * unused lent socket counts against maxSessionsPerApp. A reload revokes every pool (`pool-revoke`);
 * the app closes what it has not used and answers `pool-release`, and ferryd then takes any of
 * the pool's sockets that turn out connected as opened (and rechecks them against the new rules).
 * An app holds at most MAX_POOLS_PER_APP pools: a new one revokes its least recently used.
 *
 * Trust: an unconnected socket lets the app connect anywhere ferryd's namespace reaches, but only
 * once and only after the fact unseen: ferryd resets it when it learns (at the notice, or when the
 * pool is released or the app goes). That is no worse than a handed connected socket, which a
 * trusted app can disconnect and connect again (docs/internals.md, TCP handoff, Trust).
 */
import {
  CTRL_MAX_FDS,
  close,
  type FdRole,
  FerryError,
  ferryError,
  parseUri,
  type SessionUri,
  type SocketsLent,
  tcpAddresses,
  tcpDisconnect,
  tcpSocket,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { HandedEnd, type HandedSet, placeHanded } from './tcp-handoff.js';
import { tcpUri } from './tcp-kernel.js';
import type { TransportHost } from './transport.js';

/** Pool ids of lent sockets: apart from fast-connect pools' (both are revoked with `pool-revoke`). */
export const SOCKET_POOL_BASE = 0x8000_0000;
/** Pools one app holds at once (the least recently used one is revoked for a new one). */
export const MAX_POOLS_PER_APP = 4;
/** URIs remembered as connected once (a pool is lent at the second connect), for all apps. */
const MAX_SEEN = 4096;

interface SocketPool {
  readonly id: number;
  readonly app: App;
  /** The URI as the app named it (its key for the pool). */
  readonly uri: string;
  readonly target: SessionUri;
  readonly remoteUri: string;
  /** Lent and not yet reported used: reserved session id -> ferryd's duplicate. */
  readonly free: Map<number, number>;
  revoked: boolean;
  /** Date.now() of its last use (the least recently used pool gives way to a new one). */
  used: number;
}

export class LentSockets {
  readonly #host: TransportHost;
  readonly #handed: HandedSet;
  readonly #pools = new Map<number, SocketPool>();
  readonly #byKey = new Map<string, SocketPool>();
  readonly #bySession = new Map<number, SocketPool>();
  #nextPool = SOCKET_POOL_BASE;
  /** App and URI of handoff connects seen once: a one-off connect costs no pool. */
  readonly #seen = new Set<string>();
  /** Lent sockets connected elsewhere than lent for (reset), and used as lent, for `ferry show stats`. */
  misused = 0;
  used = 0;

  constructor(host: TransportHost, handed: HandedSet) {
    this.#host = host;
    this.#handed = handed;
  }

  get size(): number {
    return this.#pools.size;
  }

  /**
   * ferryd just connected `app` to `target` (numeric, allowed by the rules) for the URI it named:
   * lend it a pool for its next connects there, or top the pool up.
   */
  offer(app: App, uri: string, target: SessionUri): void {
    const n = this.#host.config.tcpHandoffSockets;
    if (n === 0 || this.#host.config.tcpHandoff !== 'allow') return;
    const key = `${app.id} ${uri}`;
    let pool = this.#byKey.get(key);
    if (!pool) {
      // Lent at the second connect to the URI: an app that connects once somewhere holds nothing.
      if (!this.#seen.has(key)) {
        if (this.#seen.size >= MAX_SEEN) this.#seen.delete(this.#seen.values().next().value as string);
        this.#seen.add(key);
        return;
      }
      this.#seen.delete(key);
      const own = [...this.#pools.values()].filter((p) => p.app === app && !p.revoked);
      if (own.length >= MAX_POOLS_PER_APP) {
        const lru = own.reduce((a, b) => (b.used < a.used ? b : a));
        this.#revoke(lru);
      }
      pool = {
        id: this.#nextPool++,
        app,
        uri,
        target,
        remoteUri: tcpUri(target.host, target.port),
        free: new Map(),
        revoked: false,
        used: Date.now(),
      };
      this.#pools.set(pool.id, pool);
      this.#byKey.set(key, pool);
    }
    this.#topUp(pool);
  }

  /** Fills the pool back to tcpHandoffSockets once it is at most half full, within the app's room. */
  #topUp(pool: SocketPool): void {
    const host = this.#host;
    if (pool.revoked || !host.attached(pool.app)) return;
    const size = host.config.tcpHandoffSockets;
    if (pool.free.size > size / 2) return;
    const room = host.config.maxSessionsPerApp - host.sessionsHeld(pool.app);
    const want = Math.min(size - pool.free.size, Math.floor(room / 2));
    const sessions: number[] = [];
    const fds: number[] = [];
    try {
      for (let i = 0; i < want; i++) {
        const fd = tcpSocket(pool.target.host);
        const id = host.reserveSessionId();
        pool.free.set(id, fd);
        this.#bySession.set(id, pool);
        pool.app.lentReserved++;
        sessions.push(id);
        fds.push(fd);
      }
    } catch (err) {
      // Out of descriptors: lend what was made; the app asks ferryd for the rest as before.
      host.log.warn(`tcp handoff: lending sockets for ${pool.uri} stopped: ${(err as Error).message}`);
    }
    for (let i = 0; i < sessions.length; i += CTRL_MAX_FDS) {
      const part = sessions.slice(i, i + CTRL_MAX_FDS);
      const msg: SocketsLent = {
        t: 'sockets-lent',
        id: 0,
        pool: pool.id,
        uri: pool.uri,
        remoteUri: pool.remoteUri,
        sessions: part,
        fds: part.map((): FdRole => 'socket'),
      };
      pool.app.send(msg, fds.slice(i, i + CTRL_MAX_FDS), 'soon');
    }
  }

  /** Takes `session` out of its pool: ferryd's duplicate, or undefined when it is not a lent one of `app`. */
  #take(app: App, session: number): { pool: SocketPool; fd: number } | undefined {
    const pool = this.#bySession.get(session);
    const fd = pool?.free.get(session);
    if (!pool || pool.app !== app || fd === undefined) return undefined;
    pool.free.delete(session);
    this.#bySession.delete(session);
    app.lentReserved--;
    return { pool, fd };
  }

  /** The app connected lent socket `session` (`fast-open`): it becomes a handed session. */
  open(app: App, session: number): boolean {
    const t = this.#take(app, session);
    if (!t) return false;
    this.used++;
    t.pool.used = Date.now();
    this.#place(t.pool, session, t.fd);
    this.#topUp(t.pool);
    return true;
  }

  /** The app let go of lent socket `session` unused (its connect failed): false when not one. */
  drop(app: App, session: number): boolean {
    const t = this.#take(app, session);
    if (!t) return false;
    this.#settle(t.pool, session, t.fd);
    return true;
  }

  /**
   * A lent socket ferryd takes back (released, or its app gone): one the app connected without a
   * notice yet becomes a session as if it had come; any other closes.
   */
  #settle(pool: SocketPool, session: number, fd: number): void {
    let connected = false;
    try {
      tcpAddresses(fd);
      connected = true;
    } catch {
      // ENOTCONN: never connected, or its connect failed.
    }
    if (connected && this.#host.attached(pool.app)) this.#place(pool, session, fd);
    else close(fd);
  }

  /** Where the kernel says `fd` is connected decides: the address lent for, else a reset. */
  #place(pool: SocketPool, session: number, fd: number): void {
    const host = this.#host;
    let local: string;
    let remote: string;
    try {
      const a = tcpAddresses(fd);
      local = tcpUri(a.local.address, a.local.port);
      remote = tcpUri(a.remote.address, a.remote.port);
    } catch {
      // Not connected after all (the app's connect failed after its notice): nothing to show.
      close(fd);
      return;
    }
    if (remote !== pool.remoteUri) {
      this.misused++;
      host.log.warn(`app ${pool.app.id} connected a socket lent for ${pool.remoteUri} to ${remote}: reset`);
      try {
        tcpDisconnect(fd);
      } catch {}
      close(fd);
      return;
    }
    try {
      placeHanded(host, this.#handed, pool.app, fd, local, remote, 0, true, session);
    } catch (err) {
      host.log.warn(`tcp handoff: lent socket ${session} dropped: ${(err as Error).message}`);
      try {
        tcpDisconnect(fd);
      } catch {}
      close(fd);
      return;
    }
    host.counters.tcpConnects++;
    if (pool.revoked) void this.#recheck(pool, session);
  }

  /** A session from a revoked pool: lent under the old rules, so the new ones decide it now. */
  async #recheck(pool: SocketPool, session: number): Promise<void> {
    const host = this.#host;
    try {
      await host.policy.routeRemote(pool.app.namespace, parseUri(pool.remoteUri));
    } catch (err) {
      if (!(err instanceof FerryError) || err.code !== 'ERR_FERRY_DENIED') return;
      for (const s of this.#handed) {
        if (s.id !== session) continue;
        const end = s.end;
        if (end instanceof HandedEnd && !end.done) {
          end.deny(ferryError('ECONNRESET', `a rule now denies ${pool.remoteUri}: connection reset`));
        }
      }
    }
  }

  /** A reload: no pool outlives the decision it was lent on. The app answers `pool-release`. */
  revokeAll(): void {
    for (const pool of this.#pools.values()) this.#revoke(pool);
    this.#seen.clear();
  }

  #revoke(pool: SocketPool): void {
    if (pool.revoked) return;
    pool.revoked = true;
    if (this.#byKey.get(`${pool.app.id} ${pool.uri}`) === pool)
      this.#byKey.delete(`${pool.app.id} ${pool.uri}`);
    pool.app.send({ t: 'pool-revoke', id: 0, pool: pool.id, taken: [] }, [], 'soon');
  }

  /** The app let go of revoked pool `id` (`pool-release`): false when it is not one of its pools. */
  release(app: App, id: number): boolean {
    const pool = this.#pools.get(id);
    if (!pool || pool.app !== app) return false;
    this.#close(pool);
    return true;
  }

  /** The app is gone: its pools go, and sockets it connected unannounced end with it. */
  appGone(app: App): void {
    for (const pool of [...this.#pools.values()]) if (pool.app === app) this.#close(pool);
    for (const key of [...this.#seen]) if (key.startsWith(`${app.id} `)) this.#seen.delete(key);
  }

  /** ferryd stops: let go of every duplicate (the apps keep theirs). */
  stop(): void {
    for (const pool of [...this.#pools.values()]) {
      for (const fd of pool.free.values()) close(fd);
      pool.free.clear();
    }
    this.#pools.clear();
    this.#byKey.clear();
    this.#bySession.clear();
  }

  #close(pool: SocketPool): void {
    this.#pools.delete(pool.id);
    if (this.#byKey.get(`${pool.app.id} ${pool.uri}`) === pool)
      this.#byKey.delete(`${pool.app.id} ${pool.uri}`);
    for (const [session, fd] of [...pool.free]) {
      pool.free.delete(session);
      this.#bySession.delete(session);
      pool.app.lentReserved--;
      this.#settle(pool, session, fd);
    }
  }
}
