/**
 * The session layer: listens, connects, and the life of sessions (VPP's session.c). It owns the
 * session table, the state transitions, the limits and the one teardown; how a session's bytes
 * travel is a transport's business (transport/transport.ts), found by URI scheme. A connect the
 * rules route to a local listener that admits it is joined by cut-through (transport/cut-through.ts)
 * whatever its scheme: ferryd never touches those bytes, it only sets up the fifo pair and tears
 * it down.
 */

import {
  type Accepts,
  type Adopt,
  type Connect,
  type ConnectReply,
  close,
  type DgramBind,
  type DgramBindReply,
  type DgramConnect,
  FerryError,
  type FifoPairRef,
  ferryError,
  formatUri,
  type ListenReply,
  parseUri,
  type TlsOptions,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { type Listener, ListenerTable } from '../app/listener-table.js';
import { type DaemonConfig, fifoSizeFor } from '../config.js';
import { type Logger, silentLogger } from '../log/logger.js';
import { sessionFreed, sessionOpened } from '../obs/events.js';
import { Policy } from '../policy/policy.js';
import type { PairSegment } from '../segment/pair-segment.js';
import { SegmentManager, type SegmentParty } from '../segment/segment-manager.js';
import { builtinTransports, type TransportFactory } from '../transport/builtin.js';
import { CutThrough } from '../transport/cut-through.js';
import { DAEMON_PARTY_ID, DaemonEnd } from '../transport/daemon-end.js';
import { TransportRegistry } from '../transport/registry.js';
import type {
  EndEvents,
  ListenRequest,
  Opened,
  Placed,
  Placement,
  SessionLayerCounters,
  Transport,
  TransportHost,
  TransportListener,
} from '../transport/transport.js';
import { type FastPool, FastPools, type PoolPairRec } from './fast-pools.js';
import { Session, type SessionTransport } from './session.js';
import {
  acceptedEvent,
  connectReply,
  dgramBindReply,
  listenReply,
  segmentAdd,
  segmentDel,
  sessionReset,
  withFds,
} from './wire.js';

export type { SessionLayerCounters } from '../transport/transport.js';

export class SessionLayer implements TransportHost {
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
    fastConnects: 0,
    poolsGranted: 0,
    poolsRevoked: 0,
    poolsGrown: 0,
    poolReclaims: 0,
  };
  /** ferryd's own end of the pair segments it shares with apps for the sessions it terminates. */
  readonly daemonEnd = new DaemonEnd();
  readonly transports: TransportRegistry;
  readonly config: DaemonConfig;
  readonly policy: Policy;
  readonly #cutThrough: CutThrough;
  /** Fifo pairs lent for fast connects (session/fast-pools.ts). */
  readonly pools: FastPools;
  /** Transport sides of the listeners, by listener id (cut-through-only listeners have none). */
  readonly #open = new Map<number, TransportListener>();
  #daemonParty: SegmentParty = { id: DAEMON_PARTY_ID, segments: new Set<number>() };
  #apps: ReadonlyMap<number, App>;
  readonly log: Logger;
  #nextSession = 1;
  #ephemeralPort = 49152;
  /** Sessions made now are fast connects the pools' sampling counted already (#materialize). */
  #openCounted = false;
  /**
   * Work left for after the reply of each request being handled, innermost last: a request read
   * from another app's channel while one is handled (a channel drained inside it) has its own.
   */
  readonly #afterReply: (() => void)[][] = [];

  constructor(
    config: DaemonConfig,
    apps: ReadonlyMap<number, App>,
    log: Logger = silentLogger,
    policy: Policy = new Policy(config),
    transports: TransportFactory = builtinTransports,
  ) {
    this.config = config;
    this.#apps = apps;
    this.log = log;
    this.policy = policy;
    this.segments = new SegmentManager(config, policy.counters);
    this.#cutThrough = new CutThrough(this);
    this.pools = new FastPools({
      config,
      counters: this.counters,
      attached: (app) => this.attached(app),
      reserveSessionId: () => this.#nextSession++,
      clientPort: () => this.#clientPort(),
      liveSegment: (id) => this.segments.get(id),
      materialize: (pool, rec, counted) => this.#materialize(pool, rec, counted),
      closeEnd: (app, id) => this.close(app, id),
      afterReply: (fn) => this.afterReply(fn),
      reclaim: (pool) => {
        // A channel being read already (the message that asked for this top-up) reads on after it.
        pool.server.channel.drain();
        if (pool.client !== pool.server) pool.client.channel.drain();
      },
      session: (id) => this.sessions.get(id),
    });
    this.transports = new TransportRegistry(transports(this, this.#cutThrough));
  }

  // ---- requests ----

  /**
   * The ctrl server is about to handle an app's request; endRequest() once its reply went out
   * (or, for one answered later, once the handler returned).
   */
  beginRequest(): void {
    this.#afterReply.push([]);
  }

  /** The reply of the request begun last went out: the work it left for after it runs now. */
  endRequest(): void {
    const left = this.#afterReply.pop();
    if (!left) return;
    for (const fn of left) {
      try {
        fn();
      } catch (err) {
        // Inside the request it would have failed the request; after its reply, no app is
        // waiting for the outcome, and the channel being read must read on.
        this.log.error(`work after a reply failed: ${(err as Error).message}`);
      }
    }
  }

  /**
   * Runs `fn` after the reply of the request being handled (at once outside one). For work that
   * reads other apps' channels: a message read there can end a session the reply opens (its
   * server's death resets it and deletes its segment), and a client must hear of a session
   * before any reset of it; told first, it dropped the reset of a session it did not know and
   * then bound the session (a socket never told its peer died) or found its segment gone.
   */
  afterReply(fn: () => void): void {
    const top = this.#afterReply.at(-1);
    if (top) top.push(fn);
    else fn();
  }

  /**
   * A listen: a cut-through listener and the transport's own (a kernel listener on the same
   * address; port 0 takes the port the kernel picks). Asynchronous: the kernel bind is.
   */
  async listen(
    app: App,
    id: number,
    uriText: string,
    tlsOpts?: TlsOptions,
    handoff?: boolean,
  ): Promise<ListenReply> {
    const uri = parseUri(uriText);
    if (handoff && uri.scheme !== 'tcp') {
      throw ferryError('ERR_INVALID_ARG_VALUE', `handoff needs a tcp:// URI, not ${uri.scheme}://`);
    }
    const t = this.transports.get(uri.scheme);
    if (t?.kind !== 'stream') {
      const why =
        t?.kind === 'datagram'
          ? `${uri.scheme}:// is for datagram sockets (dgram-bind)`
          : `${uri.scheme}:// listeners are not available yet`;
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', why);
    }
    if (tlsOpts && !t.tlsOptions) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `tls options need a tls:// URI, not ${uri.scheme}://`);
    }
    if (uri.port !== 0 && this.listeners.has(app.namespace, uri)) {
      throw ferryError('EADDRINUSE', formatUri(uri));
    }
    const { l, tl } = await this.#openListener(t, { app, uri, tls: tlsOpts, handoff: handoff === true });
    return listenReply(id, l.id, formatUri(tl.bound));
  }

  unlisten(app: App, listenerId: number): void {
    const l = this.listeners.get(listenerId);
    if (!l || l.appId !== app.id) throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `listener ${listenerId}`);
    this.#removeListener(listenerId);
    app.listeners.delete(listenerId);
  }

  /**
   * A connect: cut-through when the rules route it to a local listener that admits it (answered
   * at once); otherwise the scheme's transport, answered once it has connected or failed.
   */
  connect(client: App, req: Connect): ConnectReply | Promise<ConnectReply> {
    this.counters.connects++;
    const uri = parseUri(req.uri);
    const t = this.transports.get(uri.scheme);
    if (t?.kind === 'datagram') {
      throw ferryError(
        'ERR_FERRY_NOT_SUPPORTED',
        `${uri.scheme}:// is for datagram sockets (dgram-bind, dgram-connect)`,
      );
    }
    if (req.tls && !t?.tlsOptions) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `tls options need a tls:// URI, not ${uri.scheme}://`);
    }
    if (req.handoff && uri.scheme !== 'tcp') {
      throw ferryError('ERR_INVALID_ARG_VALUE', `handoff needs a tcp:// URI, not ${uri.scheme}://`);
    }
    // Rules first: a denied connect learns nothing else (not even whether a listener exists).
    const l = this.policy.routeLocal(client.namespace, uri, this.listeners);
    const server = l ? this.#apps.get(l.appId) : undefined;
    if (!l || !server || this.#open.get(l.id)?.admitsCutThrough(uri, req.tls) === false) {
      const connect = t?.connect?.bind(t);
      if (!connect) {
        throw ferryError('ERR_FERRY_NOT_SUPPORTED', `${uri.scheme}:// connects are not available yet`);
      }
      this.checkSessionLimit(client);
      return this.policy
        .routeRemote(client.namespace, uri)
        .then((target) => connect({ app: client, req, named: uri, target }))
        .then((opened) => this.#reply(req.id, opened));
    }
    this.checkSessionLimit(client);
    const full = this.atSessionLimit(server, client);
    // Those checks may have read other apps' channels: the server may have left (its detach, or
    // the end of a dead one) or closed the listener meanwhile. Nothing is opened to it then: its
    // end would never be reset, nor the segment announced or freed.
    if (!this.attached(server) || this.listeners.get(l.id) !== l) {
      this.counters.refused++;
      throw ferryError('ECONNREFUSED', `${formatUri(uri)}: the listener went away`);
    }
    if (full) {
      this.counters.refused++;
      throw ferryError('ECONNREFUSED', `listener's app has reached its session limit`);
    }
    const serverUri = formatUri(l.uri.host === '*' ? { ...l.uri, host: uri.host } : l.uri);
    const c = this.#cutThrough.join({
      client,
      server,
      listener: l,
      clientUri: formatUri({ scheme: uri.scheme, host: '127.0.0.1', port: this.#clientPort() }),
      serverUri,
      tx: fifoSizeFor(this.config, req.txFifoSize),
      rx: fifoSizeFor(this.config, req.rxFifoSize),
      ring: 'soon',
    });
    this.counters.accepted++;
    const reply = this.#reply(req.id, { session: c });
    // Every check a connect makes passed for exactly this URI: the next ones may skip ferryd. Only
    // for the default fifo sizes and without TLS options (what a pool's pairs are).
    if (req.tls === undefined && req.rxFifoSize === 0 && req.txFifoSize === 0) {
      const seg = this.segments.get(c.segmentId);
      if (seg) this.pools.afterConnect(client, server, l, req.uri, serverUri, seg);
    }
    return reply;
  }

  /** A datagram endpoint: the transport's kernel socket, the table entry, and its relay session. */
  async bind(app: App, req: DgramBind): Promise<DgramBindReply> {
    const uri = parseUri(req.uri);
    const t = this.transports.get(uri.scheme);
    if (t?.kind !== 'datagram') {
      throw ferryError('ERR_FERRY_BAD_URI', `dgram-bind takes udp:// addresses, not '${req.uri}'`);
    }
    if (uri.port !== 0 && this.listeners.has(app.namespace, uri)) throw ferryError('EADDRINUSE', req.uri);
    const { l, tl, opened } = await this.#openListener(t, {
      app,
      uri,
      txFifoSize: req.txFifoSize,
      rxFifoSize: req.rxFifoSize,
    });
    if (!opened) throw new FerryError('ERR_FERRY_SESSION_STATE', `endpoint ${l.id} has no session`);
    return dgramBindReply(req.id, l.id, formatUri(tl.bound), opened.session, this.fifoRef(opened.session));
  }

  /** The route from one of the app's datagram endpoints to `req.uri` (its transport decides). */
  connectDatagram(app: App, req: DgramConnect): ConnectReply {
    const own = this.listeners.get(req.endpoint);
    const t = own ? this.transports.get(own.uri.scheme) : undefined;
    if (!own || !t?.route)
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `datagram endpoint ${req.endpoint}`);
    return t.route(app, own, req);
  }

  /** A kernel socket handed to `app` by an earlier ferryd, reported back (`adopt`); `fd` is ours. */
  adopt(app: App, req: Adopt, fd: number): ConnectReply {
    const adopt = this.transports.get('tcp')?.adopt;
    if (!adopt) {
      close(fd);
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', 'no transport takes handed sockets back');
    }
    return this.#reply(req.id, adopt.call(this.transports.get('tcp'), app, req.listener, fd));
  }

  /** The configuration was reloaded: each transport rechecks what the rules may now deny. */
  policyChanged(): void {
    // Rules, limits or namespaces may have changed: no pool outlives the decision it was lent on.
    this.pools.revokeAll();
    for (const t of this.transports.values()) t.policyChanged?.();
  }

  /**
   * `fast-open`: of a lent socket, or of a fast-connect pair (which the SDK no longer sends; it
   * locks the pair, whose live connection enters the table, as any notice naming it does).
   */
  fastOpen(app: App, sessionId: number): void {
    if (this.sessions.get(sessionId)?.appId === app.id) return;
    if (!this.pools.open(app, sessionId) && !this.#lentTransport()?.fastOpen?.(app, sessionId)) {
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `session ${sessionId} is not a pool pair of this app`);
    }
  }

  /** The app let go of a revoked pool. */
  poolRelease(app: App, poolId: number): void {
    if (this.#lentTransport()?.poolRelease?.(app, poolId)) return;
    this.pools.release(app, poolId);
  }

  /** The transport that lends sockets (tcp://). */
  #lentTransport(): Transport | undefined {
    return this.transports.get('tcp');
  }

  reserveSessionId(): number {
    return this.#nextSession++;
  }

  shutdown(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
    if (s.end) {
      // A transport's end applies 'shutdown' when the app's FIN goes out (the SDK sends no notice
      // for it); a notice from an older SDK may come before or after.
      s.tryApply('shutdown');
      return;
    }
    s.apply('shutdown');
    s.peer?.tryApply('peer-fin');
  }

  /** The app let go of the session (orderly close, or acknowledging a reset). */
  close(app: App, sessionId: number): void {
    if (!this.sessions.has(sessionId) && this.#lentTransport()?.dropLent?.(app, sessionId)) return;
    const s = this.#own(app, sessionId);
    if (!s.terminal) {
      s.apply('close');
      s.peer?.tryApply('peer-close');
    }
    s.released = true;
    s.end?.close();
    this.#maybeFree(s);
  }

  reset(app: App, sessionId: number): void {
    if (!this.sessions.has(sessionId) && this.#lentTransport()?.dropLent?.(app, sessionId)) return;
    const s = this.#own(app, sessionId);
    this.counters.resets++;
    this.#teardown(s, 'reset', ferryError('ECONNRESET', 'peer reset the session'));
  }

  /** The app detached or died: its sessions reset (RST for TCP), its listeners and segments go. */
  appGone(app: App): void {
    // First: taken pairs enter the table (and the server hears pool-revoke before their resets).
    this.pools.appGone(app);
    for (const t of this.transports.values()) t.appGone?.(app);
    for (const id of app.listeners) this.#removeListener(id);
    app.listeners.clear();
    for (const id of [...app.sessions]) {
      const s = this.sessions.get(id);
      if (s) this.#teardown(s, 'abort', ferryError('ECONNRESET', 'peer app went away'));
    }
    for (const segId of app.segments) {
      const seg = this.segments.get(segId);
      if (!seg) continue;
      const otherId = seg.appA === app.id ? seg.appB : seg.appA;
      if (otherId === DAEMON_PARTY_ID) {
        // ferryd's own side: its ends there were aborted above, so it lets go at once.
        this.#leaveDaemonSegment(seg);
      } else {
        const other = this.#apps.get(otherId);
        if (other && other !== app && seg.mappedBy.has(other.id)) other.send(segmentDel(seg.id));
      }
      this.segments.unmappedBy(seg, app.id);
    }
    app.segments.clear();
  }

  /** ferryd stops: transport listeners close, sessions a transport carries are reset. */
  stop(): void {
    for (const id of [...this.#open.keys()]) this.#removeListener(id);
    for (const s of [...this.sessions.values()]) s.end?.abort();
    for (const t of this.transports.values()) t.stop?.();
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
      // loses its sessions there, and ferryd lets go too, so the memory cannot leak.
      for (const id of [...app.sessions]) {
        const sess = this.sessions.get(id);
        if (sess?.segmentId !== seg.id) continue;
        this.#teardown(sess, 'abort', ferryError('ECONNRESET', 'peer let go of the segment'));
      }
      this.#leaveDaemonSegment(seg);
    }
    this.segments.unmappedBy(seg, app.id);
  }

  /** Describes a listener's transports, for `ferry show listeners`. */
  describeListener(listenerId: number): string[] {
    return this.#open.get(listenerId)?.describe() ?? ['ct'];
  }

  /** Counters of each transport that keeps its own, by scheme (`ferry show stats`). */
  transportStats(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const t of this.transports.values()) {
      const st = t.stats?.();
      if (st) out[t.scheme] = st;
    }
    return out;
  }

  // ---- the one teardown ----

  /**
   * A session ends abnormally: it is reset, its app's hold on it ends, the other end hears of it
   * (a peer app gets `session-reset`), the transport's end resets (`reset`: the app asked) or is
   * dropped at once (`abort`: the app is gone), and the fifo pair goes when nothing holds it.
   */
  #teardown(s: Session, how: 'reset' | 'abort', err: FerryError): void {
    s.tryApply('reset');
    s.released = true;
    if (s.peer) this.#peerReset(s.peer, err);
    if (how === 'reset') s.end?.reset();
    else s.end?.abort();
    this.#maybeFree(s);
  }

  /** The other end of `s` (an app or the network) reset it: tell `s`'s app, once. */
  #peerReset(s: Session, err: FerryError): void {
    if (s.released || !s.tryApply('peer-reset')) return;
    this.#apps.get(s.appId)?.send(sessionReset(s.id, err));
  }

  #maybeFree(s: Session): void {
    const p = s.peer;
    if (s.freed || !s.released || (p && !p.released) || (s.end && !s.end.done)) return;
    for (const end of p ? [s, p] : [s]) {
      if (sessionFreed.hasSubscribers) sessionFreed.publish({ owner: this, session: end });
      end.freed = true;
      this.sessions.delete(end.id);
      this.#apps.get(end.appId)?.sessions.delete(end.id);
    }
    if (s.hasFifos) this.segments.get(s.segmentId)?.freePair(s.slot);
  }

  #leaveDaemonSegment(seg: PairSegment): void {
    this.daemonEnd.leave(seg.id);
    this.#daemonParty.segments.delete(seg.id);
    this.segments.unmappedBy(seg, DAEMON_PARTY_ID);
  }

  #removeListener(listenerId: number): void {
    this.pools.revokeListener(listenerId);
    this.listeners.remove(listenerId);
    const tl = this.#open.get(listenerId);
    if (tl) {
      this.#open.delete(listenerId);
      tl.close();
    }
  }

  /**
   * The transport binds first (port 0 takes the kernel's pick), then the listener goes in the
   * table and the transport starts accepting for it. Nothing is left behind on failure.
   */
  async #openListener(
    t: Transport,
    req: ListenRequest,
  ): Promise<{ l: Listener; tl: TransportListener; opened: Opened | null }> {
    const app = req.app;
    const tl = await t.listen(req);
    const l = this.attached(app) ? this.listeners.add(app.id, app.namespace, tl.bound) : null;
    if (!l) {
      tl.close();
      if (!this.attached(app)) throw ferryError('ERR_FERRY_NOT_ATTACHED', 'app went away');
      throw ferryError('EADDRINUSE', formatUri(tl.bound));
    }
    this.#open.set(l.id, tl);
    app.listeners.add(l.id);
    // A URI that reached another listener may reach this one now.
    this.pools.revokePort(l.uri.scheme, l.uri.port);
    try {
      return { l, tl, opened: tl.start(l) };
    } catch (err) {
      this.#open.delete(l.id);
      app.listeners.delete(l.id);
      this.listeners.remove(l.id);
      tl.close();
      throw err;
    }
  }

  /** The reply to a connect, with the fds its transport hands over. */
  #reply(id: number, o: Opened): ConnectReply {
    const s = o.session;
    const msg = connectReply(id, {
      session: s,
      fifos: s.hasFifos ? this.fifoRef(s) : null,
      fds: o.fds?.roles ?? [],
    });
    return o.fds ? withFds(msg, o.fds.fds) : msg;
  }

  // ---- TransportHost: what transports use ----

  app(id: number): App | undefined {
    return this.#apps.get(id);
  }

  attached(app: App): boolean {
    return this.#apps.get(app.id) === app;
  }

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
    const c = this.#newSession(client, seg.id, pair.slot, clientSide, clientUri, serverUri, 0, 'ct');
    const serverSide = clientSide === 'a' ? 'b' : 'a';
    const s = this.#newSession(server, seg.id, pair.slot, serverSide, serverUri, clientUri, listenerId, 'ct');
    c.peer = s;
    s.peer = c;
    return { c, s };
  }

  /** Both ends of a pool pair a client took, under the ids reserved for them, peers of each other. */
  #materialize(pool: FastPool, rec: PoolPairRec, counted: boolean): void {
    this.#openCounted = counted;
    try {
      this.#materializePair(pool, rec);
    } finally {
      this.#openCounted = false;
    }
  }

  #materializePair(pool: FastPool, rec: PoolPairRec): void {
    const clientSide = pool.seg.sideOf(pool.client.id);
    const serverSide = clientSide === 'a' ? 'b' : 'a';
    const clientUri = pool.clientUri(rec.port);
    const lid = pool.listener.id;
    const c = this.#newSession(
      pool.client,
      pool.seg.id,
      rec.slot,
      clientSide,
      clientUri,
      pool.serverUri,
      0,
      'ct',
      rec.clientId,
    );
    const s = this.#newSession(
      pool.server,
      pool.seg.id,
      rec.slot,
      serverSide,
      pool.serverUri,
      clientUri,
      lid,
      'ct',
      rec.serverId,
    );
    c.peer = s;
    s.peer = c;
    // Counted as a connect and an accept when ferryd first saw it taken (FastPools.sample).
    // A pool of an app that is going is revoked first thing in appGone: its sessions loop, which
    // follows, tears these down too.
  }

  place(p: Placement): Placed {
    const { app, local, remote, listenerId, transport } = p;
    let s: Session;
    let daemon: Placed['daemon'] = null;
    if (p.fifos === null) {
      s = this.#newSession(app, 0, -1, 'a', local, remote, listenerId, transport, p.id);
    } else {
      const { seg, pair } = this.segments.place(app, this.#daemonParty, p.fifos.tx, p.fifos.rx, (sg) =>
        this.#announce(sg),
      );
      const ds = this.daemonEnd.get(seg.id);
      if (!ds) {
        seg.freePair(pair.slot);
        throw ferryError('ERR_FERRY_SESSION_STATE', `segment ${seg.id} has no daemon side`);
      }
      s = this.#newSession(app, seg.id, pair.slot, seg.sideOf(app.id), local, remote, listenerId, transport);
      const own = this.fifoRef(s);
      // ferryd's side is the mirror of the app's: it reads what the app writes.
      const ref: FifoPairRef = {
        ...own,
        rxOffset: own.txOffset,
        txOffset: own.rxOffset,
        rxSize: own.txSize,
        txSize: own.rxSize,
      };
      daemon = { seg: ds, ref };
    }
    return { session: s, events: this.#eventsOf(s), daemon };
  }

  accepted(l: Listener, app: App, o: Opened): void {
    const s = o.session;
    l.accepted++;
    this.counters.accepted++;
    // Without a fifo pair (a handed kernel socket) what the app gets rides in the fds.
    const fifos = s.hasFifos ? this.fifoRef(s) : null;
    const msg = acceptedEvent(l.id, { session: s, fifos, fds: o.fds?.roles ?? [] });
    app.send(msg, o.fds?.fds ?? [], 'soon');
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
  atSessionLimit(app: App, requester: App | null): boolean {
    const max = this.config.maxSessionsPerApp;
    // Pairs lent for fast connects count as sessions of both apps until used (and so do the
    // windows of lent listeners: what the app may accept without asking)...
    if (this.sessionsHeld(app) < max) return false;
    // ...and give way to a connect that needs the room: the unused ones are voided at once.
    if (this.pools.reservedOf(app) > 0) {
      this.pools.revokeApp(app);
      if (this.sessionsHeld(app) < max) return false;
    }
    const owners = new Set<App>([app]);
    for (const id of app.sessions) {
      const peer = this.sessions.get(id)?.peer;
      const other = peer && !peer.released ? this.#apps.get(peer.appId) : undefined;
      if (other) owners.add(other);
    }
    if (requester) owners.delete(requester);
    for (const a of owners) a.channel.drain();
    // What was read may be `app` leaving: nothing is opened for it then (as if at its limit).
    if (!this.attached(app)) return true;
    return app.sessions.size + app.lentReserved >= max;
  }

  sessionsHeld(app: App): number {
    return app.sessions.size + this.pools.reservedOf(app) + app.lentReserved;
  }

  /** A lent listener's figures from its app (`accepts`, one-way). */
  lentAccepts(app: App, msg: Accepts): void {
    const l = this.listeners.get(msg.listener);
    const tl = l && l.appId === app.id ? this.#open.get(l.id) : undefined;
    if (!tl?.accepts)
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `listener ${msg.listener} is not lent to this app`);
    tl.accepts(msg);
  }

  /** A listener's own figures for `ferry show listeners` (a lent one's), else null. */
  listenerDetail(listenerId: number): Record<string, number> | null {
    return this.#open.get(listenerId)?.detail?.() ?? null;
  }

  /** Throws ERR_FERRY_LIMIT (counted) when `client` holds maxSessionsPerApp sessions. */
  checkSessionLimit(client: App): void {
    if (this.atSessionLimit(client, client)) {
      this.policy.counters.limitHits.maxSessionsPerApp++;
      throw ferryError(
        'ERR_FERRY_LIMIT',
        `maxSessionsPerApp (${this.config.maxSessionsPerApp}): app ${client.id} has ${client.sessions.size} sessions`,
      );
    }
  }

  fifoRef(s: Session): FifoPairRef {
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

  // ---- internals ----

  /** What a transport's end reports, as state transitions of `s`. */
  #eventsOf(s: Session): EndEvents {
    return {
      remoteFin: () => {
        s.tryApply('peer-fin');
      },
      appFin: () => {
        s.tryApply('shutdown');
      },
      remoteReset: (err) => this.#peerReset(s, err),
      done: () => this.#maybeFree(s),
    };
  }

  #own(app: App, sessionId: number): Session {
    // A notice naming a fast-connect pair's reserved id (the SDK sends one only for a pair it found
    // locked or could not open) locks the pair: its live connection enters the table first.
    if (!this.sessions.has(sessionId)) this.pools.open(app, sessionId);
    const s = this.sessions.get(sessionId);
    if (!s || s.appId !== app.id) throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `session ${sessionId}`);
    return s;
  }

  #newSession(
    app: App,
    segmentId: number,
    slot: number,
    side: 'a' | 'b',
    local: string,
    remote: string,
    listenerId: number,
    transport: SessionTransport,
    id: number = this.#nextSession++,
  ): Session {
    const s = new Session({
      id,
      appId: app.id,
      localUri: local,
      remoteUri: remote,
      segmentId,
      slot,
      side,
      listenerId,
      transport,
    });
    s.openCounted = this.#openCounted;
    this.sessions.set(s.id, s);
    app.sessions.add(s.id);
    if (sessionOpened.hasSubscribers) sessionOpened.publish({ owner: this, session: s });
    return s;
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
    const shape = {
      id: seg.id,
      size: seg.segment.size,
      queueCapacity: seg.queueCapacity,
      maxSlot: seg.maxSlot,
    };
    if (a === b) {
      // A self-pair drains and posts one queue: one process, one thread, still single-producer.
      a.send(segmentAdd(shape, seg.queueToA, seg.queueToA), [seg.segment.fd, a.doorbellFd]);
      return;
    }
    a.send(segmentAdd(shape, seg.queueToA, seg.queueToB), [seg.segment.fd, b.doorbellFd]);
    b.send(segmentAdd(shape, seg.queueToB, seg.queueToA), [seg.segment.fd, a.doorbellFd]);
  }

  /** A segment shared with ferryd itself: ferryd maps its side, the app gets ferryd's doorbell. */
  #announceToApp(seg: PairSegment): void {
    const appId = seg.appA === DAEMON_PARTY_ID ? seg.appB : seg.appA;
    const app = this.#apps.get(appId);
    if (!app) return;
    this.daemonEnd.join(seg, app.doorbellFd);
    const aSide = seg.sideOf(app.id) === 'a';
    const shape = {
      id: seg.id,
      size: seg.segment.size,
      queueCapacity: seg.queueCapacity,
      maxSlot: seg.maxSlot,
    };
    app.send(segmentAdd(shape, aSide ? seg.queueToA : seg.queueToB, aSide ? seg.queueToB : seg.queueToA), [
      seg.segment.fd,
      this.daemonEnd.doorbell.ringFd,
    ]);
  }

  #clientPort(): number {
    const p = this.#ephemeralPort;
    this.#ephemeralPort = p >= 65535 ? 49152 : p + 1;
    return p;
  }
}
