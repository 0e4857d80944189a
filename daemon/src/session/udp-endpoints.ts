/**
 * Datagram endpoints (`udp://`): a bind registers a local endpoint (in the listener table, so
 * local senders find it) and binds a kernel UDP socket whose datagrams a relay session carries
 * between the app and the kernel. A local sender gets a cut-through fifo pair with the endpoint
 * it names (`dgram-connect`); for any other destination it sends through its relay.
 */
import type { Socket } from 'node:dgram';
import {
  type ConnectReply,
  type DgramBind,
  type DgramBindReply,
  type DgramConnect,
  ferryError,
  formatUri,
  isWildcardHost,
  parseUri,
  type SessionUri,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { type DaemonConfig, fifoSizeFor } from '../config.js';
import { UdpRelay } from '../transport/udp-relay.js';
import { bindUdp } from '../transport/udp-transport.js';
import type { SessionLayer } from './session-layer.js';

export interface UdpCounters {
  binds: number;
  /** dgram-connect answers: a cut-through pair, or "not local, use the relay". */
  cutThroughPairs: number;
  remoteRoutes: number;
}

export class UdpEndpoints {
  readonly counters: UdpCounters = { binds: 0, cutThroughPairs: 0, remoteRoutes: 0 };
  /** Relays (and their kernel sockets), by endpoint (listener) id. */
  readonly relays = new Map<number, UdpRelay>();
  #layer: SessionLayer;
  #config: DaemonConfig;
  #apps: ReadonlyMap<number, App>;

  constructor(layer: SessionLayer, config: DaemonConfig, apps: ReadonlyMap<number, App>) {
    this.#layer = layer;
    this.#config = config;
    this.#apps = apps;
  }

  /** Datagrams ferryd moved and dropped, over every live relay. */
  get traffic(): Record<string, number> {
    const t = { datagramsIn: 0, datagramsOut: 0, dropsIn: 0, sendErrors: 0 };
    for (const r of this.relays.values()) {
      t.datagramsIn += r.datagramsIn;
      t.datagramsOut += r.datagramsOut;
      t.dropsIn += r.dropsIn;
      t.sendErrors += r.sendErrors;
    }
    return t;
  }

  /** Binds the kernel socket first (port 0 takes the kernel's pick), then the local endpoint. */
  async bind(app: App, req: DgramBind): Promise<DgramBindReply> {
    const layer = this.#layer;
    const uri = parseUri(req.uri);
    if (uri.scheme !== 'udp') {
      throw ferryError('ERR_FERRY_BAD_URI', `dgram-bind takes udp:// addresses, not '${req.uri}'`);
    }
    if (uri.port !== 0 && layer.listeners.has(app.namespace, uri)) throw ferryError('EADDRINUSE', req.uri);
    layer.checkSessionLimit(app);
    const socket: Socket = await bindUdp(uri);
    const bound: SessionUri = { ...uri, port: socket.address().port };
    const l = this.#apps.get(app.id) === app ? layer.listeners.add(app.id, app.namespace, bound) : null;
    if (!l) {
      socket.close();
      if (this.#apps.get(app.id) !== app) throw ferryError('ERR_FERRY_NOT_ATTACHED', 'app went away');
      throw ferryError('EADDRINUSE', formatUri(bound));
    }
    let placed: ReturnType<SessionLayer['placeWithDaemon']>;
    try {
      placed = layer.placeWithDaemon(
        app,
        fifoSizeFor(this.#config, req.txFifoSize),
        fifoSizeFor(this.#config, req.rxFifoSize),
        formatUri(bound),
        formatUri({ scheme: 'udp', host: '*', port: 0 }),
        l.id,
        'udp',
      );
    } catch (err) {
      layer.listeners.remove(l.id);
      socket.close();
      throw err;
    }
    const s = placed.session;
    const relay = new UdpRelay(socket, placed.ds, placed.daemonRef, {
      onFailed: (err) => layer.peerReset(s, err),
      allow: (address, port) => layer.policy.allowsDatagram(app.namespace, address, port, layer.listeners),
      onDone: () => {
        this.relays.delete(l.id);
        // The endpoint goes with its relay: nobody can reach it any more.
        if (layer.listeners.get(l.id)) layer.dropListener(l.id);
        this.#apps.get(s.appId)?.listeners.delete(l.id);
        layer.release(s);
      },
    });
    s.pump = relay;
    this.relays.set(l.id, relay);
    app.listeners.add(l.id);
    this.counters.binds++;
    relay.start();
    return {
      t: 'dgram-bind-reply',
      id: req.id,
      st: 0,
      err: '',
      endpoint: l.id,
      uri: formatUri(bound),
      session: s.id,
      fifos: layer.fifoRefOf(s),
    };
  }

  /**
   * The route from one of the app's endpoints to `req.uri`: a cut-through pair when a local
   * endpoint of the app's namespace is bound there (its app hears `accepted`), else "use the relay".
   */
  connect(app: App, req: DgramConnect): ConnectReply {
    const layer = this.#layer;
    const own = layer.listeners.get(req.endpoint);
    if (!own || own.appId !== app.id || own.uri.scheme !== 'udp' || !this.relays.has(own.id)) {
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
    const l = layer.policy.routeLocal(app.namespace, target, layer.listeners);
    const server = l ? this.#apps.get(l.appId) : undefined;
    if (!l || !server || !this.relays.has(l.id)) {
      // Not local: the relay carries it, and checks each datagram's destination as it sends.
      const listeners = layer.listeners;
      if (
        !l &&
        !layer.policy.allowsDatagram(app.namespace, target.host, target.port, listeners, 'deniedConnects')
      ) {
        throw ferryError('ERR_FERRY_DENIED', `${formatUri(target)} from namespace '${app.namespace}'`);
      }
      this.counters.remoteRoutes++;
      return {
        t: 'connect-reply',
        id: req.id,
        st: 0,
        err: '',
        session: 0,
        fifos: null,
        localUri: clientUri,
        remoteUri: formatUri(target),
        fds: [],
        transport: 'udp',
      };
    }
    layer.checkSessionLimit(app);
    if (server.sessions.size >= this.#config.maxSessionsPerApp) {
      throw ferryError('ERR_FERRY_LIMIT', `the endpoint's app has reached its session limit`);
    }
    const serverUri = formatUri({ ...l.uri, host: isWildcardHost(l.uri.host) ? target.host : l.uri.host });
    const { c, s } = layer.pairApps(
      app,
      server,
      fifoSizeFor(this.#config, req.txFifoSize),
      fifoSizeFor(this.#config, req.rxFifoSize),
      clientUri,
      serverUri,
      l.id,
    );
    l.accepted++;
    this.counters.cutThroughPairs++;
    server.send({
      t: 'accepted',
      id: 0,
      listener: l.id,
      session: s.id,
      fifos: layer.fifoRefOf(s),
      localUri: serverUri,
      remoteUri: clientUri,
      fds: [],
      transport: 'ct',
    });
    return {
      t: 'connect-reply',
      id: req.id,
      st: 0,
      err: '',
      session: c.id,
      fifos: layer.fifoRefOf(c),
      localUri: clientUri,
      remoteUri: serverUri,
      fds: [],
      transport: 'ct',
    };
  }

  /** A listener went (unlisten, app gone): if it was a datagram endpoint, its relay stops. */
  listenerRemoved(listenerId: number): void {
    this.relays.get(listenerId)?.abort();
  }

  stop(): void {
    for (const r of [...this.relays.values()]) r.abort();
  }
}
