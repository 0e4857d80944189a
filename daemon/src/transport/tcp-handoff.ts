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
import type { Socket } from 'node:net';
import {
  close,
  dup,
  FerryError,
  ferryError,
  isTcpSocket,
  parseUri,
  type TcpInfo,
  tcpAddresses,
  tcpDisconnect,
  tcpInfo,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Session, SessionEnd } from '../session/session.js';
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

/** Places a handed session for `app` around `fd` (ferryd's duplicate); the reply carries it. */
export function placeHanded(
  host: TransportHost,
  handed: HandedSet,
  app: App,
  fd: number,
  local: string,
  remote: string,
  listenerId: number,
  outgoing: boolean,
): Opened {
  const { session, events } = host.place({
    app,
    local,
    remote,
    listenerId,
    transport: HANDOFF_TRANSPORT,
    fifos: null,
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
  const fd = takeSocket(connected);
  try {
    return placeHanded(host, handed, app, fd, local, remote, 0, true);
  } catch (err) {
    tcpDisconnect(fd);
    close(fd);
    throw err;
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
