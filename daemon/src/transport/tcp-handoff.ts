/**
 * Handoff mode of `tcp://`: ferryd decides as for a relayed session (namespace, rules, limits, the
 * listener an inbound connection belongs to, the ports bound), opens or accepts the kernel
 * connection in its own network namespace, and passes the connected socket to the app
 * (SCM_RIGHTS, fd role 'socket'). The app then reads and writes the kernel socket itself: ferryd
 * is on no data path. It keeps a duplicate of the socket (HandedEnd) to report it (TCP_INFO), to
 * count it against the limits and to reset it (a policy change, the app's reset). A socket lives
 * until its last descriptor closes, so the app's close reaches the wire only once ferryd lets go of
 * its duplicate too: the SDK tells ferryd (`close`, `reset`), and an app's death closes it.
 */
import type { Server, Socket } from 'node:net';
import {
  close,
  dup,
  errnoName,
  FdPoller,
  FerryError,
  ferryError,
  formatUri,
  isTcpSocket,
  parseUri,
  setTcpNoDelay,
  type TcpInfo,
  tcpAddresses,
  tcpConnect,
  tcpConnected,
  tcpDisconnect,
  tcpInfo,
  tcpLocalAddress,
  tcpSocket,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Session, SessionEnd } from '../session/session.js';
import { tcpError } from './tcp-errors.js';
import { bindHost, tcpUri } from './tcp-kernel.js';
import type { ConnectRequest, EndEvents, Opened, TransportHost } from './transport.js';

export const HANDOFF_TRANSPORT = 'tcp-handoff';

/** ferryd's duplicate of a handed socket: what it can still see and do. */
export class HandedEnd implements SessionEnd {
  #fd: number;
  readonly #events: EndEvents;
  /** An outgoing connect (rules apply to it), not an accepted connection. */
  readonly outgoing: boolean;
  #last: TcpInfo | null = null;
  readonly #onRelease: () => void;

  constructor(fd: number, events: EndEvents, outgoing: boolean, onRelease: () => void) {
    this.#fd = fd;
    this.#events = events;
    this.outgoing = outgoing;
    this.#onRelease = onRelease;
  }

  get done(): boolean {
    return this.#fd < 0;
  }

  /** The kernel's view now (the last one seen once the duplicate is closed). */
  info(): TcpInfo | null {
    if (this.#fd >= 0) {
      try {
        this.#last = tcpInfo(this.#fd);
      } catch {
        // Not a TCP socket any more cannot happen to a descriptor we hold; keep the last view.
      }
    }
    return this.#last;
  }

  get bytesIn(): number {
    return this.info()?.bytesReceived ?? 0;
  }

  get bytesOut(): number {
    return this.info()?.bytesAcked ?? 0;
  }

  describe(): Record<string, unknown> {
    const i = this.info();
    return i
      ? {
          tcpState: i.state,
          bytesReceived: i.bytesReceived,
          bytesAcked: i.bytesAcked,
          notSentBytes: i.notSentBytes,
          unackedSegments: i.unackedSegments,
          rttUs: i.rttUs,
        }
      : {};
  }

  /** The app let go: closing the duplicate lets the kernel finish (FIN, or RST for unread data). */
  close(): void {
    this.#release();
  }

  /** The app reset: reset the connection for every holder (RST), then let go. */
  reset(): void {
    this.#disconnect();
    this.#release();
  }

  /**
   * The app is gone (its descriptors closed with it, so ours is the last: closing it ends the
   * connection as the kernel does), or ferryd stops (the app keeps its socket: nothing changes for
   * the connection). Either way, only let go.
   */
  abort(): void {
    this.#release();
  }

  /** The rules now deny the connection: RST now; the app hears ECONNRESET from its socket. */
  deny(err: FerryError): void {
    this.#disconnect();
    this.#events.remoteReset(err);
  }

  #disconnect(): void {
    if (this.#fd < 0) return;
    this.info();
    try {
      tcpDisconnect(this.#fd);
    } catch {
      // Already closed by the peer (ENOTCONN): nothing to reset.
    }
  }

  #release(): void {
    if (this.#fd < 0) return;
    this.info();
    close(this.#fd);
    this.#fd = -1;
    this.#onRelease();
    this.#events.done();
  }
}

/** The descriptor of a node:net socket (Linux: the handle's fd). */
function fdOf(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0)
    throw ferryError('ERR_FERRY_SYS', 'the kernel socket has no descriptor');
  return fd;
}

/**
 * Takes the kernel socket out of node's hands: a duplicate for ferryd, and node's own descriptor
 * closed (the connection stays: the duplicate holds it). Nothing was read from it.
 */
export function takeSocket(sock: Socket): number {
  const fd = dup(fdOf(sock));
  sock.destroy();
  return fd;
}

/** Handed sessions whose duplicate ferryd still holds (for rechecks after a reload). */
export type HandedSet = Set<Session>;

/**
 * Places a handed session for `app` around `fd` (ferryd's duplicate); the reply carries it. `id`:
 * the session id reserved for it (a lent socket's), else a new one.
 */
export function placeHanded(
  host: TransportHost,
  handed: HandedSet,
  app: App,
  fd: number,
  local: string,
  remote: string,
  listenerId: number,
  outgoing: boolean,
  id?: number,
): Opened {
  const { session, events } = host.place({
    app,
    local,
    remote,
    listenerId,
    transport: HANDOFF_TRANSPORT,
    fifos: null,
    ...(id !== undefined ? { id } : {}),
  });
  const end = new HandedEnd(fd, events, outgoing, () => handed.delete(session));
  session.end = end;
  handed.add(session);
  return { session, fds: { roles: ['socket'], fds: [fd] } };
}

/** An outgoing connect in handoff mode: `connected` is node's connected socket (paused, unread). */
export function handConnect(
  host: TransportHost,
  handed: HandedSet,
  c: ConnectRequest,
  connected: Socket,
): Opened {
  const { app, target: uri } = c;
  const local = tcpUri(connected.localAddress, connected.localPort);
  const remote = tcpUri(connected.remoteAddress ?? uri.host, connected.remotePort ?? uri.port);
  if (!host.attached(app)) {
    connected.resetAndDestroy();
    throw new FerryError('ERR_FERRY_NOT_ATTACHED', 'app went away while connecting');
  }
  // As a bare connect's socket (tcpSocket): no Nagle, which the app's Socket assumes.
  connected.setNoDelay(true);
  const fd = takeSocket(connected);
  try {
    return placeHanded(host, handed, app, fd, local, remote, 0, true);
  } catch (err) {
    tcpDisconnect(fd);
    close(fd);
    throw err;
  }
}

/**
 * Waits for bare sockets' connects that did not complete inside connect() (a real network's
 * handshake): one FdPoller (epoll on a worker thread), used only while such a connect is under way.
 */
export class ConnectWaiter {
  #poller: FdPoller | null = null;

  /** Resolves once `fd` is connected; rejects with the failure, or ETIMEDOUT after `timeoutMs`. */
  wait(fd: number, address: string, port: number, timeoutMs: number): Promise<void> {
    this.#poller ??= new FdPoller();
    const poller = this.#poller;
    return new Promise<void>((resolve, reject) => {
      const finish = (err: unknown) => {
        clearTimeout(timer);
        poller.unwatch(fd);
        if (err) reject(err);
        else resolve();
      };
      const timer = setTimeout(
        () => finish(ferryError('ETIMEDOUT', `${address}:${port}: no answer in ${timeoutMs} ms`)),
        timeoutMs,
      );
      // Writable (or an error) ends the handshake; connecting again says how it ended.
      poller.watch(fd, { writable: true }, () => {
        try {
          if (tcpConnected(fd, address, port)) finish(null);
        } catch (err) {
          finish(err);
        }
      });
    });
  }
}

/** A failed bare connect as the code an app sees (the same mapping as node:net's errors). */
function connectError(err: unknown, what: string): FerryError {
  const e = err as { errno?: unknown; message?: unknown };
  if (err instanceof FerryError && typeof e.errno === 'number') {
    return tcpError({ code: errnoName(e.errno), syscall: 'connect', message: err.message }, what);
  }
  return err instanceof FerryError ? err : tcpError(err, what);
}

/**
 * An outgoing connect in handoff mode to a numeric address, without node:net: a bare non-blocking
 * socket, connected in ferryd's namespace and handed over as soon as connect() says it is (at once
 * on loopback and veth, so the reply leaves in the same loop turn as the request came), else once
 * the handshake ends. Rejects with nothing left behind.
 */
export async function connectHanded(
  host: TransportHost,
  handed: HandedSet,
  c: ConnectRequest,
  waiter: ConnectWaiter,
): Promise<Opened> {
  const { app, target: uri } = c;
  const what = formatUri(uri);
  const fd = tcpSocket(uri.host);
  let local: string;
  try {
    if (!tcpConnect(fd, uri.host, uri.port)) {
      await waiter.wait(fd, uri.host, uri.port, host.config.tcpConnectTimeoutMs);
    }
    const l = tcpLocalAddress(fd);
    local = tcpUri(l.address, l.port);
  } catch (err) {
    close(fd);
    throw connectError(err, what);
  }
  try {
    if (!host.attached(app)) throw new FerryError('ERR_FERRY_NOT_ATTACHED', 'app went away while connecting');
    // The peer is the address connected to (numeric): no getpeername().
    return placeHanded(host, handed, app, fd, local, tcpUri(uri.host, uri.port), 0, true);
  } catch (err) {
    try {
      tcpDisconnect(fd);
    } catch {}
    close(fd);
    throw err;
  }
}

/** What node's TCP handle gives a listening server's connection callback (internal, stable). */
interface RawHandle {
  fd?: number;
  close?: () => void;
  getpeername?: (out: { address?: string; port?: number }) => number;
}

/**
 * Takes a handoff listener's accepted connections before node:net makes a Socket of them: libuv
 * accepts every pending connection in one wake (accept4 in a loop) and calls the handle's
 * `onconnection` for each; `onFd` gets a duplicate of each accepted descriptor with the peer's
 * address, and node's handle is closed (the duplicate holds the connection). TCP_NODELAY is set on
 * the listening socket: accepted sockets inherit it. Returns false (nothing changed: the caller
 * keeps the 'connection' path) when this node has no such handle.
 */
export function acceptBare(
  server: Server,
  onFd: (fd: number, peer: { address: string; port: number }) => void,
): boolean {
  const handle = (server as unknown as { _handle?: { fd?: number; onconnection?: unknown } })._handle;
  if (
    !handle ||
    typeof handle.onconnection !== 'function' ||
    typeof handle.fd !== 'number' ||
    handle.fd < 0
  ) {
    return false;
  }
  setTcpNoDelay(handle.fd, true);
  handle.onconnection = (err: number, client: RawHandle | undefined) => {
    // An accept error (EMFILE...) is what node:net would report as the server's 'error': ignored,
    // as listenTcp ignores those (libuv retries on the next wake).
    if (err || !client) return;
    const peer: { address?: string; port?: number } = {};
    let fd = -1;
    try {
      if (typeof client.fd === 'number' && client.fd >= 0 && client.getpeername?.(peer) === 0)
        fd = dup(client.fd);
    } catch {
      fd = -1;
    } finally {
      client.close?.();
    }
    if (fd < 0 || peer.address === undefined || peer.port === undefined) {
      // The peer is already gone (ENOTCONN) or we are out of descriptors: node's close ended it.
      if (fd >= 0) close(fd);
      return;
    }
    try {
      onFd(fd, { address: peer.address, port: peer.port });
    } catch {
      // Called from libuv: a throw here would be uncaught and end ferryd. onFd owns the
      // descriptor only once it placed the session (and catches its own failures after that).
      try {
        tcpDisconnect(fd);
      } catch {}
      close(fd);
    }
  };
  return true;
}

/** A connection accepted bare (acceptBare) on a handoff listener: handed to the listening app. */
export function handAcceptedFd(
  host: TransportHost,
  handed: HandedSet,
  listenerId: number,
  fd: number,
  peer: { address: string; port: number },
): void {
  const l = host.listeners.get(listenerId);
  const app = l ? host.app(l.appId) : undefined;
  const reset = () => {
    try {
      tcpDisconnect(fd);
    } catch {}
    close(fd);
  };
  if (!l || !app || host.atSessionLimit(app, null)) {
    if (l && app) host.counters.refused++;
    reset();
    return;
  }
  try {
    const bound = bindHost(l.uri.host);
    let local: string;
    if (bound !== '0.0.0.0') local = tcpUri(bound, l.uri.port);
    else {
      const a = tcpLocalAddress(fd);
      local = tcpUri(a.address, a.port);
    }
    const opened = placeHanded(host, handed, app, fd, local, tcpUri(peer.address, peer.port), l.id, false);
    host.counters.tcpAccepts++;
    host.accepted(l, app, opened);
  } catch (err) {
    host.log.warn(`tcp handoff accept on listener ${l.id} dropped: ${(err as Error).message}`);
    reset();
  }
}

/** A kernel connection to a handoff listener: handed to the listening app. */
export function handAccept(host: TransportHost, handed: HandedSet, listenerId: number, raw: Socket): void {
  const l = host.listeners.get(listenerId);
  const app = l ? host.app(l.appId) : undefined;
  if (!l || !app || raw.remoteAddress === undefined || host.atSessionLimit(app, null)) {
    if (l && app) host.counters.refused++;
    raw.resetAndDestroy();
    return;
  }
  const bound = bindHost(l.uri.host);
  const local = bound !== '0.0.0.0' ? tcpUri(bound, l.uri.port) : tcpUri(raw.localAddress, raw.localPort);
  const remote = tcpUri(raw.remoteAddress, raw.remotePort);
  let fd = -1;
  try {
    fd = takeSocket(raw);
    const opened = placeHanded(host, handed, app, fd, local, remote, l.id, false);
    host.counters.tcpAccepts++;
    host.accepted(l, app, opened);
  } catch (err) {
    host.log.warn(`tcp handoff accept on listener ${l.id} dropped: ${(err as Error).message}`);
    if (fd >= 0) {
      try {
        tcpDisconnect(fd);
      } catch {}
      close(fd);
    } else raw.resetAndDestroy();
  }
}

/**
 * A socket an app reports back after a ferryd restart (`adopt`): `fd` arrived with the message and
 * is ferryd's to keep or close. Only a connected TCP socket is taken; its addresses come from the
 * kernel. `listenerId` is the app's own listener (else 0).
 */
export function adoptHanded(
  host: TransportHost,
  handed: HandedSet,
  app: App,
  listenerId: number,
  fd: number,
): Opened {
  try {
    if (!isTcpSocket(fd)) throw ferryError('ERR_INVALID_ARG_VALUE', 'adopt: the fd is not a TCP socket');
    let addrs: ReturnType<typeof tcpAddresses>;
    try {
      addrs = tcpAddresses(fd);
    } catch (err) {
      throw ferryError(
        'ERR_INVALID_ARG_VALUE',
        `adopt: the socket is not connected (${(err as Error).message})`,
      );
    }
    host.checkSessionLimit(app);
    const l = listenerId !== 0 ? host.listeners.get(listenerId) : undefined;
    const own = l && l.appId === app.id ? l.id : 0;
    return placeHanded(
      host,
      handed,
      app,
      fd,
      tcpUri(addrs.local.address, addrs.local.port),
      tcpUri(addrs.remote.address, addrs.remote.port),
      own,
      own === 0,
    );
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * After a configuration reload: every handed outgoing connection the rules now deny is reset
 * (inbound connections to an app's kernel listener are not subject to rules, as in relay mode).
 */
export async function recheckHanded(host: TransportHost, sessions: HandedSet): Promise<number> {
  let denied = 0;
  for (const s of [...sessions]) {
    const end = s.end;
    if (!(end instanceof HandedEnd) || !end.outgoing || end.done) continue;
    const app = host.app(s.appId);
    if (!app) continue;
    try {
      await host.policy.routeRemote(app.namespace, parseUri(s.remoteUri));
    } catch (err) {
      if (!(err instanceof FerryError) || err.code !== 'ERR_FERRY_DENIED' || end.done) continue;
      end.deny(ferryError('ECONNRESET', `a rule now denies ${s.remoteUri}: connection reset`));
      denied++;
    }
  }
  return denied;
}
