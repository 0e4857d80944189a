// A server socket shared by every server-role interface of this process on the same address; an
// accepted client is matched to an interface by the id in its INIT (spec §2.1: one connection, at
// most one interface).

import { lstatSync, unlinkSync } from 'node:fs';
import { FerryError, ferryError } from '../errors.js';
import { accept, bindUnix, connectUnix, listen, unixSocket } from '../sys/index.js';
import { closeQuietly } from './connection.js';
import { memifPoller } from './poller.js';
import { type HandshakeEndpoint, type HandshakeHost, ServerHandshake } from './server-handshake.js';

export type ServerEndpoint = HandshakeEndpoint;

const BACKLOG = 16;
/** After accept() fails (out of fds), the listener is not watched for this long. */
const ACCEPT_RETRY_MS = 100;
/**
 * Connections in the handshake at once. More are closed at accept: a peer that opens connections
 * and stalls holds at most this many fds until their handshake timeouts.
 */
export const MEMIF_MAX_PENDING_HANDSHAKES = 64;
const listeners = new Map<string, MemifListener>();

export class MemifListener implements HandshakeHost {
  readonly socket: string;
  readonly #fd: number;
  readonly #endpoints = new Map<number, ServerEndpoint>();
  readonly #pending = new Set<ServerHandshake>();
  #closed = false;

  /** The listener for `socket`, created (bound, listening) on first use. */
  static acquire(socket: string): MemifListener {
    let l = listeners.get(socket);
    if (l === undefined) {
      l = new MemifListener(socket);
      listeners.set(socket, l);
    }
    return l;
  }

  private constructor(socket: string) {
    this.socket = socket;
    if (!socket.startsWith('@')) removeStaleSocket(socket);
    const fd = unixSocket('seqpacket', { nonblock: true });
    try {
      bindUnix(fd, socket);
      listen(fd, BACKLOG);
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
    this.#fd = fd;
    memifPoller().watch(fd, { readable: true }, () => this.#accept());
  }

  register(id: number, ep: ServerEndpoint): void {
    if (this.#endpoints.has(id)) {
      throw ferryError('EADDRINUSE', `memif server id ${id} is already served on ${this.socket}`);
    }
    this.#endpoints.set(id, ep);
  }

  unregister(id: number, ep: ServerEndpoint): void {
    if (this.#endpoints.get(id) === ep) this.#endpoints.delete(id);
    if (this.#endpoints.size > 0 || this.#closed) return;
    this.#closed = true;
    listeners.delete(this.socket);
    memifPoller().unwatch(this.#fd);
    closeQuietly(this.#fd);
    for (const h of this.#pending) h.abort();
    this.#pending.clear();
    if (!this.socket.startsWith('@')) {
      try {
        unlinkSync(this.socket);
      } catch {
        // Already gone.
      }
    }
  }

  lookup(id: number): ServerEndpoint | undefined {
    return this.#endpoints.get(id);
  }

  /** HELLO limits: the largest any interface on this socket accepts (indices, not counts), and the
   * longest handshake timeout (a connection is not matched to an interface before INIT). */
  limits(): { name: string; maxC2sRing: number; maxS2cRing: number; maxLog2: number; timeoutMs: number } {
    let name: string | null = null;
    let c2s = 0;
    let s2c = 0;
    let log2 = 1;
    let timeoutMs = 1;
    for (const ep of this.#endpoints.values()) {
      name ??= ep.options.name; // HELLO precedes INIT: the first interface's app name stands for all
      c2s = Math.max(c2s, ep.options.rxQueues - 1);
      s2c = Math.max(s2c, ep.options.txQueues - 1);
      log2 = Math.max(log2, ep.options.log2RingSize);
      timeoutMs = Math.max(timeoutMs, ep.options.handshakeTimeoutMs);
    }
    return { name: name ?? 'ferry', maxC2sRing: c2s, maxS2cRing: s2c, maxLog2: log2, timeoutMs };
  }

  done(h: ServerHandshake): void {
    this.#pending.delete(h);
  }

  #backOff(): void {
    memifPoller().unwatch(this.#fd);
    // Not unref'd: a listening server keeps the process alive, as the watch did.
    setTimeout(() => {
      if (!this.#closed) memifPoller().watch(this.#fd, { readable: true }, () => this.#accept());
    }, ACCEPT_RETRY_MS);
  }

  #accept(): void {
    for (let i = 0; i < BACKLOG && !this.#closed; i++) {
      let fd: number;
      try {
        fd = accept(this.#fd, { nonblock: true });
      } catch {
        // EMFILE and friends: the connection stays queued and the listener stays readable, so a
        // level-triggered watch would spin. Stop watching for a moment, then try again.
        this.#backOff();
        return;
      }
      if (fd < 0) return;
      if (this.#pending.size >= MEMIF_MAX_PENDING_HANDSHAKES) {
        closeQuietly(fd);
        continue;
      }
      const h = new ServerHandshake(fd, this);
      this.#pending.add(h);
      h.start();
    }
  }
}

/**
 * A filesystem socket path left behind by a process that died is removed; a path something still
 * listens on, or that is not a socket, is left alone (bind then fails with EADDRINUSE).
 */
function removeStaleSocket(path: string): void {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // does not exist
  }
  if (!isSocket) return;
  const probe = unixSocket('seqpacket', { nonblock: true });
  try {
    connectUnix(probe, path);
  } catch (e) {
    if (e instanceof FerryError && e.code === 'ECONNREFUSED') {
      try {
        unlinkSync(path);
      } catch {
        // Raced with someone else's cleanup.
      }
    }
  } finally {
    closeQuietly(probe);
  }
}
