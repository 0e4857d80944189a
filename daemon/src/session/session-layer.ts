/**
 * The session layer: listens, connects, and the life of sessions (VPP's session.c and
 * application_local.c). ferryd never touches the bytes of a cut-through session, it only sets up
 * the fifo pair and tears it down; for a TCP session ferryd is the other end of the fifo pair and
 * a pump moves the bytes to and from a kernel socket.
 */

import { readFileSync } from 'node:fs';
import { isIPv4, type Server, type Socket } from 'node:net';
import {
  type Accepted,
  type Connect,
  type ConnectReply,
  FerryError,
  type FifoPairRef,
  ferryError,
  formatUri,
  type ListenReply,
  parseUri,
  type SegmentAdd,
  type SessionUri,
  statusOf,
  type TlsOptions,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { ListenerTable } from '../app/listener-table.js';
import { type DaemonConfig, fifoSizeFor } from '../config.js';
import { sessionFreed, sessionOpened } from '../obs/events.js';
import { Policy } from '../policy/policy.js';
import type { PairSegment } from '../segment/pair-segment.js';
import { SegmentManager, type SegmentParty } from '../segment/segment-manager.js';
import { DAEMON_PARTY_ID, DaemonEnd, type DaemonSegment } from '../transport/daemon-end.js';
import { TcpPump } from '../transport/tcp-pump.js';
import { bindHost, connectTcp, listenTcp, tcpUri } from '../transport/tcp-transport.js';
import {
  acceptTls,
  type CertKey,
  clientWouldAccept,
  connectTls,
  type ServerTls,
  serverTls,
} from '../transport/tls-transport.js';
import { Session, type SessionTransport } from './session.js';
import { UdpEndpoints } from './udp-endpoints.js';

export interface SessionLayerCounters {
  connects: number;
  refused: number;
  accepted: number;
  resets: number;
  /** TCP connections ferryd opened (connect) and took from kernel listeners (accept). */
  tcpConnects: number;
  tcpAccepts: number;
  /** TLS handshakes that failed (accepts and connects). */
  tlsFailures: number;
}

export class SessionLayer {
  readonly listeners = new ListenerTable();
  readonly segments: SegmentManager;
  readonly sessions = new Map<number, Session>();
  readonly counters: SessionLayerCounters = {
    connects: 0,
    refused: 0,
    accepted: 0,
    resets: 0,
    tcpConnects: 0,
    tcpAccepts: 0,
    tlsFailures: 0,
  };
  /** ferryd's own end of the pair segments it shares with apps for the sessions it terminates. */
  readonly daemonEnd = new DaemonEnd();
  /** Kernel listeners, by listener id. */
  readonly tcpServers = new Map<number, Server>();
  /** Datagram endpoints (udp://): kernel sockets and relays, by listener id. */
  readonly udp: UdpEndpoints;
  /** What each `tls://` listener serves, by listener id. */
  readonly tlsListeners = new Map<number, ServerTls>();
  /** ferryd's own certificate for `tls://` listens that give none (configuration). */
  #defaultCert: CertKey | null = null;
  #daemonParty: SegmentParty = { id: DAEMON_PARTY_ID, segments: new Set<number>() };
  #config: DaemonConfig;
  #apps: ReadonlyMap<number, App>;
  #log: (line: string) => void;
  #nextSession = 1;
  #ephemeralPort = 49152;
  readonly policy: Policy;

  constructor(
    config: DaemonConfig,
    apps: ReadonlyMap<number, App>,
    log: (line: string) => void = () => {},
    policy: Policy = new Policy(config),
  ) {
    this.#config = config;
    this.#apps = apps;
    this.#log = log;
    this.policy = policy;
    this.segments = new SegmentManager(config, policy.counters);
    this.udp = new UdpEndpoints(this, config, apps);
    if (config.tlsCertFile !== null && config.tlsKeyFile !== null) {
      try {
        this.#defaultCert = {
          cert: readFileSync(config.tlsCertFile, 'utf8'),
          key: readFileSync(config.tlsKeyFile, 'utf8'),
        };
      } catch (err) {
        throw ferryError(
          'ERR_FERRY_TLS_CONFIG',
          `cannot read the TLS certificate or key: ${(err as Error).message}`,
        );
      }
      // Fail at start, not at the first listen, when the pair is unusable.
      serverTls(undefined, this.#defaultCert);
    }
  }

  /**
   * A listen: a cut-through listener and a kernel TCP listener on the same address (port 0 takes
   * the port the kernel picks). Asynchronous: the kernel bind is. A `tls://` listener's kernel
   * connections are TLS, terminated by ferryd with the listen's certificate (or ferryd's).
   */
  async listen(app: App, id: number, uriText: string, tlsOpts?: TlsOptions): Promise<ListenReply> {
    const uri = parseUri(uriText);
    if (uri.scheme !== 'tcp' && uri.scheme !== 'tls') {
      const why =
        uri.scheme === 'udp'
          ? 'udp:// is for datagram sockets (dgram-bind)'
          : `${uri.scheme}:// listeners are not available yet`;
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', why);
    }
    if (tlsOpts && uri.scheme !== 'tls') {
      throw ferryError('ERR_INVALID_ARG_VALUE', `tls options need a tls:// URI, not ${uri.scheme}://`);
    }
    const tls = uri.scheme === 'tls' ? serverTls(tlsOpts, this.#defaultCert) : null;
    if (uri.port !== 0 && this.listeners.has(app.namespace, uri)) {
      throw ferryError('EADDRINUSE', formatUri(uri));
    }
    const box = { listener: 0 };
    const server = await listenTcp(uri, (sock) => {
      if (tls) this.#acceptTls(box.listener, tls, sock);
      else this.#acceptTcp(box.listener, sock);
    });
    const addr = server.address();
    const bound = { ...uri, port: typeof addr === 'object' && addr ? addr.port : uri.port };
    const l = this.#apps.get(app.id) === app ? this.listeners.add(app.id, app.namespace, bound) : null;
    if (!l) {
      server.close();
      if (this.#apps.get(app.id) !== app) throw ferryError('ERR_FERRY_NOT_ATTACHED', 'app went away');
      throw ferryError('EADDRINUSE', formatUri(bound));
    }
    box.listener = l.id;
    this.tcpServers.set(l.id, server);
    if (tls) this.tlsListeners.set(l.id, tls);
    app.listeners.add(l.id);
    return { t: 'listen-reply', id, st: 0, err: '', listener: l.id, uri: formatUri(bound) };
  }

  unlisten(app: App, listenerId: number): void {
    const l = this.listeners.get(listenerId);
    if (!l || l.appId !== app.id) throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `listener ${listenerId}`);
    this.#removeListener(listenerId);
    app.listeners.delete(listenerId);
  }

  /**
   * A connect: cut-through when a local listener matches (answered at once); otherwise a TCP
   * connection from ferryd, answered once the kernel has connected or failed.
   */
  connect(client: App, req: Connect): ConnectReply | Promise<ConnectReply> {
    this.counters.connects++;
    const uri = parseUri(req.uri);
    if (uri.scheme === 'udp') {
      throw ferryError(
        'ERR_FERRY_NOT_SUPPORTED',
        'udp:// is for datagram sockets (dgram-bind, dgram-connect)',
      );
    }
    if (req.tls && uri.scheme !== 'tls') {
      throw ferryError('ERR_INVALID_ARG_VALUE', `tls options need a tls:// URI, not ${uri.scheme}://`);
    }
    // Rules first: a denied connect learns nothing else (not even whether a listener exists).
    const l = this.policy.routeLocal(client.namespace, uri, this.listeners);
    const server = l ? this.#apps.get(l.appId) : undefined;
    if (!l || !server || !this.#cutThroughAllowed(l.id, uri, req.tls)) {
      if (uri.scheme !== 'tcp' && uri.scheme !== 'tls') {
        throw ferryError('ERR_FERRY_NOT_SUPPORTED', `${uri.scheme}:// connects are not available yet`);
      }
      this.checkSessionLimit(client);
      return this.policy
        .routeRemote(client.namespace, uri)
        .then((target) => this.#connectTcp(client, req, target, uri));
    }
    this.checkSessionLimit(client);
    if (this.#atLimitAfterNotices(server, client)) {
      this.counters.refused++;
      throw ferryError('ECONNREFUSED', `listener's app has reached its session limit`);
    }
    const serverUri = formatUri(l.uri.host === '*' ? { ...l.uri, host: uri.host } : l.uri);
    const clientUri = formatUri({ scheme: uri.scheme, host: '127.0.0.1', port: this.#clientPort() });
    const { c, s } = this.pairApps(
      client,
      server,
      fifoSizeFor(this.#config, req.txFifoSize),
      fifoSizeFor(this.#config, req.rxFifoSize),
      clientUri,
      serverUri,
      l.id,
    );
    l.accepted++;
    this.counters.accepted++;

    const accepted: Accepted = {
      t: 'accepted',
      id: 0,
      listener: l.id,
      session: s.id,
      fifos: this.#fifoRef(s),
      localUri: serverUri,
      remoteUri: clientUri,
      fds: [],
      transport: 'ct',
    };
    server.send(accepted, [], 'soon');
    return {
      t: 'connect-reply',
      id: req.id,
      st: 0,
      err: '',
      session: c.id,
      fifos: this.#fifoRef(c),
      localUri: clientUri,
      remoteUri: serverUri,
      fds: [],
      transport: 'ct',
    };
  }

  shutdown(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
    if (s.pump) {
      // ferryd carries the session and applies 'shutdown' when the FIN it reads from the fifo goes
      // out (the SDK sends no notice for it); a notice from an older SDK may come before or after.
      s.tryApply('shutdown');
      return;
    }
    s.apply('shutdown');
    s.peer?.tryApply('peer-fin');
  }

  /** The app let go of the session's fifos (orderly close, or acknowledging a reset). */
  close(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
    if (!s.terminal) {
      s.apply('close');
      s.peer?.tryApply('peer-close');
    }
    s.released = true;
    s.pump?.appClosed();
    this.#maybeFree(s);
  }

  reset(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
    this.counters.resets++;
    s.tryApply('reset');
    s.released = true;
    this.#resetPeer(s, ferryError('ECONNRESET', 'peer reset the session'));
    s.pump?.appReset();
    this.#maybeFree(s);
  }

  /** The app detached or died: its sessions reset (RST for TCP), its listeners and segments go. */
  appGone(app: App): void {
    for (const id of app.listeners) this.#removeListener(id);
    app.listeners.clear();
    for (const id of [...app.sessions]) {
      const s = this.sessions.get(id);
      if (!s) continue;
      s.tryApply('reset');
      s.released = true;
      this.#resetPeer(s, ferryError('ECONNRESET', 'peer app went away'));
      s.pump?.abort();
      this.#maybeFree(s);
    }
    for (const segId of app.segments) {
      const seg = this.segments.get(segId);
      if (!seg) continue;
      const otherId = seg.appA === app.id ? seg.appB : seg.appA;
      if (otherId === DAEMON_PARTY_ID) {
        // ferryd's own side: its pumps there were aborted above, so it lets go at once.
        this.daemonEnd.leave(seg.id);
        this.#daemonParty.segments.delete(seg.id);
        this.segments.unmappedBy(seg, DAEMON_PARTY_ID);
      } else {
        const other = this.#apps.get(otherId);
        if (other && other !== app && seg.mappedBy.has(other.id)) {
          other.send({ t: 'segment-del', id: 0, segment: seg.id });
        }
      }
      this.segments.unmappedBy(seg, app.id);
    }
    app.segments.clear();
  }

  /** ferryd stops: kernel listeners close, TCP sessions are reset. */
  stop(): void {
    for (const id of [...this.tcpServers.keys()]) this.#removeListener(id);
    for (const s of [...this.sessions.values()]) s.pump?.abort();
    this.udp.stop();
    this.daemonEnd.close();
  }

  /** The app unmapped a segment after segment-del. */
  segmentReleased(app: App, segmentId: number): void {
    const seg = this.segments.get(segmentId);
    if (!seg?.mappedBy.has(app.id)) {
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `segment ${segmentId}`);
    }
    app.segments.delete(seg.id);
    if (seg.appA === DAEMON_PARTY_ID || seg.appB === DAEMON_PARTY_ID) {
      // ferryd never sends segment-del for its own segments: an app that lets one go anyway
      // loses its TCP sessions there, and ferryd lets go too, so the memory cannot leak.
      for (const id of [...app.sessions]) {
        const sess = this.sessions.get(id);
        if (!sess || sess.segmentId !== seg.id) continue;
        sess.tryApply('reset');
        sess.released = true;
        sess.pump?.abort();
        this.#maybeFree(sess);
      }
      this.daemonEnd.leave(seg.id);
      this.#daemonParty.segments.delete(seg.id);
      this.segments.unmappedBy(seg, DAEMON_PARTY_ID);
    }
    this.segments.unmappedBy(seg, app.id);
  }

  #resetPeer(s: Session, err: FerryError): void {
    if (s.peer) this.peerReset(s.peer, err);
  }

  /** The other end of `s` (an app or the network) reset it: tell `s`'s app, once. */
  peerReset(s: Session, err: FerryError): void {
    if (s.released || !s.tryApply('peer-reset')) return;
    this.#apps.get(s.appId)?.send({
      t: 'session-reset',
      id: 0,
      session: s.id,
      st: statusOf(err.code),
      err: err.message,
    });
  }

  #maybeFree(s: Session): void {
    const p = s.peer;
    if (s.freed || !s.released || (p && !p.released) || (s.pump && !s.pump.done)) return;
    for (const end of p ? [s, p] : [s]) {
      if (sessionFreed.hasSubscribers) sessionFreed.publish({ owner: this, session: end });
      end.freed = true;
      this.sessions.delete(end.id);
      this.#apps.get(end.appId)?.sessions.delete(end.id);
    }
    this.segments.get(s.segmentId)?.freePair(s.slot);
  }

  /**
   * A local `tls://` connect skips TLS (cut-through) only when both ends allow it and the client
   * would have accepted the listener's certificate in a handshake; otherwise it goes through real
   * TLS to the kernel listener, where the client's verification has its say.
   */
  #cutThroughAllowed(listenerId: number, uri: SessionUri, opts: TlsOptions | undefined): boolean {
    if (uri.scheme !== 'tls') return true;
    const tls = this.tlsListeners.get(listenerId);
    if (!tls?.cutThrough || opts?.cutThrough === false) return false;
    return clientWouldAccept(tls.chain, uri, opts);
  }

  #removeListener(listenerId: number): void {
    this.listeners.remove(listenerId);
    this.tlsListeners.delete(listenerId);
    const server = this.tcpServers.get(listenerId);
    if (server) {
      this.tcpServers.delete(listenerId);
      server.close();
    }
    this.udp.listenerRemoved(listenerId);
  }

  // ---- shared with the datagram endpoints (udp-endpoints.ts) ----

  /** A cut-through fifo pair between two apps' sessions (`server` hears of it from the caller). */
  pairApps(
    client: App,
    server: App,
    clientTx: number,
    clientRx: number,
    clientUri: string,
    serverUri: string,
    listenerId: number,
  ): { c: Session; s: Session } {
    const { seg, pair } = this.segments.place(client, server, clientTx, clientRx, (sg) => this.#announce(sg));
    // Sides by role, not by app id: in a self-pair both ends belong to one app.
    const clientSide = seg.sideOf(client.id);
    const c = this.#newSession(client, seg, pair.slot, clientSide, clientUri, serverUri, 0, 'ct');
    const serverSide = clientSide === 'a' ? 'b' : 'a';
    const s = this.#newSession(server, seg, pair.slot, serverSide, serverUri, clientUri, listenerId, 'ct');
    c.peer = s;
    s.peer = c;
    return { c, s };
  }

  /** A session whose other end is ferryd; `daemonRef` is the fifo pair as ferryd's side sees it. */
  placeWithDaemon(
    app: App,
    appTx: number,
    appRx: number,
    local: string,
    remote: string,
    listenerId: number,
    transport: SessionTransport,
  ): { session: Session; ds: DaemonSegment; daemonRef: FifoPairRef } {
    const { seg, pair } = this.segments.place(app, this.#daemonParty, appTx, appRx, (sg) =>
      this.#announce(sg),
    );
    const ds = this.daemonEnd.get(seg.id);
    if (!ds) {
      seg.freePair(pair.slot);
      throw ferryError('ERR_FERRY_SESSION_STATE', `segment ${seg.id} has no daemon side`);
    }
    const s = this.#newSession(app, seg, pair.slot, seg.sideOf(app.id), local, remote, listenerId, transport);
    const own = this.#fifoRef(s);
    // ferryd's side is the mirror of the app's: it reads what the app writes.
    const daemonRef: FifoPairRef = {
      ...own,
      rxOffset: own.txOffset,
      txOffset: own.rxOffset,
      rxSize: own.txSize,
      txSize: own.rxSize,
    };
    return { session: s, ds, daemonRef };
  }

  fifoRefOf(s: Session): FifoPairRef {
    return this.#fifoRef(s);
  }

  /** Frees the session's fifo pair once both ends (and ferryd's pump) let go. */
  release(s: Session): void {
    this.#maybeFree(s);
  }

  dropListener(listenerId: number): void {
    this.#removeListener(listenerId);
  }

  /**
   * True when `app` holds maxSessionsPerApp sessions once the notices already sent to ferryd are
   * read. The SDK sends an orderly close lazily (with its next ring, or LAZY_RING_MS later), and a
   * session is freed only when both of its ends let go: sessions already let go of may still be
   * counted. So at the limit, the channels of `app` and of its sessions' peers are read first;
   * never that of `requester`, whose request is being handled: what it sent before is in already.
   */
  #atLimitAfterNotices(app: App, requester: App | null): boolean {
    const max = this.#config.maxSessionsPerApp;
    if (app.sessions.size < max) return false;
    const owners = new Set<App>([app]);
    for (const id of app.sessions) {
      const peer = this.sessions.get(id)?.peer;
      const other = peer && !peer.released ? this.#apps.get(peer.appId) : undefined;
      if (other) owners.add(other);
    }
    if (requester) owners.delete(requester);
    for (const a of owners) a.channel.drain();
    return app.sessions.size >= max;
  }

  /** Throws ERR_FERRY_LIMIT (counted) when `client` holds maxSessionsPerApp sessions. */
  checkSessionLimit(client: App): void {
    if (this.#atLimitAfterNotices(client, client)) {
      this.policy.counters.limitHits.maxSessionsPerApp++;
      throw ferryError(
        'ERR_FERRY_LIMIT',
        `maxSessionsPerApp (${this.#config.maxSessionsPerApp}): app ${client.id} has ${client.sessions.size} sessions`,
      );
    }
  }

  /** `target` is where to connect (an address the rules resolved); `named` is what the app asked
   *  for, whose host a TLS handshake verifies. */
  async #connectTcp(client: App, req: Connect, target: SessionUri, named: SessionUri): Promise<ConnectReply> {
    this.checkSessionLimit(client);
    const uri = target;
    const started = Date.now();
    let socket: Socket;
    try {
      socket = await connectTcp(uri, this.#config.tcpConnectTimeoutMs);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'ECONNREFUSED') this.counters.refused++;
      throw err;
    }
    const raw = socket;
    if (uri.scheme === 'tls' && this.#apps.get(client.id) === client) {
      // One deadline for connect and handshake: the app must hear before its own request times out.
      const left = Math.max(1, this.#config.tcpConnectTimeoutMs - (Date.now() - started));
      try {
        socket = await connectTls(raw, named, req.tls, left);
      } catch (err) {
        this.counters.tlsFailures++;
        throw err;
      }
    }
    if (this.#apps.get(client.id) !== client) {
      raw.resetAndDestroy();
      if (socket !== raw) socket.destroy();
      throw ferryError('ERR_FERRY_NOT_ATTACHED', 'app went away while connecting');
    }
    const local = tcpUri(raw.localAddress, raw.localPort, uri.scheme);
    // The peer is the address we connected to: a numeric IPv4 target needs no getpeername().
    const remote = isIPv4(uri.host)
      ? tcpUri(uri.host, uri.port, uri.scheme)
      : tcpUri(raw.remoteAddress, raw.remotePort, uri.scheme);
    let s: Session;
    try {
      const appTx = fifoSizeFor(this.#config, req.txFifoSize);
      const appRx = fifoSizeFor(this.#config, req.rxFifoSize);
      s = this.#placeTcp(client, socket, raw, appTx, appRx, local, remote, 0);
    } catch (err) {
      raw.resetAndDestroy();
      if (socket !== raw) socket.destroy();
      throw err;
    }
    this.counters.tcpConnects++;
    const reply: ConnectReply = {
      t: 'connect-reply',
      id: req.id,
      st: 0,
      err: '',
      session: s.id,
      fifos: this.#fifoRef(s),
      localUri: local,
      remoteUri: remote,
      fds: [],
      transport: s.transport,
    };
    return reply;
  }

  /**
   * A kernel connection to a `tls://` listener: the app hears of it only once the handshake is
   * done (a client that fails it costs the app nothing).
   */
  #acceptTls(listenerId: number, tls: ServerTls, raw: Socket): void {
    if (raw.remoteAddress === undefined || !this.listeners.get(listenerId)) {
      raw.resetAndDestroy();
      return;
    }
    acceptTls(raw, tls, this.#config.tcpConnectTimeoutMs).then(
      (socket) => this.#acceptTcp(listenerId, raw, socket),
      (err: Error) => {
        this.counters.tlsFailures++;
        this.#log(`tls accept on listener ${listenerId} failed: ${err.message}`);
      },
    );
  }

  /** A kernel connection to one of the apps' listeners: a session whose other end is ferryd. */
  #acceptTcp(listenerId: number, raw: Socket, socket: Socket = raw): void {
    const l = this.listeners.get(listenerId);
    const app = l ? this.#apps.get(l.appId) : undefined;
    const reset = () => {
      if (!raw.destroyed) raw.resetAndDestroy();
      if (socket !== raw) socket.destroy();
    };
    if (!l || !app || raw.remoteAddress === undefined) {
      reset();
      return;
    }
    if (this.#atLimitAfterNotices(app, null)) {
      this.counters.refused++;
      reset();
      return;
    }
    // A listener bound to one IPv4 address accepts on that address: no getsockname() needed.
    const bound = bindHost(l.uri.host);
    const local =
      bound !== '0.0.0.0' && isIPv4(bound)
        ? tcpUri(bound, l.uri.port, l.uri.scheme)
        : tcpUri(raw.localAddress, raw.localPort, l.uri.scheme);
    const remote = tcpUri(raw.remoteAddress, raw.remotePort, l.uri.scheme);
    let s: Session;
    try {
      const size = this.#config.defaultFifoSizeBytes;
      s = this.#placeTcp(app, socket, raw, size, size, local, remote, l.id);
    } catch (err) {
      this.#log(`tcp accept on listener ${l.id} dropped: ${(err as Error).message}`);
      reset();
      return;
    }
    l.accepted++;
    this.counters.accepted++;
    this.counters.tcpAccepts++;
    app.send(
      {
        t: 'accepted',
        id: 0,
        listener: l.id,
        session: s.id,
        fifos: this.#fifoRef(s),
        localUri: local,
        remoteUri: remote,
        fds: [],
        transport: s.transport,
      },
      [],
      'soon',
    );
  }

  /**
   * Places a fifo pair between `app` and ferryd and starts the pump that serves `socket` (a TLS
   * socket over `raw`, or `raw` itself).
   */
  #placeTcp(
    app: App,
    socket: Socket,
    raw: Socket,
    appTx: number,
    appRx: number,
    local: string,
    remote: string,
    listenerId: number,
  ): Session {
    const transport = socket === raw ? 'tcp' : 'tls';
    const {
      session: s,
      ds,
      daemonRef,
    } = this.placeWithDaemon(app, appTx, appRx, local, remote, listenerId, transport);
    const pump = new TcpPump(
      socket,
      ds,
      daemonRef,
      {
        onRemoteFin: () => {
          s.tryApply('peer-fin');
        },
        onAppFin: () => {
          s.tryApply('shutdown');
        },
        onRemoteReset: (err) => {
          this.counters.resets++;
          this.peerReset(s, err);
        },
        onDone: () => this.#maybeFree(s),
      },
      raw,
    );
    s.pump = pump;
    pump.start();
    return s;
  }

  #own(app: App, sessionId: number): Session {
    const s = this.sessions.get(sessionId);
    if (!s || s.appId !== app.id) throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `session ${sessionId}`);
    return s;
  }

  #newSession(
    app: App,
    seg: PairSegment,
    slot: number,
    side: 'a' | 'b',
    local: string,
    remote: string,
    listenerId: number,
    transport: SessionTransport,
  ): Session {
    const s = new Session({
      id: this.#nextSession++,
      appId: app.id,
      localUri: local,
      remoteUri: remote,
      segmentId: seg.id,
      slot,
      side,
      listenerId,
      transport,
    });
    this.sessions.set(s.id, s);
    app.sessions.add(s.id);
    if (sessionOpened.hasSubscribers) sessionOpened.publish({ owner: this, session: s });
    return s;
  }

  #fifoRef(s: Session): FifoPairRef {
    const seg = this.segments.get(s.segmentId);
    const slotPair = seg?.pairAt(s.slot);
    if (!seg || !slotPair) throw new FerryError('ERR_FERRY_SESSION_STATE', `slot ${s.slot} has no fifo pair`);
    const aSide = s.side === 'a';
    return {
      segment: seg.id,
      txOffset: aSide ? slotPair.a2bOffset : slotPair.b2aOffset,
      rxOffset: aSide ? slotPair.b2aOffset : slotPair.a2bOffset,
      txSize: aSide ? slotPair.a2bSize : slotPair.b2aSize,
      rxSize: aSide ? slotPair.b2aSize : slotPair.a2bSize,
      slot: s.slot,
    };
  }

  /** Tells both apps of a new pair segment: its memfd and the other app's doorbell ride along. */
  #announce(seg: PairSegment): void {
    if (seg.appA === DAEMON_PARTY_ID || seg.appB === DAEMON_PARTY_ID) {
      this.#announceToApp(seg);
      return;
    }
    const a = this.#apps.get(seg.appA);
    const b = this.#apps.get(seg.appB);
    if (!a || !b) return;
    const msg = (rx: number, tx: number): SegmentAdd => ({
      t: 'segment-add',
      id: 0,
      segment: seg.id,
      size: seg.segment.size,
      rxQueueOffset: rx,
      txQueueOffset: tx,
      queueCapacity: seg.queueCapacity,
      maxSlot: seg.maxSlot,
      fds: ['segment', 'doorbell'],
    });
    if (a === b) {
      // A self-pair drains and posts one queue: one process, one thread, still single-producer.
      a.send(msg(seg.queueToA, seg.queueToA), [seg.segment.fd, a.doorbellFd]);
      return;
    }
    a.send(msg(seg.queueToA, seg.queueToB), [seg.segment.fd, b.doorbellFd]);
    b.send(msg(seg.queueToB, seg.queueToA), [seg.segment.fd, a.doorbellFd]);
  }

  /** A segment shared with ferryd itself: ferryd maps its side, the app gets ferryd's doorbell. */
  #announceToApp(seg: PairSegment): void {
    const appId = seg.appA === DAEMON_PARTY_ID ? seg.appB : seg.appA;
    const app = this.#apps.get(appId);
    if (!app) return;
    this.daemonEnd.join(seg, app.doorbellFd);
    const aSide = seg.sideOf(app.id) === 'a';
    app.send(
      {
        t: 'segment-add',
        id: 0,
        segment: seg.id,
        size: seg.segment.size,
        rxQueueOffset: aSide ? seg.queueToA : seg.queueToB,
        txQueueOffset: aSide ? seg.queueToB : seg.queueToA,
        queueCapacity: seg.queueCapacity,
        maxSlot: seg.maxSlot,
        fds: ['segment', 'doorbell'],
      },
      [seg.segment.fd, this.daemonEnd.doorbell.ringFd],
    );
  }

  #clientPort(): number {
    const p = this.#ephemeralPort;
    this.#ephemeralPort = p >= 65535 ? 49152 : p + 1;
    return p;
  }
}
