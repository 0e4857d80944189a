/**
 * Every control message the SDK sends to ferryd is built here, and nowhere else: pure functions
 * from typed parameters to the wire message (the id is the attachment's business and is filled in
 * when the message is sent). `session-control.ts` sends them for sockets, servers and channels;
 * `attachment.ts` for the attachment itself (hello, segment release, giving up on a session).
 * A test scans the rest of the SDK for message literals, so a new request lands here too.
 */
import type {
  Accepted,
  Accepts,
  Adopt,
  Close,
  Connect,
  DgramBind,
  DgramConnect,
  FastOpen,
  FifoPairRef,
  Hello,
  Listen,
  Notices,
  PoolRelease,
  Reset,
  SegmentReleased,
  Shutdown,
  TlsOptions,
  Unlisten,
} from '../proto/ctrl/messages.js';
import { FEATURE, PROTO_MIN_VERSION, PROTO_VERSION } from '../proto/ctrl/messages.js';
import type { SessionUri } from '../proto/uri.js';
import type { PairMemory, PoolTie } from './app-session.js';

export interface HelloParams {
  name: string;
  namespace: string;
  token: string;
  /** Set on a reattach: how many times this attachment has come back (ferryd counts them). */
  reattach?: number;
}

/** HELLO; its fds are the attachment's wake pipe and data doorbell, in this order. */
export function helloMessage(p: HelloParams): Hello {
  return {
    t: 'hello',
    id: 0,
    version: PROTO_VERSION,
    minVersion: PROTO_MIN_VERSION,
    features:
      FEATURE.CUT_THROUGH |
      FEATURE.HALF_CLOSE |
      FEATURE.EVENT_QUEUE |
      FEATURE.DATAGRAM |
      FEATURE.FAST_CONNECT |
      FEATURE.NOTICE_BATCH |
      FEATURE.LENT_LISTENER |
      FEATURE.LENT_SOCKETS,
    name: p.name,
    namespace: p.namespace,
    token: p.token,
    fds: ['wake', 'doorbell'],
    ...(p.reattach !== undefined ? { reattach: p.reattach } : {}),
  };
}

export interface ConnectParams {
  uri: string;
  /** Fifo sizes in bytes (ferryd rounds them up to a power of two); 0 or absent: its default. */
  rxFifoSize?: number;
  txFifoSize?: number;
  tls?: TlsOptions;
  /** Ask for the kernel socket itself when the peer is remote (tcp:// handoff). */
  handoff?: boolean;
}

export function connectMessage(p: ConnectParams): Connect {
  return {
    t: 'connect',
    id: 0,
    uri: p.uri,
    rxFifoSize: p.rxFifoSize ?? 0,
    txFifoSize: p.txFifoSize ?? 0,
    ...(p.tls ? { tls: p.tls } : {}),
    ...(p.handoff ? { handoff: true } : {}),
  };
}

export interface ListenParams {
  uri: string;
  tls?: TlsOptions;
  handoff?: boolean;
}

export function listenMessage(p: ListenParams): Listen {
  return {
    t: 'listen',
    id: 0,
    uri: p.uri,
    ...(p.tls ? { tls: p.tls } : {}),
    ...(p.handoff ? { handoff: true } : {}),
  };
}

export function unlistenMessage(listener: number): Unlisten {
  return { t: 'unlisten', id: 0, listener };
}

/** ADOPT: a handed kernel socket (the one fd, role 'socket') reported to a ferryd that restarted. */
export function adoptMessage(listener = 0): Adopt {
  return { t: 'adopt', id: 0, listener, fds: ['socket'] };
}

export interface DgramBindParams {
  uri: string;
  rxFifoSize?: number;
  txFifoSize?: number;
}

export function dgramBindMessage(p: DgramBindParams): DgramBind {
  return { t: 'dgram-bind', id: 0, uri: p.uri, rxFifoSize: p.rxFifoSize ?? 0, txFifoSize: p.txFifoSize ?? 0 };
}

export interface DgramConnectParams extends DgramBindParams {
  /** The local endpoint (dgram-bind's reply) that sends to `uri`. */
  endpoint: number;
}

export function dgramConnectMessage(p: DgramConnectParams): DgramConnect {
  return {
    t: 'dgram-connect',
    id: 0,
    endpoint: p.endpoint,
    uri: p.uri,
    rxFifoSize: p.rxFifoSize ?? 0,
    txFifoSize: p.txFifoSize ?? 0,
  };
}

/**
 * The one-way notices about a session: `shutdown` (a cut-through session sent FIN), `close` (this
 * end let go in order) and `reset` (abort: ferryd resets what it carries, the peer sees ECONNRESET).
 */
export type SessionNotice = 'shutdown' | 'close' | 'reset';

export function sessionNoticeMessage(kind: SessionNotice, session: number): Shutdown | Close | Reset {
  return { t: kind, id: 0, session };
}

export function segmentReleasedMessage(segment: number): SegmentReleased {
  return { t: 'segment-released', id: 0, segment };
}

/** One-way: this app took the pool pair whose session id ferryd reserved for it (fast-pools.ts). */
export function fastOpenMessage(session: number): FastOpen {
  return { t: 'fast-open', id: 0, session };
}

/** One-way: several session notices at once, `ops` = [op, session, ...] (NOTICE_OP). */
export function noticesMessage(ops: number[]): Notices {
  return { t: 'notices', id: 0, ops };
}

/** What an app reports of the connections it accepted itself on a lent listener (absolute figures). */
export interface AcceptsParams {
  listener: number;
  window: number;
  open: number;
  waiting: number;
  total: number;
  refused: number;
}

/** One-way: the state of a lent listener (lent-listener.ts); the latest notice is the truth. */
export function acceptsMessage(p: AcceptsParams): Accepts {
  return {
    t: 'accepts',
    id: 0,
    listener: p.listener,
    window: p.window,
    open: p.open,
    waiting: p.waiting,
    total: p.total,
    refused: p.refused,
  };
}

/** One-way: this app has let go of a pool ferryd revoked. */
export function poolReleaseMessage(pool: number): PoolRelease {
  return { t: 'pool-release', id: 0, pool };
}

/**
 * Not sent: the `accepted` event a fast connect stands for (ferryd described the pair in
 * `pool-serve`; the client announced it on the event queue), so a listener takes it exactly as
 * one from ferryd.
 */
export function poolAccepted(
  listener: number,
  session: number,
  fifos: FifoPairRef,
  localUri: string,
  remoteUri: string,
  ends: PoolAccepted['ends'],
): PoolAccepted {
  return {
    t: 'accepted',
    id: 0,
    listener,
    session,
    fifos,
    localUri,
    remoteUri,
    fds: [],
    transport: 'ct',
    ends,
  };
}

/**
 * A fast connect's `accepted`, with its two ends already parsed: the pool parsed its local URI once,
 * and the remote end is a port on 127.0.0.1, so a server's socket parses no URI per accept.
 */
export interface PoolAccepted extends Accepted {
  readonly ends: { readonly local: SessionUri; readonly remote: SessionUri };
  /** How the accepted session's pair goes back to its pool (set by fast-pools.ts). */
  tie?: PoolTie;
  /** The pair's fifo views, kept by the pool across its sessions (set by fast-pools.ts). */
  memory?: PairMemory | null;
}
