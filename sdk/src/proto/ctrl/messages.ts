/**
 * Control messages between an app (SDK) and ferryd: the types, one per message.
 *
 * One message per SOCK_SEQPACKET datagram, msgpack-encoded as a map. Every message has `t` (its
 * type) and `id`: a request's id is chosen by the sender and echoed in the reply; events from
 * ferryd carry id 0. Replies carry `st`: 0 on success, otherwise a negative wire status
 * (proto/ctrl/status.ts) and `err`, a human-readable message. File descriptors travel beside the
 * message (SCM_RIGHTS); `fds` names them in order, so a receiver never guesses which is which.
 */

export const PROTO_VERSION = 1;
/** Oldest protocol version this code still speaks. */
export const PROTO_MIN_VERSION = 1;
/** Largest encoded control message, in bytes. Anything larger is refused unread. */
export const CTRL_MAX_MESSAGE_BYTES = 16 * 1024;
/** Most file descriptors one message may carry. */
export const CTRL_MAX_FDS = 4;

/** Feature bits negotiated at HELLO: the reply holds the intersection. */
export const FEATURE = {
  CUT_THROUGH: 1,
  HALF_CLOSE: 2,
  EVENT_QUEUE: 4,
  /** `udp://` datagram endpoints: `dgram-bind`, `dgram-connect` (docs/control-protocol.md). */
  DATAGRAM: 8,
  /**
   * Fast connects: ferryd lends pairs of apps pools of fifo pairs (`pool-grant`, `pool-serve`),
   * their pairs packed in a bin, reused in place by the two apps (a generation and the ends' let-go
   * in each pair's reuse word) with no `fast-open` or `close` to ferryd. Bit 16 (pairs as maps) and
   * bit 256 (one pair per connection, `fast-open` and `close` notices) were earlier forms: a peer
   * that offers only those gets no pools (its connects go through ferryd).
   */
  FAST_CONNECT: 512,
  /** `notices`: several one-way session notices in one message (docs/control-protocol.md). */
  NOTICE_BATCH: 32,
  /** Lent listeners: ferryd lends a handoff listener's kernel socket to the app, which accepts
   *  itself (`listener-lent`, `accepts`; docs/internals.md, TCP handoff). */
  LENT_LISTENER: 64,
  /** Lent sockets: unconnected sockets for the app's next handoff connects (`sockets-lent`). */
  LENT_SOCKETS: 128,
} as const;

/** Most fifo pairs one `pool-grant` or `pool-serve` carries, and most slots one `pool-revoke` lists. */
export const POOL_MAX_PAIRS = 32;
export const POOL_MAX_SLOTS = 64;

/** 'socket': a connected kernel TCP socket ferryd hands to the app (handoff mode), or one the app
 *  reports back to a new ferryd (`adopt`). 'listener': a listening kernel TCP socket ferryd lends
 *  to the app (`listener-lent`). */
export type FdRole = 'doorbell' | 'wake' | 'segment' | 'socket' | 'listener';

export type NotifyMode = 'interrupt' | 'poll' | 'adaptive';

/** Where a fifo pair sits inside a segment the receiver already holds. */
export interface FifoPairRef {
  segment: number;
  /** Offset of the fifo this side reads. */
  rxOffset: number;
  /** Offset of the fifo this side writes. */
  txOffset: number;
  rxSize: number;
  txSize: number;
  /** Slot of this session in the pair's event queues (what peers post to say "data ready"). */
  slot: number;
}

/**
 * One fifo pair of a fast-connect pool, as its receiver sees it: the session id ferryd reserved for
 * the receiver's end, the client's port (the client's local address is 127.0.0.1:port), and the
 * pair (`fifos.txOffset` is the fifo the receiver writes).
 */
export interface PoolPair {
  session: number;
  port: number;
  fifos: FifoPairRef;
}

// ---- app -> ferryd requests ----

export interface Hello {
  t: 'hello';
  id: number;
  /** Highest protocol version the app speaks, and the oldest it accepts. */
  version: number;
  minVersion: number;
  features: number;
  name: string;
  namespace: string;
  /** Secret for the namespace; never logged or echoed. Empty when none. */
  token: string;
  /** Roles of the fds that come with this message: the app's doorbell (write end) and the
   *  companion pipe ferryd reads to learn the app sent something (read end). */
  fds: FdRole[];
  /** On a reattach: how many times this app has lost ferryd (1 after the first loss). Absent on
   *  a first attach, and from SDKs older than the field. */
  reattach?: number;
}

export interface Detach {
  t: 'detach';
  id: number;
}

export interface Listen {
  t: 'listen';
  id: number;
  uri: string;
  /** `tls://` only: the certificate and key to serve (else ferryd's configured ones), and whether
   *  local apps may reach this listener by cut-through. Absent for other schemes. */
  tls?: TlsOptions;
  /** `tcp://` only: hand each accepted kernel connection to the app (SCM_RIGHTS, fd role
   *  'socket') instead of relaying its bytes through fifos. Absent: relay. */
  handoff?: boolean;
}

export interface Unlisten {
  t: 'unlisten';
  id: number;
  listener: number;
}

export interface Connect {
  t: 'connect';
  id: number;
  uri: string;
  /** Requested fifo sizes in bytes (rounded up to a power of two; 0 = the daemon's default). */
  rxFifoSize: number;
  txFifoSize: number;
  /** `tls://` only: how ferryd verifies the server (CA, server name) and an optional client
   *  certificate. Absent for other schemes, or to take the defaults. */
  tls?: TlsOptions;
  /** `tcp://` only: when the connect goes to the network, hand the connected kernel socket to
   *  the app (connect-reply with fd role 'socket', no fifos) instead of relaying it. A local
   *  listener is still joined by cut-through. Absent: relay. */
  handoff?: boolean;
}

/**
 * A kernel TCP socket ferryd handed to this app earlier (the fd rides along, role 'socket'),
 * reported to a ferryd that restarted since, so that it counts, shows and polices it again.
 * ferryd takes the addresses from the kernel, not from the app. Answered with a connect-reply
 * (session id; fifos null; transport 'tcp-handoff').
 */
export interface Adopt {
  t: 'adopt';
  id: number;
  /** The app's listener the connection was accepted on (0: an outgoing connect, or unknown). */
  listener: number;
  fds: FdRole[];
}

/**
 * TLS parameters ferryd applies for a `tls://` listen or connect. Every field is optional; PEM
 * text travels inline (the app reads its own files: ferryd never opens a path an app names).
 */
export interface TlsOptions {
  /** PEM certificate chain (leaf first): a listener's, or a client certificate. */
  cert?: string;
  /** PEM private key matching `cert`. */
  key?: string;
  /** PEM CA certificates to trust instead of the system's roots (connect; a listener asking for
   *  client certificates is not supported). */
  ca?: string;
  /** Name to verify and send as SNI (connect); default: the URI's host unless it is an IP. */
  servername?: string;
  /** Connect: refuse a server whose certificate does not verify. Default true; false must be
   *  explicit. */
  rejectUnauthorized?: boolean;
  /** Whether a local session may skip TLS by cut-through (both ends must allow it). Default true. */
  cutThrough?: boolean;
}

/** Half-close: this side will write no more (FIN). */
export interface Shutdown {
  t: 'shutdown';
  id: number;
  session: number;
}

/** Orderly full close of a session by this side. */
export interface Close {
  t: 'close';
  id: number;
  session: number;
}

/** Abort a session: the peer sees ECONNRESET. */
export interface Reset {
  t: 'reset';
  id: number;
  session: number;
}

/**
 * Bind a `udp://` datagram endpoint: a local endpoint other apps reach through cut-through fifo
 * pairs, plus a kernel UDP socket (node:dgram) in ferryd for remote peers, relayed through a fifo
 * pair between the app and ferryd (the endpoint's relay session).
 */
export interface DgramBind {
  t: 'dgram-bind';
  id: number;
  uri: string;
  /** Relay fifo sizes in bytes (rounded up to a power of two; 0 = the daemon's default). */
  rxFifoSize: number;
  txFifoSize: number;
}

/**
 * Ask for the route from one of the app's datagram endpoints to `uri`: a cut-through fifo pair
 * when a local endpoint is bound there (answered with a `connect-reply`, transport `ct`), else
 * transport `udp` with no fifos: send through the relay session.
 */
export interface DgramConnect {
  t: 'dgram-connect';
  id: number;
  /** The sender's endpoint (from `dgram-bind-reply`). */
  endpoint: number;
  uri: string;
  rxFifoSize: number;
  txFifoSize: number;
}

/** The app has unmapped a segment ferryd told it to drop (or no longer needs). */
export interface SegmentReleased {
  t: 'segment-released';
  id: number;
  segment: number;
}

/**
 * One-way: the app took a pair of a fast-connect pool (its reserved session id): ferryd puts the
 * session (and its peer's) in the table, and tops the pool up.
 */
export interface FastOpen {
  t: 'fast-open';
  id: number;
  session: number;
}

/** What each entry of `notices` says about its session: the one-way notice of the same name. */
export const NOTICE_OP = { 'fast-open': 1, shutdown: 2, close: 3, reset: 4 } as const;
export type NoticeOp = keyof typeof NOTICE_OP;

/** Most notices one `notices` message carries (two integers each: op, session). */
export const NOTICES_MAX = POOL_MAX_SLOTS / 2;

/**
 * One-way: several session notices (`fast-open`, `shutdown`, `close`, `reset`), in the order the
 * app made them, as `ops` = [op, session, op, session, ...] (NOTICE_OP). ferryd handles each as the
 * message of that name; a failed one is answered as that message's failure would be.
 */
export interface Notices {
  t: 'notices';
  id: number;
  ops: number[];
}

/** One-way: the app has let go of a revoked pool; its unused pairs may be reused. */
export interface PoolRelease {
  t: 'pool-release';
  id: number;
  pool: number;
}

/**
 * One-way, to ferryd: what the app accepted itself on a lent listener so far (absolute figures, so
 * the latest notice is the truth): the window it applies, connections open now, accepted in all,
 * and refused because the window was full. ferryd counts the larger of the window it sent and the
 * one the app applies against maxSessionsPerApp, and answers with a new window when it moves.
 */
export interface Accepts {
  t: 'accepts';
  id: number;
  listener: number;
  /** The window the app applies now (the last `listener-lent` it got). */
  window: number;
  open: number;
  /** Connections accepted beyond the window, held (unread) until ferryd answers with a new one. */
  waiting: number;
  total: number;
  refused: number;
}

export interface Ping {
  t: 'ping';
  id: number;
}

// ---- ferryd -> app replies ----

export interface HelloReply {
  t: 'hello-reply';
  id: number;
  st: number;
  err: string;
  version: number;
  features: number;
  appId: number;
  /** Roles of the fds that come with the reply: on success, ferryd's wake pipe (write end, role
   *  'wake'), which the app rings after each send; none on failure. */
  fds: FdRole[];
}

/** Generic reply for requests that return nothing but a status. */
export interface Status {
  t: 'status';
  id: number;
  st: number;
  err: string;
}

export interface ListenReply {
  t: 'listen-reply';
  id: number;
  st: number;
  err: string;
  listener: number;
  /** The bound address, as a URI (port filled in when 0 was asked for). */
  uri: string;
}

export interface ConnectReply {
  t: 'connect-reply';
  id: number;
  st: number;
  err: string;
  session: number;
  /** Fifo pair of the new session; null when st != 0. */
  fifos: FifoPairRef | null;
  localUri: string;
  remoteUri: string;
  /** The peer app's doorbell rides with this message when the session is cut-through. */
  fds: FdRole[];
  /** Transport: 'ct' for cut-through, 'tcp', ... */
  transport: string;
}

export interface DgramBindReply {
  t: 'dgram-bind-reply';
  id: number;
  st: number;
  err: string;
  /** Endpoint id (a listener id: `accepted` events for it carry cut-through datagram pairs). */
  endpoint: number;
  /** The bound address, as a URI (port filled in when 0 was asked for). */
  uri: string;
  /** The relay session between the app and ferryd, and its fifo pair; null when st != 0. */
  session: number;
  fifos: FifoPairRef | null;
}

export interface Pong {
  t: 'pong';
  id: number;
  st: number;
  err: string;
}

// ---- ferryd -> app events (id 0) ----

/**
 * To a listening app (handoff mode, FEATURE.LENT_LISTENER): the kernel socket of its listener
 * `listener` rides along (fd role 'listener') the first time; the app accepts on it itself and
 * reports with `accepts`. `window`: the most connections the app may hold open from it at once
 * (beyond, it holds new ones unread and reports them as `waiting`; ferryd answers every such notice
 * with a window, and those it does not cover are reset, as ferryd resets a connection it accepts
 * for an app at maxSessionsPerApp); later messages without the fd move the window.
 */
/**
 * To a client (handoff mode, FEATURE.LENT_SOCKETS): unconnected TCP sockets ferryd made in its
 * namespace for `remoteUri` (one fd, role 'socket', per reserved session id in `sessions`), for the
 * app's next connects to `uri` (exactly as it named it): it connects one itself and sends
 * `fast-open` with its id afterwards (`close` with it when the connect failed). `pool-revoke` for
 * `pool`: close the unused ones and answer `pool-release`. Several messages may name one pool.
 */
export interface SocketsLent {
  t: 'sockets-lent';
  id: 0;
  pool: number;
  uri: string;
  remoteUri: string;
  sessions: number[];
  fds: FdRole[];
}

export interface ListenerLent {
  t: 'listener-lent';
  id: 0;
  listener: number;
  window: number;
  fds: FdRole[];
}

export interface Accepted {
  t: 'accepted';
  id: 0;
  listener: number;
  session: number;
  /** Null for a handed kernel socket (fds has 'socket'). */
  fifos: FifoPairRef | null;
  localUri: string;
  remoteUri: string;
  fds: FdRole[];
  transport: string;
}

/**
 * A segment to map: its memfd comes with the message, and, for a segment shared with a peer app
 * (cut-through), the peer's doorbell too. The segment holds the pair's two event queues.
 */
export interface SegmentAdd {
  t: 'segment-add';
  id: 0;
  segment: number;
  size: number;
  /** Event queue this side drains (peer -> us) and the one it posts to (us -> peer). */
  rxQueueOffset: number;
  txQueueOffset: number;
  /** Entries in each event queue (a power of two). */
  queueCapacity: number;
  /** Highest session slot in this segment (event queue entries above it are garbage). */
  maxSlot: number;
  fds: FdRole[];
}

/** ferryd no longer uses this segment; unmap it when no session of yours needs it. */
export interface SegmentDel {
  t: 'segment-del';
  id: 0;
  segment: number;
}

/** The peer half-closed (FIN) or fully closed the session. */
export interface Disconnected {
  t: 'disconnected';
  id: 0;
  session: number;
}

/** The session was reset (peer reset, peer died, transport failure): surface errorFromWire(st, err). */
export interface SessionReset {
  t: 'session-reset';
  id: 0;
  session: number;
  st: number;
  err: string;
}

/**
 * To a client: pairs it may take to connect to `uri` (exactly as it named it) without asking ferryd
 * (a fast connect): it takes one (a compare-and-swap on the pair's pool word), posts the slot to the
 * server and tells ferryd afterwards (`fast-open`). Several grants may name the same pool (top-ups).
 */
export interface PoolGrant {
  t: 'pool-grant';
  id: 0;
  pool: number;
  uri: string;
  /** What the client sees as the remote address. */
  remoteUri: string;
  pairs: PoolPair[];
}

/** To a listening app: the pairs of a pool a client may take to connect to `listener`. */
export interface PoolServe {
  t: 'pool-serve';
  id: 0;
  pool: number;
  listener: number;
  /** The listener's address as the server sees it (its local address for these sessions). */
  localUri: string;
  pairs: PoolPair[];
}

/**
 * To both apps of a pool: take no more pairs from it and answer `pool-release`. `taken` lists the
 * slots the client had taken when ferryd closed the pool: the server accepts those it has not yet
 * (every other pair of the pool is void).
 */
export interface PoolRevoke {
  t: 'pool-revoke';
  id: 0;
  pool: number;
  taken: number[];
  /** More `pool-revoke` messages for this pool follow (the taken slots did not fit in one). */
  more?: boolean;
}

/** ferryd could not parse or would not accept something the app sent; the channel may close. */
export interface ProtoError {
  t: 'error';
  id: number;
  st: number;
  err: string;
}

export type AppRequest =
  | Hello
  | Detach
  | Listen
  | Unlisten
  | Connect
  | Shutdown
  | Close
  | Reset
  | SegmentReleased
  | Ping
  | FastOpen
  | PoolRelease
  | Notices
  | Accepts
  | DgramBind
  | DgramConnect
  | Adopt;

export type DaemonMessage =
  | HelloReply
  | Status
  | ListenReply
  | ConnectReply
  | DgramBindReply
  | Pong
  | Accepted
  | SegmentAdd
  | SegmentDel
  | Disconnected
  | SessionReset
  | PoolGrant
  | PoolServe
  | PoolRevoke
  | ListenerLent
  | SocketsLent
  | ProtoError;

export type CtrlMessage = AppRequest | DaemonMessage;
export type CtrlType = CtrlMessage['t'];
