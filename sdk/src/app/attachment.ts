/**
 * The app's attachment to ferryd (VCL's role): one per process and daemon socket. It owns the
 * control channel, the pair segments, and the data doorbell with its wake policy, and routes
 * ferryd's events to sessions and listeners.
 */
import { EventEmitter } from 'node:events';
import { CtrlChannel } from '../ctrl/channel.js';
import { FerryError, ferryError } from '../errors.js';
import type { AppRequest, CtrlMessage, DaemonMessage, Hello, NotifyMode } from '../proto/ctrl/messages.js';
import { FEATURE, PROTO_MIN_VERSION, PROTO_VERSION } from '../proto/ctrl/messages.js';
import { errorFromWire } from '../proto/ctrl/status.js';
import { Notifier } from '../shm/index.js';
import { close, connectUnix, Doorbell, unixSocket } from '../sys/index.js';
import { AppSegment } from './app-segment.js';

export interface AttachOptions {
  socket: string;
  name: string;
  namespace: string;
  token: string;
  mode: NotifyMode;
  requestTimeoutMs: number;
}

type Pending = {
  resolve: (m: DaemonMessage) => void;
  reject: (e: FerryError) => void;
  timer: NodeJS.Timeout;
};

/** What the attachment tells sockets and servers. */
export interface AttachmentEvents {
  accepted: (msg: Extract<CtrlMessage, { t: 'accepted' }>) => void;
  lost: (err: FerryError) => void;
}

export class Attachment extends EventEmitter {
  readonly options: AttachOptions;
  readonly segments = new Map<number, AppSegment>();
  appId = 0;
  #channel: CtrlChannel;
  #wake: Doorbell;
  #doorbell: Doorbell;
  #notifier: Notifier;
  #pending = new Map<number, Pending>();
  #resetHandlers = new Map<number, (err: FerryError) => void>();
  #nextId = 1;
  #refs = 0;
  #lost: FerryError | null = null;
  #afterPoll: (() => void)[] = [];
  #polling = false;

  private constructor(options: AttachOptions, fd: number, wake: Doorbell, doorbell: Doorbell) {
    super();
    this.options = options;
    this.#wake = wake;
    this.#doorbell = doorbell;
    this.#channel = new CtrlChannel(fd, {
      onMessage: (msg, fds) => this.#onMessage(msg, fds),
      onBadMessage: () => {},
      onClose: (err) => this.#onLost(err ?? ferryError('ERR_FERRY_DAEMON_LOST')),
    });
    this.#channel.useWakePipes(wake, -1);
    this.#notifier = new Notifier({
      mode: options.mode,
      doorbell,
      poll: () => this.#pollSegments(),
      arm: () => this.#armSegments(),
      busy: () => this.#writesBlocked(),
    });
  }

  /** Connects to ferryd and runs HELLO. */
  static async attach(options: AttachOptions): Promise<Attachment> {
    const fd = unixSocket('seqpacket', { nonblock: true });
    try {
      connectUnix(fd, options.socket);
    } catch (err) {
      close(fd);
      const e = err as FerryError;
      throw ferryError('ERR_FERRY_DAEMON_UNREACHABLE', `${options.socket}: ${e.code}`, { cause: e });
    }
    const wake = Doorbell.create({ unref: true });
    const doorbell = Doorbell.create({ unref: true });
    const att = new Attachment(options, fd, wake, doorbell);
    const hello: Hello = {
      t: 'hello',
      id: 0,
      version: PROTO_VERSION,
      minVersion: PROTO_MIN_VERSION,
      features: FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE,
      name: options.name,
      namespace: options.namespace,
      token: options.token,
      fds: ['wake', 'doorbell'],
    };
    let reply: DaemonMessage;
    try {
      reply = await att.request(hello, [wake.ringFd, doorbell.ringFd]);
    } finally {
      // ferryd holds the write ends now (or the attach failed): ours would only hide its death.
      wake.dropRingFd();
      doorbell.dropRingFd();
    }
    if (reply.t !== 'hello-reply')
      throw ferryError('ERR_FERRY_PROTO_MALFORMED', `hello answered by '${reply.t}'`);
    att.appId = reply.appId;
    att.#notifier.start();
    return att;
  }

  get lost(): FerryError | null {
    return this.#lost;
  }

  /** Sends a request and resolves with its reply; a non-zero status rejects with its error. */
  request(msg: AppRequest, fds: readonly number[] = []): Promise<DaemonMessage> {
    if (this.#lost) return Promise.reject(this.#lost);
    const id = this.#nextId;
    this.#nextId = id >= 0xffffffff ? 1 : id + 1;
    const sent = { ...msg, id } as AppRequest;
    return new Promise<DaemonMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          ferryError('ETIMEDOUT', `ferryd did not answer '${msg.t}' in ${this.options.requestTimeoutMs} ms`),
        );
      }, this.options.requestTimeoutMs);
      this.#pending.set(id, { resolve, reject, timer });
      this.#channel.send(sent, fds);
    });
  }

  /**
   * One-way notice (shutdown, close, reset, segment-released): sent with id 0, which tells ferryd
   * not to answer a success, so a connection's teardown costs no wake-ups on the way back. The
   * ring is deferred to the end of the loop turn, so a burst of teardowns wakes ferryd once.
   */
  notify(msg: AppRequest): void {
    if (this.#lost) return;
    this.#channel.send({ ...msg, id: 0 } as AppRequest, [], true);
  }

  /** Routes ferryd's session-reset for `session` to `cb` (one handler per session). */
  onSessionReset(session: number, cb: (err: FerryError) => void): void {
    this.#resetHandlers.set(session, cb);
  }

  offSessionReset(session: number): void {
    this.#resetHandlers.delete(session);
  }

  /** Keeps the process alive while sockets or servers use the attachment. */
  ref(): void {
    if (this.#refs++ === 0) {
      this.#wake.ref();
      this.#doorbell.ref();
    }
  }

  unref(): void {
    if (--this.#refs === 0) {
      this.#wake.unref();
      this.#doorbell.unref();
    }
  }

  /**
   * Runs `fn` once at the end of the current data poll and returns true, or returns false when no
   * poll is running (schedule it yourself then). Writes made while the notifier dispatches (an echo
   * from a 'data' handler) are so published before its spin turn goes on, not after it.
   */
  afterPoll(fn: () => void): boolean {
    if (!this.#polling) return false;
    this.#afterPoll.push(fn);
    return true;
  }

  /** Runs the data poll right away (after a local write that may have queued work for us). */
  kick(): void {
    this.#notifier.kick();
  }

  releaseSegmentIfUnused(seg: AppSegment): void {
    if (!seg.deleted || seg.sessionCount > 0) return;
    this.segments.delete(seg.id);
    seg.release();
    if (!this.#lost) this.notify({ t: 'segment-released', id: 0, segment: seg.id });
  }

  close(): void {
    this.#channel.close();
  }

  #onMessage(msg: CtrlMessage, fds: number[]): void {
    if (msg.id !== 0) {
      const p = this.#pending.get(msg.id);
      for (const fd of fds) if (msg.t !== 'hello-reply') close(fd);
      if (!p) {
        if (msg.t === 'hello-reply') for (const fd of fds) close(fd);
        return;
      }
      this.#pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.t === 'hello-reply' && msg.st === 0) {
        const wakeFd = fds[msg.fds.indexOf('wake')];
        if (wakeFd === undefined) {
          p.reject(ferryError('ERR_FERRY_PROTO_MALFORMED', 'hello-reply without its wake fd'));
          return;
        }
        for (const fd of fds) if (fd !== wakeFd) close(fd);
        this.#channel.setPeerWakeFd(wakeFd);
      } else if (msg.t === 'hello-reply') {
        for (const fd of fds) close(fd);
      }
      if ('st' in msg && msg.st !== 0) p.reject(errorFromWire(msg.st, msg.err));
      else p.resolve(msg as DaemonMessage);
      return;
    }
    switch (msg.t) {
      case 'segment-add':
        this.#onSegmentAdd(msg, fds);
        return;
      case 'segment-del': {
        const seg = this.segments.get(msg.segment);
        if (seg) {
          seg.deleted = true;
          this.releaseSegmentIfUnused(seg);
        }
        return;
      }
      case 'accepted':
        this.emit('accepted', msg);
        return;
      case 'session-reset':
        this.#resetHandlers.get(msg.session)?.(errorFromWire(msg.st, msg.err));
        return;
      default:
        for (const fd of fds) close(fd);
    }
  }

  #onSegmentAdd(msg: Extract<CtrlMessage, { t: 'segment-add' }>, fds: number[]): void {
    const segFd = fds[msg.fds.indexOf('segment')];
    const bellFd = fds[msg.fds.indexOf('doorbell')];
    if (segFd === undefined || bellFd === undefined || this.segments.has(msg.segment)) {
      for (const fd of fds) close(fd);
      return;
    }
    try {
      this.segments.set(msg.segment, new AppSegment(msg, segFd, bellFd));
      // A sleeping notifier armed only the segments it knew: poll once more to arm this one.
      this.#notifier.kick();
    } catch {
      // A segment we cannot trust is never mapped; sessions placed in it will fail to open.
      close(segFd);
      close(bellFd);
    }
  }

  #pollSegments(): number {
    let work = 0;
    this.#polling = true;
    try {
      for (const seg of this.segments.values()) work += seg.poll();
    } finally {
      this.#polling = false;
    }
    if (this.#afterPoll.length > 0) {
      const fns = this.#afterPoll;
      this.#afterPoll = [];
      for (const fn of fns) fn();
    }
    return work;
  }

  #writesBlocked(): boolean {
    for (const seg of this.segments.values()) if (seg.spaceWaiters > 0) return true;
    return false;
  }

  #armSegments(): boolean {
    let pending = false;
    for (const seg of this.segments.values()) if (seg.armWake()) pending = true;
    return pending;
  }

  #onLost(err: FerryError): void {
    if (this.#lost) return;
    this.#lost =
      err instanceof FerryError && err.code === 'ERR_FERRY_DAEMON_LOST'
        ? err
        : ferryError('ERR_FERRY_DAEMON_LOST', err.message, { cause: err });
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(this.#lost);
    }
    this.#pending.clear();
    this.emit('lost', this.#lost);
  }
}
