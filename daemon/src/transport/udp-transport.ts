/**
 * The `udp://` transport: a bind registers a local endpoint (in the listener table, so local
 * senders find it) and binds a kernel UDP socket whose datagrams a relay session carries between
 * the app and the kernel. A local sender gets a cut-through fifo pair with the endpoint it names
 * (`dgram-connect`); for any other destination it sends through its relay.
 */
import type { Socket } from 'node:dgram';
import {
  type ConnectReply,
  type DgramConnect,
  ferryError,
  formatUri,
  isWildcardHost,
  parseUri,
  type SessionUri,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener } from '../app/listener-table.js';
import { fifoSizeFor } from '../config.js';
import type { Session } from '../session/session.js';
import { connectReply, relayRouteReply } from '../session/wire.js';
import type { CutThrough } from './cut-through.js';
import type { ListenRequest, Opened, Transport, TransportHost, TransportListener } from './transport.js';
import { bindUdp } from './udp-kernel.js';
import { UdpRelay } from './udp-relay.js';

export interface UdpCounters {
  binds: number;
  /** dgram-connect answers: a cut-through pair, or "not local, use the relay". */
  cutThroughPairs: number;
  remoteRoutes: number;
}

/** A bound endpoint: its kernel socket, and once in the table, the relay session that serves it. */
class UdpEndpoint implements TransportListener {
  readonly bound: SessionUri;
  readonly #transport: UdpTransport;
  readonly #socket: Socket;
  readonly #req: ListenRequest;
  #relay: UdpRelay | null = null;

  constructor(transport: UdpTransport, socket: Socket, req: ListenRequest) {
    this.#transport = transport;
    this.#socket = socket;
    this.#req = req;
    this.bound = { ...req.uri, port: socket.address().port };
  }

  start(l: Listener): Opened {
    const { relay, session } = this.#transport.startRelay(this.#socket, this.#req, this.bound, l);
    this.#relay = relay;
    return { session };
  }

  admitsCutThrough(): boolean {
    return this.#relay !== null && !this.#relay.done;
  }

  describe(): string[] {
    return this.#relay && !this.#relay.done ? ['ct', 'udp'] : ['ct'];
  }

  /** The endpoint is gone (unbound, app gone): its relay stops and closes the kernel socket. */
  close(): void {
    if (this.#relay) this.#relay.abort();
    else this.#socket.close();
  }
}

export class UdpTransport implements Transport {
  readonly scheme = 'udp';
  readonly kind = 'datagram';
  readonly tlsOptions = false;
  readonly counters: UdpCounters = { binds: 0, cutThroughPairs: 0, remoteRoutes: 0 };
  /** Relays (and their kernel sockets), by endpoint (listener) id. */
  readonly relays = new Map<number, UdpRelay>();
  readonly #host: TransportHost;
  readonly #cutThrough: CutThrough;

  constructor(host: TransportHost, cutThrough: CutThrough) {
    this.#host = host;
    this.#cutThrough = cutThrough;
  }

  /** Datagrams ferryd moved and dropped, over every live relay. */
  stats(): Record<string, number> {
    const t = { ...this.counters, datagramsIn: 0, datagramsOut: 0, dropsIn: 0, sendErrors: 0 };
    for (const r of this.relays.values()) {
      t.datagramsIn += r.datagramsIn;
      t.datagramsOut += r.datagramsOut;
      t.dropsIn += r.dropsIn;
      t.sendErrors += r.sendErrors;
    }
    return t;
  }

  /** Binds the kernel socket (port 0 takes the kernel's pick); the session layer then adds the endpoint. */
  async listen(req: ListenRequest): Promise<TransportListener> {
    this.#host.checkSessionLimit(req.app);
    const socket = await bindUdp(req.uri);
    return new UdpEndpoint(this, socket, req);
  }

  /** The relay session of a new endpoint `l`: a fifo pair between the app and ferryd. */
  startRelay(
    socket: Socket,
    req: ListenRequest,
    bound: SessionUri,
    l: Listener,
  ): { relay: UdpRelay; session: Session } {
    const host = this.#host;
    const app = req.app;
    const {
      session: s,
      events,
      daemon,
    } = host.place({
      app,
      fifos: {
        tx: fifoSizeFor(host.config, req.txFifoSize ?? 0),
        rx: fifoSizeFor(host.config, req.rxFifoSize ?? 0),
      },
      local: formatUri(bound),
      remote: formatUri({ scheme: 'udp', host: '*', port: 0 }),
      listenerId: l.id,
      transport: 'udp',
    });
    if (!daemon) throw ferryError('ERR_FERRY_SESSION_STATE', `session ${s.id} has no fifo pair`);
    const relay = new UdpRelay(socket, daemon.seg, daemon.ref, {
      onFailed: (err) => events.remoteReset(err),
      allow: (address, port) => host.policy.allowsDatagram(app.namespace, address, port, host.listeners),
      onDone: () => {
        this.relays.delete(l.id);
        // The endpoint goes with its relay: nobody can reach it any more.
        if (host.listeners.get(l.id)) host.dropListener(l.id);
        host.app(s.appId)?.listeners.delete(l.id);
        events.done();
      },
    });
    s.end = relay;
    this.relays.set(l.id, relay);
    this.counters.binds++;
    relay.start();
    return { relay, session: s };
  }

  /**
   * The route from one of the app's endpoints to `req.uri`: a cut-through pair when a local
   * endpoint of the app's namespace is bound there (its app hears `accepted`), else "use the relay".
   */
  route(app: App, own: Listener, req: DgramConnect): ConnectReply {
    const host = this.#host;
    if (own.appId !== app.id || own.uri.scheme !== 'udp' || !this.relays.has(own.id)) {
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `datagram endpoint ${req.endpoint}`);
    }
    const target = parseUri(req.uri);
    if (target.scheme !== 'udp' || target.port === 0 || isWildcardHost(target.host)) {
      throw ferryError('ERR_FERRY_BAD_URI', `'${req.uri}' is not a udp:// destination`);
    }
    // A wildcard-bound sender shows the address it sent to as its own, as the kernel's source
    // address selection does for a local destination.
    const clientUri = formatUri({
      ...own.uri,
      host: isWildcardHost(own.uri.host) ? target.host : own.uri.host,
    });
    // The rules first, as for a stream connect: another namespace's endpoint only through a rule.
    const l = host.policy.routeLocal(app.namespace, target, host.listeners);
    const server = l ? host.app(l.appId) : undefined;
    if (!l || !server || !this.relays.has(l.id)) {
      // Not local: the relay carries it, and checks each datagram's destination as it sends.
      if (
        !l &&
        !host.policy.allowsDatagram(app.namespace, target.host, target.port, host.listeners, 'deniedConnects')
      ) {
        throw ferryError('ERR_FERRY_DENIED', `${formatUri(target)} from namespace '${app.namespace}'`);
      }
      this.counters.remoteRoutes++;
      return relayRouteReply(req.id, clientUri, formatUri(target));
    }
    host.checkSessionLimit(app);
    if (server.sessions.size >= host.config.maxSessionsPerApp) {
      throw ferryError('ERR_FERRY_LIMIT', `the endpoint's app has reached its session limit`);
    }
    const serverUri = formatUri({ ...l.uri, host: isWildcardHost(l.uri.host) ? target.host : l.uri.host });
    const c = this.#cutThrough.join({
      client: app,
      server,
      listener: l,
      clientUri,
      serverUri,
      tx: fifoSizeFor(host.config, req.txFifoSize),
      rx: fifoSizeFor(host.config, req.rxFifoSize),
      ring: 'now',
    });
    this.counters.cutThroughPairs++;
    return connectReply(req.id, { session: c, fifos: host.fifoRef(c), fds: [] });
  }

  stop(): void {
    for (const r of [...this.relays.values()]) r.abort();
  }
}
