/**
 * Lent sockets, the app's side (handoff mode, FEATURE.LENT_SOCKETS): unconnected TCP sockets ferryd
 * lent for the app's next handoff connects to a URI (`sockets-lent`; daemon/src/transport/
 * tcp-lent-sockets.ts has the rules). A connect takes one (take()), connects it itself and sends
 * `fast-open` with its session id once connected (`close` when the connect failed). `pool-revoke`
 * closes the unused ones and answers `pool-release`; losing ferryd closes them all (the new ferryd
 * did not lend them).
 */
import type { AppRequest, SocketsLent } from '../proto/ctrl/messages.js';
import { close } from '../sys/index.js';
import { poolReleaseMessage } from './control-messages.js';

/** Pool ids of lent sockets start here (fast-connect pools' are below). */
export const SOCKET_POOL_BASE = 0x8000_0000;

/** A lent socket taken for a connect: the descriptor is the caller's from now on. */
export interface LentSocket {
  session: number;
  fd: number;
  remoteUri: string;
}

interface Pool {
  id: number;
  uri: string;
  remoteUri: string;
  free: { session: number; fd: number }[];
}

export class LentSocketPools {
  readonly #notify: (msg: AppRequest, ring: 'soon' | 'lazy') => void;
  readonly #byUri = new Map<string, Pool>();
  readonly #byId = new Map<number, Pool>();

  constructor(notify: (msg: AppRequest, ring: 'soon' | 'lazy') => void) {
    this.#notify = notify;
  }

  /** `sockets-lent`: `fds` came with it (ours now), one per session id, in order. */
  onLent(msg: SocketsLent, fds: number[]): void {
    const sockets: { session: number; fd: number }[] = [];
    msg.fds.forEach((role, i) => {
      const fd = fds[i];
      const session = msg.sessions[i];
      if (role === 'socket' && fd !== undefined && session !== undefined) sockets.push({ session, fd });
      else if (fd !== undefined) close(fd);
    });
    for (let i = msg.fds.length; i < fds.length; i++) close(fds[i] as number);
    let pool = this.#byId.get(msg.pool);
    if (!pool) {
      pool = { id: msg.pool, uri: msg.uri, remoteUri: msg.remoteUri, free: [] };
      this.#byId.set(pool.id, pool);
      // A newer pool for the URI replaces an older one (revoked: its sockets go at its revoke).
      this.#byUri.set(msg.uri, pool);
    }
    pool.free.push(...sockets);
  }

  /** Lent sockets ready for a connect to `uri`. */
  available(uri: string): number {
    return this.#byUri.get(uri)?.free.length ?? 0;
  }

  /** A lent socket for a connect to `uri` (exactly as ferryd was asked), or null. */
  take(uri: string): LentSocket | null {
    const pool = this.#byUri.get(uri);
    const s = pool?.free.shift();
    if (!pool || !s) return null;
    return { session: s.session, fd: s.fd, remoteUri: pool.remoteUri };
  }

  /** `pool-revoke`: true when `id` is a lent-socket pool (closed, and released to ferryd). */
  onRevoke(id: number): boolean {
    if (id < SOCKET_POOL_BASE) return false;
    const pool = this.#byId.get(id);
    if (pool) {
      this.#byId.delete(id);
      if (this.#byUri.get(pool.uri) === pool) this.#byUri.delete(pool.uri);
      for (const s of pool.free.splice(0)) close(s.fd);
    }
    this.#notify(poolReleaseMessage(id), 'soon');
    return true;
  }

  /** ferryd is gone (or the attachment closed): its lent sockets go unused. */
  onLost(): void {
    for (const pool of this.#byId.values()) for (const s of pool.free.splice(0)) close(s.fd);
    this.#byId.clear();
    this.#byUri.clear();
  }
}
