/**
 * The control side of sessions, in one place: the requests that open them (connect, listen,
 * dgram-bind, dgram-connect, adopt), the notices that end them (shutdown, close, reset), and what
 * a reply or an `accepted` event becomes (an AppSession bound to its segment, or a session given
 * back). Sockets, servers, message channels and topics (sdk/src/api, sdk/src/messages) call these
 * functions and never build a control message themselves; the messages are built in
 * control-messages.ts.
 */
import { type FerryError, ferryError } from '../errors.js';
import type {
  Accepted,
  ConnectReply,
  DaemonMessage,
  DgramBindReply,
  ListenReply,
} from '../proto/ctrl/messages.js';
import { AppSession, type SessionOwner } from './app-session.js';
import type { Attachment, SessionRef } from './attachment.js';
import {
  type AcceptsParams,
  acceptsMessage,
  adoptMessage,
  type ConnectParams,
  connectMessage,
  type DgramBindParams,
  type DgramConnectParams,
  dgramBindMessage,
  dgramConnectMessage,
  fastOpenMessage,
  type ListenParams,
  listenMessage,
  type PoolAccepted,
  type SessionNotice,
  sessionNoticeMessage,
  unlistenMessage,
} from './control-messages.js';
import type { DatagramChannel } from './datagram-channel.js';

export type { ConnectParams, DgramBindParams, DgramConnectParams, ListenParams, SessionNotice };

/** A success reply of the expected type (a ferryd answering otherwise is broken: say so). */
function expect<T extends DaemonMessage['t']>(reply: DaemonMessage, t: T): Extract<DaemonMessage, { t: T }> {
  if (reply.t !== t)
    throw ferryError('ERR_FERRY_PROTO_MALFORMED', `expected '${t}', ferryd answered '${reply.t}'`);
  return reply as Extract<DaemonMessage, { t: T }>;
}

// ---- requests ----

/**
 * Asks ferryd for a session to `p.uri`. With fifos in the reply, the segment is pinned until
 * claimConnected() (or Attachment.claimSession) takes it; without (a handed socket, a topic), the
 * transport's fds wait in Attachment.takeReplyFds.
 */
export async function requestConnect(att: Attachment, p: ConnectParams): Promise<ConnectReply> {
  return expect(await att.request(connectMessage(p)), 'connect-reply');
}

/** Registers a listener; the reply has its id and the bound URI (a port chosen for :0 filled in). */
export async function requestListen(att: Attachment, p: ListenParams): Promise<ListenReply> {
  return expect(await att.request(listenMessage(p)), 'listen-reply');
}

/**
 * Gives a listener back. Resolves once ferryd answered or could not: a listener ferryd did not
 * take back dies with the app or with that ferryd, so there is nothing more to do about it.
 */
export function requestUnlisten(att: Attachment, listener: number): Promise<void> {
  return att.request(unlistenMessage(listener)).then(
    () => {},
    () => {},
  );
}

/** Reports a handed kernel socket to a ferryd that restarted; resolves with its new session id. */
export async function requestAdopt(att: Attachment, fd: number, listener = 0): Promise<number> {
  return expect(await att.request(adoptMessage(listener), [fd]), 'connect-reply').session;
}

/** Binds a datagram endpoint; the reply carries its relay session's fifos. */
export async function requestDgramBind(att: Attachment, p: DgramBindParams): Promise<DgramBindReply> {
  return expect(await att.request(dgramBindMessage(p)), 'dgram-bind-reply');
}

/**
 * Asks where a datagram destination is: a reply with fifos is a cut-through pair with a local
 * endpoint (pinned as a connect's), one without means the relay.
 */
export async function requestDgramConnect(att: Attachment, p: DgramConnectParams): Promise<ConnectReply> {
  return expect(await att.request(dgramConnectMessage(p)), 'connect-reply');
}

// ---- one-way notices ----

/**
 * A notice about session `id` that no AppSession holds (not claimed yet, handed, a topic):
 * `ring` 'lazy' waits for the next request's ring (an orderly close nothing waits for).
 */
export function noticeSession(
  att: Attachment,
  kind: SessionNotice,
  id: number,
  ring: 'soon' | 'lazy' = 'soon',
): void {
  att.notify(sessionNoticeMessage(kind, id), ring);
}

/** A lent socket is connected (lent-sockets.ts): ferryd makes it a handed session. */
export function noticeLentOpen(att: Attachment, session: number): void {
  att.notify(fastOpenMessage(session), 'lazy');
}

/** What a lent listener accepted itself so far (one-way; the latest notice is the truth). */
export function noticeAccepts(att: Attachment, p: AcceptsParams, ring: 'soon' | 'lazy'): void {
  att.notify(acceptsMessage(p), ring);
}

/** A notice about a bound session: dropped when it belongs to an earlier ferryd. */
export function noticeBound(
  att: Attachment,
  s: SessionRef,
  kind: SessionNotice,
  ring: 'soon' | 'lazy' = 'soon',
): void {
  att.notifySession(s, sessionNoticeMessage(kind, s.id), ring);
}

// ---- opening ----

/**
 * Takes the session of a connect-reply (its segment was pinned when the reply arrived, and any
 * session-reset ferryd sent before now was kept). A reply without a usable segment is reset and
 * throws its reset if it had one, else ERR_FERRY_PROTO_MALFORMED; when `abandon(reset)` says nobody wants it any more (timed
 * out, destroyed, reset), it is reset and let go and `session` is null.
 */
export function claimConnected(
  att: Attachment,
  reply: ConnectReply,
  abandon: (reset: FerryError | null) => boolean,
): { session: AppSession | null; reset: FerryError | null } {
  const { seg, reset } = att.claimSession(reply.session);
  if (!reply.fifos || !seg) {
    noticeSession(att, 'reset', reply.session);
    if (seg) att.releaseSegmentIfUnused(seg);
    // Reset already (its server gone, its segment let go with it): that is the failure to report.
    throw reset ?? ferryError('ERR_FERRY_PROTO_MALFORMED', 'connect reply names no usable segment');
  }
  if (abandon(reset)) {
    if (!seg.orphaned) noticeSession(att, 'reset', reply.session);
    att.releaseSegmentIfUnused(seg);
    return { session: null, reset };
  }
  return { session: new AppSession(reply.session, seg, reply.fifos, reply.transport), reset };
}

/** The session of an `accepted` event with fifos; null (and the session reset) when its segment is unknown. */
export function acceptSession(att: Attachment, msg: Accepted): AppSession | null {
  const seg = msg.fifos ? att.segments.get(msg.fifos.segment) : undefined;
  if (!seg || !msg.fifos) {
    noticeSession(att, 'reset', msg.session);
    return null;
  }
  att.acceptedBy(msg.session);
  const pooled = msg as Partial<PoolAccepted>;
  const s = new AppSession(msg.session, seg, msg.fifos, msg.transport, pooled.memory ?? null);
  // A fast connect's pair goes back to its pool when this end lets go (fast-pools.ts).
  s.poolTie = pooled.tie ?? null;
  return s;
}

/** Starts delivering `session`'s events to `owner`, and routes ferryd's reset of it there too. */
export function openSession(att: Attachment, session: AppSession, owner: SessionOwner): void {
  att.onSessionReset(session, (err) => owner.onFailure(err));
  session.open(owner);
}

// ---- closing ----

/**
 * FIN notices held back for FIN_HOLD_MS per attachment: most connections close right after their
 * FIN, and the close notice says all the shutdown would (ferryd's state goes to closed either way).
 * Sent at all, a shutdown notice was a fifth of what ferryd read per short connection.
 */
const heldFins = new WeakMap<Attachment, Set<AppSession>>();
const FIN_HOLD_MS = 10;

function flushFins(att: Attachment): void {
  const held = heldFins.get(att);
  if (!held || held.size === 0) return;
  const list = [...held];
  held.clear();
  for (const s of list) if (!s.poolTie || s.poolTie.locked()) noticeBound(att, s, 'shutdown', 'lazy');
}

/** After this end wrote FIN: ferryd hears of it for a cut-through session (one it carries, it reads in the fifo). */
export function announceFin(att: Attachment, s: AppSession, transport: string | undefined): void {
  if (transport !== 'ct') return;
  // A pool pair ferryd does not hold: nothing to tell (the peer reads the FIN in the fifo).
  if (s.poolTie && !s.poolTie.locked()) return;
  let held = heldFins.get(att);
  if (!held) {
    held = new Set();
    heldFins.set(att, held);
  }
  // Nothing waits for it: sent with the next ring, unless a close or reset makes it moot first.
  if (held.size === 0) setTimeout(() => flushFins(att), FIN_HOLD_MS).unref();
  held.add(s);
}

/**
 * How a session ends. `clean`: both ways are done or this end sent FIN; reading stops and ferryd
 * frees the fifos once both ends let go. `peer-reset`: the peer reset it, so there is nothing to
 * tell the peer, only ferryd. `reset`: an abort; the peer sees ECONNRESET.
 */
export type SessionEnd = 'clean' | 'peer-reset' | 'reset';

/**
 * Lets `s` go: the notice to ferryd, the session out of its segment and of reset routing, and the
 * segment released if that was its last session. The owner drops its reference on the attachment
 * itself (before calling this).
 */
export function endSession(att: Attachment, s: AppSession, how: SessionEnd): void {
  // A FIN notice not sent yet: the close or reset below says it all.
  heldFins.get(att)?.delete(s);
  if (how === 'clean') s.stopReading();
  else if (how !== 'peer-reset') s.reset();
  const tie = s.poolTie;
  if (tie) {
    // A pool pair: this end lets go in the pair's reuse word, after its last write (the flags
    // above) and its detach, and ferryd hears nothing, unless it holds the session in its table.
    s.poolTie = null;
    s.detach();
    if (!tie.end())
      noticeBound(att, s, how === 'reset' ? 'reset' : 'close', how === 'reset' ? 'soon' : 'lazy');
  } else {
    noticeBound(att, s, how === 'reset' ? 'reset' : 'close', how === 'reset' ? 'soon' : 'lazy');
    s.detach();
  }
  att.offSessionReset(s);
  att.releaseSegmentIfUnused(s.segment);
}

/** Closes a datagram channel and gives its session (and, if it was the last, its segment) back. */
export function endDatagramChannel(att: Attachment | null, ch: DatagramChannel): void {
  ch.close();
  ch.detach();
  if (!att) return;
  noticeBound(att, ch, 'close');
  att.offSessionReset(ch);
  att.releaseSegmentIfUnused(ch.segment);
}
