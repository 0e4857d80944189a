/**
 * The transport interface: how a session's bytes travel once the session layer has decided who
 * may talk to whom. The session layer (session/session-layer.ts) owns the session table, the
 * state transitions, the limits and the one teardown; a transport owns its kernel objects
 * (listening sockets, connections, relays) and ferryd's end of each session it carries.
 *
 * - listen: a transport binds its side of a listener (a kernel port) and, once the session layer
 *   has registered the listener in the table, starts accepting for it.
 * - accept: what a transport listener does with an inbound connection: it places a session
 *   through the host and reports it with `host.accepted()` (the listening app hears `accepted`).
 * - connect: an outgoing session, for a connect no local listener takes.
 * - close, reset: a session's end (SessionEnd in session/session.ts) does what the app asked.
 * - describe: what a listener serves, for `ferry show listeners`; `stats()` for `ferry show stats`.
 *
 * Transports are found by URI scheme (transport/registry.ts). A new one (a mode that hands the
 * kernel socket to the app, message channels, ...) is a module implementing this interface and a
 * line in transport/builtin.ts: the session layer does not change. A session without a fifo pair
 * is placed with `fifos: null`; whatever the app gets instead (a kernel socket) rides in
 * `Opened.fds`.
 */
import type {
  Connect,
  ConnectReply,
  DgramConnect,
  FdRole,
  FerryError,
  FifoPairRef,
  SessionUri,
  TlsOptions,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import type { Listener, ListenerTable } from '../app/listener-table.js';
import type { DaemonConfig } from '../config.js';
import type { Logger } from '../log/logger.js';
import type { Policy } from '../policy/policy.js';
import type { Session, SessionTransport } from '../session/session.js';
import type { DaemonSegment } from './daemon-end.js';

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
  /** Cut-through sessions a client opened from a pool, without a request (fast connects). */
  fastConnects: number;
  /** Fast-connect pools lent and revoked. */
  poolsGranted: number;
  poolsRevoked: number;
  /** Times a pool was found empty by a connect and grew (session/fast-pools.ts). */
  poolsGrown: number;
  /** Top-ups that found the segment full and read the apps' pending notices first. */
  poolReclaims: number;
}

/** What a session's end reports; the session layer turns each into a state transition. */
export interface EndEvents {
  /** The remote's FIN reached the app. */
  remoteFin(): void;
  /** The app's FIN went out on the transport: the session's shutdown. */
  appFin(): void;
  /** The transport failed or the remote reset: the app hears `session-reset` (once). */
  remoteReset(err: FerryError): void;
  /** The end no longer touches the session's resources: freed once the app let go too. */
  done(): void;
}

/** A session to put in the table, whose other end is ferryd (a transport). */
export interface Placement {
  app: App;
  local: string;
  remote: string;
  /** The listener it was accepted on; 0 for a connect. */
  listenerId: number;
  transport: SessionTransport;
  /** Fifo sizes the app asked for (bytes, already rounded); null: the session has no fifo pair. */
  fifos: { tx: number; rx: number } | null;
  /** A session id reserved earlier (reserveSessionId), for a fifo-less session. */
  id?: number;
}

export interface Placed {
  session: Session;
  events: EndEvents;
  /** ferryd's side of the fifo pair (tx = what ferryd writes); null without fifos. */
  daemon: { seg: DaemonSegment; ref: FifoPairRef } | null;
}

/** A session as it goes to its app, with the fds that ride along (SCM_RIGHTS). */
export interface Opened {
  session: Session;
  fds?: { roles: FdRole[]; fds: number[] };
}

/** What the session layer gives transports. */
export interface TransportHost {
  readonly config: DaemonConfig;
  readonly policy: Policy;
  readonly listeners: ListenerTable;
  readonly counters: SessionLayerCounters;
  readonly log: Logger;
  /** The attached app with this id. */
  app(id: number): App | undefined;
  /** True while `app` is attached (as this very object). */
  attached(app: App): boolean;
  /** Throws ERR_FERRY_LIMIT (counted) when `app` holds maxSessionsPerApp sessions. */
  checkSessionLimit(app: App): void;
  /** A session id for a session placed later (place() with `id`). */
  reserveSessionId(): number;
  /** What counts against `app`'s maxSessionsPerApp now: sessions, pool pairs, lent windows. */
  sessionsHeld(app: App): number;
  /** `app` is at maxSessionsPerApp once the notices already sent are read (not `requester`'s). */
  atSessionLimit(app: App, requester: App | null): boolean;
  /** Puts a session in the table (with ferryd's side of its fifo pair when asked for). */
  place(p: Placement): Placed;
  /** Tells the listening app of a session a transport listener accepted on `l`. */
  accepted(l: Listener, app: App, opened: Opened): void;
  /** The app's view of a session's fifo pair. */
  fifoRef(s: Session): FifoPairRef;
  /** Two apps' sessions joined by a fifo pair (cut-through). */
  pairApps(
    client: App,
    server: App,
    clientTx: number,
    clientRx: number,
    clientUri: string,
    serverUri: string,
    listenerId: number,
  ): { c: Session; s: Session };
  /** Removes a listener from the table (and its transport side). */
  dropListener(listenerId: number): void;
}

export interface ListenRequest {
  app: App;
  uri: SessionUri;
  tls?: TlsOptions | undefined;
  /** `tcp://`: hand accepted connections to the app instead of relaying them. */
  handoff?: boolean;
  /** Relay fifo sizes a datagram bind asked for (0: the default). */
  txFifoSize?: number;
  rxFifoSize?: number;
}

export interface ConnectRequest {
  app: App;
  req: Connect;
  /** What the app named (a TLS handshake verifies its host). */
  named: SessionUri;
  /** Where to connect: the address the rules resolved. */
  target: SessionUri;
}

/** A transport's side of a listener. */
export interface TransportListener {
  /** The address bound (the kernel's port when 0 was asked for). */
  readonly bound: SessionUri;
  /**
   * The listener is in the table as `l`: accept from now on. A listener that comes with a session
   * of its own (a datagram endpoint's relay) returns it.
   */
  start(l: Listener): Opened | null;
  /** Whether a local connect may be joined to this listener by cut-through. */
  admitsCutThrough(named: SessionUri, opts: TlsOptions | undefined): boolean;
  /** Transports a connect to this listener may take, for `ferry show listeners`. */
  describe(): string[];
  /** Stops accepting and releases the kernel side. */
  close(): void;
  /** A lent listener's figures as the app reports them (`accepts`; tcp-lent-listener.ts). */
  accepts?(f: { window: number; open: number; total: number; refused: number }): void;
  /** Figures for `ferry show listeners` beyond the transports (a lent listener's). */
  detail?(): Record<string, number>;
}

export interface Transport {
  /** The URI scheme it serves (registry key). */
  readonly scheme: string;
  /** 'stream': listen and connect; 'datagram': dgram-bind and dgram-connect. */
  readonly kind: 'stream' | 'datagram';
  /** Whether listen and connect take `tls` options. */
  readonly tlsOptions: boolean;
  listen(req: ListenRequest): Promise<TransportListener>;
  /** A stream transport's outgoing session; resolves once established. */
  connect?(req: ConnectRequest): Promise<Opened>;
  /**
   * A datagram transport's route from one of the app's endpoints (`from`, in the table) to
   * `req.uri`: a cut-through pair, or a reply saying "send through the endpoint's relay".
   */
  route?(app: App, from: Listener, req: DgramConnect): ConnectReply;
  /**
   * A kernel socket an app reports back after a ferryd restart (`adopt`; handoff mode): `fd` is
   * the transport's to keep or close, whatever happens.
   */
  adopt?(app: App, listenerId: number, fd: number): Opened;
  /** The configuration was reloaded: recheck what the rules may now deny. */
  policyChanged?(): void;
  /** `fast-open` of a session id the transport lent (a lent socket): false when not one of its. */
  fastOpen?(app: App, session: number): boolean;
  /** A close or reset of a lent session id never opened: false when not one of its. */
  dropLent?(app: App, session: number): boolean;
  /** `pool-release` of a pool the transport lent: false when not one of its. */
  poolRelease?(app: App, pool: number): boolean;
  /** The app detached or died. */
  appGone?(app: App): void;
  /** ferryd stops: release what is left. */
  stop?(): void;
  /** Counters for `ferry show stats`, under the transport's scheme. */
  stats?(): Record<string, number>;
}
