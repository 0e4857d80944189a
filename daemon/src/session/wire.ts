/**
 * Every control message ferryd sends about sessions, listeners and segments is built here, so its
 * fields are filled the same way whichever transport or request produced it.
 */
import {
  type Accepted,
  type AppRequest,
  type ConnectReply,
  type DaemonMessage,
  type DgramBindReply,
  type FdRole,
  FerryError,
  type FifoPairRef,
  ferryError,
  type ListenReply,
  type SegmentAdd,
  type SegmentDel,
  type SessionReset,
  statusOf,
} from '@ferry/sdk/internal';
import type { Session } from './session.js';

/** A session as a connect-reply or accepted carries it: the app's view of its fifo pair. */
export interface SessionView {
  session: Session;
  /** Null for a session without a fifo pair. */
  fifos: FifoPairRef | null;
  /** Roles of the fds that ride with the message (SCM_RIGHTS), in order. */
  fds: FdRole[];
}

export function connectReply(id: number, v: SessionView): ConnectReply {
  return {
    t: 'connect-reply',
    id,
    st: 0,
    err: '',
    session: v.session.id,
    fifos: v.fifos,
    localUri: v.session.localUri,
    remoteUri: v.session.remoteUri,
    fds: v.fds,
    transport: v.session.transport,
  };
}

/** A datagram connect answered "not local": no session, send through the endpoint's relay. */
export function relayRouteReply(id: number, localUri: string, remoteUri: string): ConnectReply {
  return {
    t: 'connect-reply',
    id,
    st: 0,
    err: '',
    session: 0,
    fifos: null,
    localUri,
    remoteUri,
    fds: [],
    transport: 'udp',
  };
}

export function acceptedEvent(listenerId: number, v: SessionView): Accepted {
  return {
    t: 'accepted',
    id: 0,
    listener: listenerId,
    session: v.session.id,
    fifos: v.fifos,
    localUri: v.session.localUri,
    remoteUri: v.session.remoteUri,
    fds: v.fds,
    transport: v.session.transport,
  };
}

export function listenReply(id: number, listenerId: number, uri: string): ListenReply {
  return { t: 'listen-reply', id, st: 0, err: '', listener: listenerId, uri };
}

export function dgramBindReply(
  id: number,
  endpointId: number,
  uri: string,
  session: Session,
  fifos: FifoPairRef,
): DgramBindReply {
  return { t: 'dgram-bind-reply', id, st: 0, err: '', endpoint: endpointId, uri, session: session.id, fifos };
}

/** A segment to map; its memfd and a doorbell ride along (fds 'segment', 'doorbell'). */
export function segmentAdd(
  seg: { id: number; size: number; queueCapacity: number; maxSlot: number },
  rxQueueOffset: number,
  txQueueOffset: number,
): SegmentAdd {
  return {
    t: 'segment-add',
    id: 0,
    segment: seg.id,
    size: seg.size,
    rxQueueOffset,
    txQueueOffset,
    queueCapacity: seg.queueCapacity,
    maxSlot: seg.maxSlot,
    fds: ['segment', 'doorbell'],
  };
}

export function segmentDel(segmentId: number): SegmentDel {
  return { t: 'segment-del', id: 0, segment: segmentId };
}

export function sessionReset(sessionId: number, err: FerryError): SessionReset {
  return { t: 'session-reset', id: 0, session: sessionId, st: statusOf(err.code), err: err.message };
}

function failure(err: unknown): { st: number; err: string } {
  const e = err instanceof FerryError ? err : ferryError('ERR_FERRY_SYS', String(err));
  return { st: statusOf(e.code), err: e.message };
}

/** The failure reply of a request's type. */
export function failureReply(msg: AppRequest, err: unknown): DaemonMessage {
  const f = failure(err);
  if (msg.t === 'listen') return { t: 'listen-reply', id: msg.id, ...f, listener: 0, uri: '' };
  if (msg.t === 'dgram-bind') {
    return { t: 'dgram-bind-reply', id: msg.id, ...f, endpoint: 0, uri: '', session: 0, fifos: null };
  }
  if (msg.t === 'connect' || msg.t === 'dgram-connect') {
    return {
      t: 'connect-reply',
      id: msg.id,
      ...f,
      session: 0,
      fifos: null,
      localUri: '',
      remoteUri: '',
      fds: [],
      transport: '',
    };
  }
  return { t: 'status', id: msg.id, ...f };
}

export function okStatus(id: number): DaemonMessage {
  return { t: 'status', id, st: 0, err: '' };
}

/**
 * Fds that ride with a reply (SCM_RIGHTS), beside the message: a transport that hands the app
 * something (a kernel socket) names them in the message's `fds` and gives them here. The sender
 * sends them and keeps them open: they stay the transport's to close.
 */
const replyFds = new WeakMap<object, readonly number[]>();

export function withFds<M extends object>(msg: M, fds: readonly number[]): M {
  replyFds.set(msg, fds);
  return msg;
}

export function fdsOf(msg: object): readonly number[] {
  return replyFds.get(msg) ?? [];
}
