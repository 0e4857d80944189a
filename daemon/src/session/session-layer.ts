/**
 * The session layer: listens, connects, and the life of cut-through sessions (VPP's session.c and
 * application_local.c, without the data path: ferryd never touches the bytes of a cut-through
 * session, it only sets up the fifo pair and tears it down).
 */
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
  statusOf,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';
import { ListenerTable } from '../app/listener-table.js';
import { type DaemonConfig, fifoSizeFor } from '../config.js';
import type { PairSegment } from '../segment/pair-segment.js';
import { SegmentManager } from '../segment/segment-manager.js';
import { Session } from './session.js';

export interface SessionLayerCounters {
  connects: number;
  refused: number;
  accepted: number;
  resets: number;
}

export class SessionLayer {
  readonly listeners = new ListenerTable();
  readonly segments: SegmentManager;
  readonly sessions = new Map<number, Session>();
  readonly counters: SessionLayerCounters = { connects: 0, refused: 0, accepted: 0, resets: 0 };
  #config: DaemonConfig;
  #apps: ReadonlyMap<number, App>;
  #nextSession = 1;
  #ephemeralPort = 49152;

  constructor(config: DaemonConfig, apps: ReadonlyMap<number, App>) {
    this.#config = config;
    this.#apps = apps;
    this.segments = new SegmentManager(config);
  }

  listen(app: App, id: number, uriText: string): ListenReply {
    const uri = parseUri(uriText);
    if (uri.scheme !== 'tcp') {
      throw ferryError('ERR_FERRY_NOT_SUPPORTED', `${uri.scheme}:// listeners are not available yet`);
    }
    if (uri.port === 0) uri.port = this.#pickPort(app.namespace, uri);
    const l = this.listeners.add(app.id, app.namespace, uri);
    if (!l) throw ferryError('EADDRINUSE', formatUri(uri));
    app.listeners.add(l.id);
    return { t: 'listen-reply', id, st: 0, err: '', listener: l.id, uri: formatUri(uri) };
  }

  unlisten(app: App, listenerId: number): void {
    const l = this.listeners.get(listenerId);
    if (!l || l.appId !== app.id) throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `listener ${listenerId}`);
    this.listeners.remove(listenerId);
    app.listeners.delete(listenerId);
  }

  /** A connect: cut-through when a local listener matches, refused otherwise (for now). */
  connect(client: App, req: Connect): ConnectReply {
    this.counters.connects++;
    const uri = parseUri(req.uri);
    const l = this.listeners.lookup(client.namespace, uri);
    const server = l ? this.#apps.get(l.appId) : undefined;
    if (!l || !server) {
      this.counters.refused++;
      throw ferryError('ECONNREFUSED', `no listener for ${formatUri(uri)}`);
    }
    if (client.sessions.size >= this.#config.maxSessionsPerApp) {
      throw ferryError('ERR_FERRY_LIMIT', `app ${client.id} has ${client.sessions.size} sessions`);
    }
    if (server.sessions.size >= this.#config.maxSessionsPerApp) {
      this.counters.refused++;
      throw ferryError('ECONNREFUSED', `listener's app has reached its session limit`);
    }
    const clientTx = fifoSizeFor(this.#config, req.txFifoSize);
    const clientRx = fifoSizeFor(this.#config, req.rxFifoSize);
    const { seg, pair } = this.segments.place(client, server, clientTx, clientRx, (s) => this.#announce(s));

    const serverUri = formatUri(l.uri.host === '*' ? { ...l.uri, host: uri.host } : l.uri);
    const clientUri = formatUri({ scheme: uri.scheme, host: '127.0.0.1', port: this.#clientPort() });
    // Sides by role, not by app id: in a self-pair both ends belong to one app.
    const clientSide = seg.sideOf(client.id);
    const c = this.#newSession(client, seg, pair.slot, clientSide, clientUri, serverUri, 0);
    const s = this.#newSession(
      server,
      seg,
      pair.slot,
      clientSide === 'a' ? 'b' : 'a',
      serverUri,
      clientUri,
      l.id,
    );
    c.peer = s;
    s.peer = c;
    l.accepted++;
    this.counters.accepted++;

    const accepted: Accepted = {
      t: 'accepted',
      id: 0,
      listener: l.id,
      session: s.id,
      fifos: this.#fifoRef(seg, s),
      localUri: serverUri,
      remoteUri: clientUri,
      fds: [],
      transport: 'ct',
    };
    server.send(accepted);
    return {
      t: 'connect-reply',
      id: req.id,
      st: 0,
      err: '',
      session: c.id,
      fifos: this.#fifoRef(seg, c),
      localUri: clientUri,
      remoteUri: serverUri,
      fds: [],
      transport: 'ct',
    };
  }

  shutdown(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
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
    this.#maybeFree(s);
  }

  reset(app: App, sessionId: number): void {
    const s = this.#own(app, sessionId);
    this.counters.resets++;
    s.tryApply('reset');
    s.released = true;
    this.#resetPeer(s, ferryError('ECONNRESET', 'peer reset the session'));
    this.#maybeFree(s);
  }

  /** The app detached or died: its sessions reset, its listeners and segments go. */
  appGone(app: App): void {
    for (const id of app.listeners) this.listeners.remove(id);
    app.listeners.clear();
    for (const id of [...app.sessions]) {
      const s = this.sessions.get(id);
      if (!s) continue;
      s.tryApply('reset');
      s.released = true;
      this.#resetPeer(s, ferryError('ECONNRESET', 'peer app went away'));
      this.#maybeFree(s);
    }
    for (const segId of app.segments) {
      const seg = this.segments.get(segId);
      if (!seg) continue;
      const other = this.#apps.get(seg.appA === app.id ? seg.appB : seg.appA);
      if (other && other !== app && seg.mappedBy.has(other.id)) {
        other.send({ t: 'segment-del', id: 0, segment: seg.id });
      }
      this.segments.unmappedBy(seg, app.id);
    }
    app.segments.clear();
  }

  /** The app unmapped a segment after segment-del. */
  segmentReleased(app: App, segmentId: number): void {
    const seg = this.segments.get(segmentId);
    if (!seg?.mappedBy.has(app.id)) {
      throw ferryError('ERR_FERRY_SESSION_NOT_FOUND', `segment ${segmentId}`);
    }
    app.segments.delete(seg.id);
    this.segments.unmappedBy(seg, app.id);
  }

  #resetPeer(s: Session, err: FerryError): void {
    const p = s.peer;
    if (!p || p.released) return;
    if (p.tryApply('peer-reset')) {
      this.#apps.get(p.appId)?.send({
        t: 'session-reset',
        id: 0,
        session: p.id,
        st: statusOf(err.code),
        err: err.message,
      });
    }
  }

  #maybeFree(s: Session): void {
    const p = s.peer;
    if (!s.released || (p && !p.released)) return;
    for (const end of p ? [s, p] : [s]) {
      this.sessions.delete(end.id);
      this.#apps.get(end.appId)?.sessions.delete(end.id);
    }
    this.segments.get(s.segmentId)?.freePair(s.slot);
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
    });
    this.sessions.set(s.id, s);
    app.sessions.add(s.id);
    return s;
  }

  #fifoRef(seg: PairSegment, s: Session): FifoPairRef {
    const slotPair = seg.pairAt(s.slot);
    if (!slotPair) throw new FerryError('ERR_FERRY_SESSION_STATE', `slot ${s.slot} has no fifo pair`);
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

  #pickPort(namespace: string, uri: { scheme: 'tcp' | 'udp' | 'tls'; host: string; port: number }): number {
    for (let i = 0; i < 16384; i++) {
      const port = this.#clientPort();
      if (!this.listeners.lookup(namespace, { ...uri, port })) return port;
    }
    throw ferryError('EADDRINUSE', 'no free port');
  }

  #clientPort(): number {
    const p = this.#ephemeralPort;
    this.#ephemeralPort = p >= 65535 ? 49152 : p + 1;
    return p;
  }
}
