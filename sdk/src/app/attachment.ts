/**
 * The app's attachment to ferryd (VCL's role): one per process and daemon socket. It owns the
 * control channel, the pair segments, and the data doorbell with its wake policy, and routes
 * ferryd's events to sessions and listeners.
 *
 * It outlives ferryd. When the control channel closes (ferryd exited, was killed or restarted),
 * the data path goes on: cut-through sessions are app-to-app shared memory that ferryd does not
 * touch, so the segments stay mapped ("orphans": the next ferryd does not know them, and their ids
 * may be reused by it) and are unmapped when their last session closes. Sessions ferryd itself
 * carried (TCP) fail at once with ECONNRESET. The attachment then reattaches with a capped,
 * jittered backoff, and emits 'reattached' so servers re-register their listeners.
 */
import { EventEmitter } from 'node:events';
import { CtrlChannel } from '../ctrl/channel.js';
import { FerryError, ferryError } from '../errors.js';
import type {
  Accepted,
  AppRequest,
  CtrlMessage,
  DaemonMessage,
  NotifyMode,
  SegmentAdd,
} from '../proto/ctrl/messages.js';
import { FEATURE, NOTICE_OP, NOTICES_MAX } from '../proto/ctrl/messages.js';
import { errorFromWire } from '../proto/ctrl/status.js';
import { Notifier } from '../shm/index.js';
import { type WakeSwitches, wakeSwitches } from '../shm/wake-switches.js';
import {
  close,
  connectUnix,
  Doorbell,
  type PollContentionStats,
  type RunQueueStats,
  RunWait,
  type RunWaitStats,
  unixSocket,
} from '../sys/index.js';
import { AppSegment, processSends } from './app-segment.js';
import {
  fastOpenMessage,
  helloMessage,
  noticesMessage,
  segmentReleasedMessage,
  sessionNoticeMessage,
} from './control-messages.js';
import { FastPools } from './fast-pools.js';
import { LentSocketPools } from './lent-sockets.js';

export interface AttachOptions {
  socket: string;
  name: string;
  namespace: string;
  token: string;
  mode: NotifyMode;
  requestTimeoutMs: number;
  /**
   * How long to keep trying to reattach after losing ferryd, in ms. Infinity (the default) keeps
   * trying; 0 never reattaches (the loss is final).
   */
  reattachTimeoutMs?: number;
  /** First and largest delay between reattach attempts (jittered), in ms. Default 50 and 2000. */
  reattachMinDelayMs?: number;
  reattachMaxDelayMs?: number;
}

type Pending = {
  resolve: (m: DaemonMessage) => void;
  reject: (e: FerryError) => void;
  timer: NodeJS.Timeout;
};

/** A session as reset routing needs it: an AppSession, or a datagram channel. */
export interface SessionRef {
  readonly id: number;
  readonly segment: AppSegment;
}

/** attached: requests go to ferryd; away: ferryd is gone, reattaching; closed: for good. */
export type AttachmentState = 'attached' | 'away' | 'closed';

/** What the attachment tells sockets and servers. */
export interface AttachmentEvents {
  /** `handed`: the kernel socket of a handoff session; a listener that takes it sets `taken`. */
  accepted: (msg: Accepted, handed: HandedFd | null) => void;
  /** The control channel closed; the attachment is reattaching (unless reattach is off). */
  lost: (err: FerryError) => void;
  /** Attached again, to a new ferryd (or the same one after a channel loss). */
  reattached: (info: { appId: number; awayMs: number }) => void;
  /** The attachment is gone for good: reattach gave up, was off, or close() was called. */
  closed: (err: FerryError) => void;
  /** ferryd lent listener `listener`'s kernel socket (takeLentListener), or moved its window. */
  'listener-lent': (listener: number, window: number, withFd: boolean) => void;
}

/** Something the data notifier polls beside sessions; its owner rings our doorbell to wake it. */
export interface ExtraPoller {
  /** Does available work; returns how much (0: nothing). */
  poll(): number;
  /** Asks to be woken, then re-checks: true when work arrived meanwhile. */
  arm(): boolean;
}

/** A kernel socket ferryd handed over with an `accepted` event (handoff mode). */
export interface HandedFd {
  fd: number;
  /** Set by whoever keeps the fd; else the attachment closes it and resets the session. */
  taken: boolean;
}

/** How often orphan segments check that their peer app is still alive (ferryd cannot tell us). */
const ORPHAN_PROBE_MS = 500;

/** session-resets of sessions not known yet kept for a reply that may follow (see #earlyResets). */
const EARLY_RESETS = 64;

export class Attachment extends EventEmitter {
  readonly options: AttachOptions;
  /** Segments of the current ferryd, by its ids. */
  readonly segments = new Map<number, AppSegment>();
  appId = 0;
  /** Feature bits negotiated with the current ferryd (FEATURE.*). */
  features = 0;
  #channel: CtrlChannel | null = null;
  #wake: Doorbell | null = null;
  #doorbell: Doorbell;
  #notifier: Notifier;
  /** Whether this thread waits for a CPU: adaptive polling stops while it does. */
  readonly #runWait = new RunWait();
  #pending = new Map<number, Pending>();
  #resetHandlers = new Map<number, { session: SessionRef; cb: (err: FerryError) => void }>();
  /**
   * Sessions whose connect-reply arrived but whose socket is not bound yet (that continuation
   * runs a microtask later, after the rest of the drained datagrams): their segment is pinned so
   * a segment-del in the same drain cannot unmap it, and a session-reset is kept for them.
   */
  #unclaimed = new Map<number, { seg: AppSegment | undefined; reset: FerryError | null }>();
  /**
   * session-resets for ids this app does not know yet, oldest first (at most EARLY_RESETS): a
   * connect-reply that comes after the reset of its own session takes it, so the socket fails
   * instead of waiting for a peer that is gone. ferryd sends a reply before any reset of its session;
   * this keeps the SDK safe if one ever does not. One ferryd never reuses a session id; cleared when
   * ferryd is lost (the next one numbers afresh).
   */
  #earlyResets = new Map<number, FerryError>();
  #nextId = 1;
  #refs = 0;
  #state: AttachmentState = 'away';
  #lost: FerryError | null = null;
  /** When ferryd was last lost (0: never, so a HELLO is a first attach). */
  #lostAt = 0;
  #reattaches = 0;
  /** Segments of an earlier ferryd that sessions still use. */
  #orphans = new Set<AppSegment>();
  #probeTimer: NodeJS.Timeout | null = null;
  #afterPoll: (() => void)[] = [];
  #polling = false;
  /** performance.now() until which data is expected soon (see pollUntil); 0: none. */
  #pollUntilMs = 0;
  /** performance.now() until which adaptive does not poll on its own (see sleepUntil). */
  #sleepUntilMs = 0;
  /** Run once when the data notifier next arms to sleep (see beforeSleep). */
  #beforeSleep: (() => void)[] = [];
  /** Shared memory other than sessions that this attachment's notifier polls (topic readers). */
  #pollers = new Set<ExtraPoller>();
  /** Fds that came with fifo-less connect replies (a transport's own resources), by session. */
  #replyFds = new Map<number, number[]>();
  /** Lent listening sockets (`listener-lent`) their listener has not taken yet, by listener id. */
  #lentFds = new Map<number, { fd: number; window: number }>();
  /** `segments` as an array for the polling loops (null: rebuild; see #segs). */
  #segList: AppSegment[] | null = null;
  /** The last accepted session a listener took (acceptSession): whether anyone took an accept. */
  #lastBound = 0;
  /** Session notices not sent yet (NOTICE_BATCH): [op, session, ...], sent at the end of the turn. */
  #batch: number[] = [];
  /** Whether a notice in #batch asked for ferryd to be rung soon (else: lazily). */
  #batchSoon = false;
  #batchScheduled = false;
  /** Fast-connect pools ferryd lent us, as client and as server (fast-pools.ts). */
  readonly pools: FastPools = new FastPools({
    segment: (id) => this.segments.get(id),
    notify: (msg, ring) => this.notify(msg, ring),
    accept: (msg) => {
      this.#lastBound = 0;
      this.emit('accepted', msg, null);
      return this.#lastBound === msg.session;
    },
    fail: (id, err) => this.#resetHandlers.get(id)?.cb(err),
  });
  /** Unconnected sockets ferryd lent for handoff connects (lent-sockets.ts). */
  readonly lentSockets = new LentSocketPools((msg, ring) => this.notify(msg, ring));

  private constructor(options: AttachOptions, doorbell: Doorbell, switches: WakeSwitches) {
    super();
    this.options = options;
    this.#doorbell = doorbell;
    this.#notifier = new Notifier({
      mode: options.mode,
      doorbell,
      poll: () => this.#pollSegments(),
      arm: () => {
        const pending = this.#armSegments();
        // About to sleep: the wait that comes with the wake-up is not contention (sys/run-wait.ts).
        // No clock reading here: asleep() reads it only when a window is open (adaptive opens
        // them; interrupt mode never does, and each reading was a call on every sleep).
        if (!pending) this.#runWait.asleep();
        return pending;
      },
      busy: () => (this.#pollUntilMs > 0 && this.#expectingData()) || this.#writesBlocked(),
      contended: (now) => this.#contended(now),
      ...(switches.peerGate ? { peersAsleep: () => this.#peersAsleep() } : {}),
      yieldBeforeWindow: switches.yieldBeforeWindow,
      posts: processSends,
    });
  }

  /**
   * Every app this notifier hears from sleeps (see Notifier.peersAsleep). Only segments of the
   * current ferryd count; orphans and extra pollers (topic readers: no peer flag to read) make it
   * false.
   */
  #peersAsleep(): boolean {
    if (this.#orphans.size > 0 || this.#pollers.size > 0) return false;
    const segs = this.#segs();
    if (segs.length === 0) return false;
    for (let i = 0; i < segs.length; i++) if (!(segs[i] as AppSegment).peerAsleep) return false;
    return true;
  }

  /**
   * The contention rule as adaptive asks it (true: turns as in interrupt mode). While a message
   * channel polls for a frame it expects, the machine's run queues decide (sys/run-queue.ts: waits
   * they do not explain are that round trip's own); while one chose to sleep for it (and none
   * polls), adaptive does not poll on its own either where they say the machine is busy (sleepUntil).
   */
  #contended(now: number): boolean {
    if (now < this.#pollUntilMs) return this.#runWait.contended(now, 'poll');
    return this.#runWait.contended(now, now < this.#sleepUntilMs ? 'sleep' : 'none');
  }

  /** Connects to ferryd and runs HELLO; fails with ERR_FERRY_DAEMON_UNREACHABLE when it cannot. */
  static async attach(options: AttachOptions): Promise<Attachment> {
    // The data doorbell lives as long as the attachment: peers of every generation ring it, and
    // each new ferryd gets its write end again. (We keep our own copy of the write end, so its
    // read end never reports 'end'; ferryd's death is seen on the control wake pipe instead.)
    const switches = wakeSwitches();
    const att = new Attachment(options, Doorbell.create({ unref: true }), switches);
    try {
      await att.#hello();
    } catch (err) {
      att.#doorbell.close();
      throw err;
    }
    att.#state = 'attached';
    att.#notifier.start();
    return att;
  }

  get state(): AttachmentState {
    return this.#state;
  }

  /** Why the control channel was last lost (null while it never was). */
  get lost(): FerryError | null {
    return this.#lost;
  }

  /** Times the attachment has reattached. */
  get reattaches(): number {
    return this.#reattaches;
  }

  /** Segments of an earlier ferryd still in use. */
  get orphanSegments(): number {
    return this.#orphans.size;
  }

  /**
   * Sends a request and resolves with its reply; a non-zero status rejects with its error. While
   * ferryd is away it fails at once with ERR_FERRY_DAEMON_UNREACHABLE.
   */
  request(msg: AppRequest, fds: readonly number[] = []): Promise<DaemonMessage> {
    const ch = this.#channel;
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    if (this.#state !== 'attached' || !ch) {
      return Promise.reject(
        ferryError('ERR_FERRY_DAEMON_UNREACHABLE', `${this.options.socket}: ferryd is away, reattaching`),
      );
    }
    return this.#request(ch, msg, fds);
  }

  #request(ch: CtrlChannel, msg: AppRequest, fds: readonly number[]): Promise<DaemonMessage> {
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
      // Notices made before the request go first (ferryd handles them in order); its ring covers them.
      this.#flushNotices(false);
      ch.send(sent, fds);
    });
  }

  /**
   * One-way notice (shutdown, close, reset, segment-released): sent with id 0, which tells ferryd
   * not to answer a success, so a connection's teardown costs no wake-ups on the way back. The
   * ring is deferred to the end of the loop turn, so a burst of teardowns wakes ferryd once; with
   * `ring` 'lazy' (an orderly close, which nothing waits for) it waits for the next request's ring,
   * LAZY_RING_MS at most, so that a connection's close does not wake ferryd on its own.
   */
  notify(msg: AppRequest, ring: 'soon' | 'lazy' = 'soon'): void {
    if (this.#state !== 'attached') return;
    const op = noticeOp(msg);
    if (op !== 0 && (this.features & FEATURE.NOTICE_BATCH) !== 0) {
      // Gathered until the end of the turn: one message (one sendmsg, one read for ferryd) for
      // every connection this turn opened or closed, instead of one each.
      this.#batch.push(op, (msg as { session: number }).session);
      if (ring === 'soon') this.#batchSoon = true;
      if (this.#batch.length >= NOTICES_MAX * 2) this.#flushNotices(true);
      else if (!this.#batchScheduled) {
        this.#batchScheduled = true;
        if (!exitHooked) {
          exitHooked = true;
          process.once('exit', flushAllOnExit);
        }
        pendingBatches.add(this);
        setImmediate(this.#flushLater);
      }
      return;
    }
    this.#flushNotices(false);
    this.#channel?.send({ ...msg, id: 0 } as AppRequest, [], ring);
  }

  readonly #flushLater = (): void => {
    this.#batchScheduled = false;
    pendingBatches.delete(this);
    this.#flushNotices(true);
  };

  /**
   * Sends the gathered notices: as one `notices` message, or as the plain notice when there is one.
   * `ring`: whether to ring ferryd for a notice that asked to be read soon (at the end of the turn,
   * now is soon); false when a message sent right after rings anyway.
   */
  #flushNotices(ring: boolean): void {
    const ops = this.#batch;
    if (ops.length === 0) return;
    this.#batch = [];
    const when = ring && this.#batchSoon ? 'now' : 'lazy';
    this.#batchSoon = false;
    const ch = this.#channel;
    if (!ch || this.#state !== 'attached') return;
    if (ops.length === 2) {
      const op = ops[0];
      const session = ops[1] ?? 0;
      ch.send(
        op === NOTICE_OP['fast-open']
          ? fastOpenMessage(session)
          : sessionNoticeMessage(
              op === NOTICE_OP.close ? 'close' : op === NOTICE_OP.reset ? 'reset' : 'shutdown',
              session,
            ),
        [],
        when,
      );
      return;
    }
    ch.send(noticesMessage(ops), [], when);
  }

  /** Sends what is gathered now (the process is exiting: no later turn). */
  flushNoticesNow(): void {
    this.#flushNotices(true);
  }

  /**
   * A notice about `session`: dropped when the session belongs to an earlier ferryd (this one
   * does not know it, and may use the same id for another session).
   */
  notifySession(session: SessionRef, msg: AppRequest, ring: 'soon' | 'lazy' = 'soon'): void {
    if (session.segment.orphaned) return;
    this.notify(msg, ring);
  }

  /** Routes ferryd's session-reset for `session` to `cb` (one handler per session). */
  onSessionReset(session: SessionRef, cb: (err: FerryError) => void): void {
    if (session.segment.orphaned) return;
    this.#resetHandlers.set(session.id, { session, cb });
  }

  /**
   * Takes a connected session's segment (pinned since its connect-reply) and any reset ferryd
   * sent for it before the socket was bound. Call once per connect-reply, whatever follows.
   */
  claimSession(id: number): { seg: AppSegment | undefined; reset: FerryError | null } {
    const c = this.#unclaimed.get(id);
    if (!c) return { seg: undefined, reset: null };
    this.#unclaimed.delete(id);
    if (c.seg) c.seg.pins--;
    return c;
  }

  /** A listener took the session of an `accepted` event (see the pools' accept). */
  acceptedBy(sessionId: number): void {
    this.#lastBound = sessionId;
  }

  offSessionReset(session: SessionRef): void {
    if (this.#resetHandlers.get(session.id)?.session === session) this.#resetHandlers.delete(session.id);
  }

  /** Keeps the process alive while sockets or servers use the attachment. */
  ref(): void {
    if (this.#refs++ === 0) {
      this.#wake?.ref();
      this.#doorbell.ref();
    }
  }

  unref(): void {
    if (--this.#refs === 0) {
      this.#wake?.unref();
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

  /**
   * Data is expected before `untilMs` (performance.now()): a reply somebody awaits, or the next
   * request of a peer whose requests come back to back. Until then adaptive polling goes on as it
   * does while a write waits for fifo space (never past adaptiveBusyUs after the last work, and not
   * while backing off after a preemption): polling for it saves the peer a ring and us a wake-up.
   * The caller judges whether that paid (see messages/poll-budget.ts).
   */
  pollUntil(untilMs: number): void {
    if (untilMs > this.#pollUntilMs) this.#pollUntilMs = untilMs;
  }

  /**
   * Adaptive mode: a message channel chose to sleep for a frame it expects (messages/expect-poll.ts):
   * until `untilMs` (performance.now()) the notifier's turns run as in interrupt mode while the
   * machine has more runnable tasks than CPUs (sys/run-wait.ts, 'sleep'), unless some channel asks
   * to poll (pollUntil wins).
   */
  sleepUntil(untilMs: number): void {
    if (untilMs > this.#sleepUntilMs) this.#sleepUntilMs = untilMs;
  }

  /**
   * Runs `fn` once when the data notifier next arms to sleep (also each empty poll of an
   * interrupt-style turn): a message channel's announcement that it polls ends there.
   */
  beforeSleep(fn: () => void): void {
    this.#beforeSleep.push(fn);
  }

  #expectingData(): boolean {
    if (performance.now() < this.#pollUntilMs) return true;
    this.#pollUntilMs = 0;
    return false;
  }

  /**
   * The current data poll settled promises (replies): end its spin turn after this poll so their
   * continuations run now; polling goes on from the next loop turn.
   */
  yieldPoll(): void {
    if (this.#polling) this.#notifier.yieldTurn();
  }

  /** Times the data notifier was woken from sleep by the doorbell. */
  get wakeups(): number {
    return this.#notifier.wakeups;
  }

  /** Times the data notifier found itself preempted while polling. */
  get preemptions(): number {
    return this.#notifier.preemptions;
  }

  /** The data notifier's counters (diagnostics): wake-ups from sleep, preemptions, contended turns. */
  get notifierStats(): {
    wakeups: number;
    preemptions: number;
    contendedTurns: number;
    /** The contention rule's input (sys/run-wait.ts): last decided share, and awake totals. */
    runWait: RunWaitStats & { share: number };
    /** The machine's runnable tasks, read while a channel expected frames (sys/run-queue.ts). */
    runQueue: RunQueueStats & { mean: number; cpus: number };
    /** The waits while polling for expected frames, which gate those polls (sys/poll-contention.ts). */
    polling: PollContentionStats & { share: number };
  } {
    const n = this.#notifier;
    const rw = this.#runWait;
    return {
      wakeups: n.wakeups,
      preemptions: n.preemptions,
      contendedTurns: n.contendedTurns,
      runWait: { ...rw.stats, share: rw.share },
      runQueue: { ...rw.runQueue.stats, mean: rw.runQueue.mean, cpus: rw.runQueue.cpus },
      polling: { ...rw.polling.stats, share: rw.polling.share },
    };
  }

  /** Adds a poller to the data notifier's turns (and polls soon). */
  addPoller(p: ExtraPoller): void {
    this.#pollers.add(p);
    this.#notifier.kick();
  }

  removePoller(p: ExtraPoller): void {
    this.#pollers.delete(p);
  }

  /** The fds that came with the connect reply of fifo-less session `id` (once; the caller owns them). */
  takeReplyFds(id: number): number[] {
    const fds = this.#replyFds.get(id) ?? [];
    this.#replyFds.delete(id);
    return fds;
  }

  /**
   * The kernel socket ferryd lent listener `listener` (once; the caller owns the fd), with the
   * window it came with; null when none came. It comes before the listen reply, hence the keeping.
   */
  takeLentListener(listener: number): { fd: number; window: number } | null {
    const lent = this.#lentFds.get(listener) ?? null;
    this.#lentFds.delete(listener);
    return lent;
  }

  #dropLentFds(): void {
    for (const { fd } of this.#lentFds.values()) close(fd);
    this.#lentFds.clear();
  }

  /** Runs the data poll right away (after a local write that may have queued work for us). */
  kick(): void {
    this.#notifier.kick();
  }

  releaseSegmentIfUnused(seg: AppSegment): void {
    if (!seg.deleted || seg.sessionCount > 0 || seg.pins > 0) return;
    if (seg.orphaned) {
      if (!this.#orphans.delete(seg)) return;
      seg.release();
      if (this.#orphans.size === 0) this.#stopProbe();
      this.#disposeIfDone();
      return;
    }
    if (this.segments.get(seg.id) !== seg) return;
    this.segments.delete(seg.id);
    this.#segList = null;
    seg.release();
    this.notify(segmentReleasedMessage(seg.id));
    this.#disposeIfDone();
  }

  /** Detaches for good: no reattach. Sessions already open keep their shared memory. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#lost ??= ferryError('ERR_FERRY_DAEMON_LOST', 'the attachment was closed');
    // Notices of this turn first: an orderly detach tells ferryd what it closed.
    this.#flushNotices(false);
    this.#state = 'closed';
    this.#channel?.close();
    this.#channel = null;
    this.lentSockets.onLost();
    this.#dropLentFds();
    this.emit('closed', this.#closedError());
    this.#disposeIfDone();
  }

  /** Closed and no segment left to serve: the notifier and the data doorbell can go. */
  #disposeIfDone(): void {
    if (this.#state !== 'closed' || this.#orphans.size > 0) return;
    for (const seg of this.segments.values()) if (seg.sessionCount > 0 || seg.pins > 0) return;
    for (const seg of this.segments.values()) seg.release();
    this.segments.clear();
    this.#segList = null;
    this.#notifier.stop();
    this.#runWait.close();
    this.#doorbell.close();
  }

  #closedError(): FerryError {
    return this.#lost ?? ferryError('ERR_FERRY_DAEMON_LOST');
  }

  /** One control connection and HELLO: the first attach and every reattach. */
  async #hello(): Promise<void> {
    const { options } = this;
    const fd = unixSocket('seqpacket', { nonblock: true });
    try {
      connectUnix(fd, options.socket);
    } catch (err) {
      close(fd);
      const e = err as FerryError;
      throw ferryError('ERR_FERRY_DAEMON_UNREACHABLE', `${options.socket}: ${e.code}`, { cause: e });
    }
    const wake = Doorbell.create({ unref: this.#refs === 0 });
    const ch: CtrlChannel = new CtrlChannel(
      fd,
      {
        onMessage: (msg, fds) => this.#onMessage(msg, fds),
        onBadMessage: () => {},
        onClose: (err) => this.#onChannelClose(ch, err ?? ferryError('ERR_FERRY_DAEMON_LOST')),
      },
      // Teardown notices come in bursts of one per session (a peer with thousands of sessions
      // died): queue them all rather than drop ferryd, which is busy, not gone.
      { maxPending: 1_000_000 },
    );
    ch.useWakePipes(wake, -1);
    this.#channel = ch;
    this.#wake = wake;
    const hello = helloMessage({
      name: options.name,
      namespace: options.namespace,
      token: options.token,
      // ferryd counts apps that come back after losing a ferryd (its restarts, as apps saw them).
      ...(this.#lostAt > 0 ? { reattach: this.#reattaches + 1 } : {}),
    });
    let reply: DaemonMessage;
    try {
      reply = await this.#request(ch, hello, [wake.ringFd, this.#doorbell.ringFd]);
      if (reply.t !== 'hello-reply')
        throw ferryError('ERR_FERRY_PROTO_MALFORMED', `hello answered by '${reply.t}'`);
    } catch (err) {
      if (this.#channel === ch) this.#channel = null;
      ch.close();
      throw err;
    } finally {
      // ferryd holds the wake pipe's write end now (or the attach failed): ours would only hide
      // its death, which the pipe's 'end' reports at once.
      wake.dropRingFd();
    }
    if (ch.closed) throw ferryError('ERR_FERRY_DAEMON_LOST', 'ferryd closed the channel after hello');
    this.appId = reply.appId;
    this.features = reply.features;
  }

  #onMessage(msg: CtrlMessage, fds: number[]): void {
    if (msg.id !== 0) {
      const p = this.#pending.get(msg.id);
      // A session without fifos (a topic, a handed TCP socket) gets its transport's resources as fds:
      // kept for its opener.
      const keep = p !== undefined && msg.t === 'connect-reply' && msg.st === 0 && msg.fifos === null;
      if (keep && fds.length > 0) this.#replyFds.set(msg.session, fds);
      else for (const fd of fds) if (msg.t !== 'hello-reply') close(fd);
      if (!p) {
        if (msg.t === 'hello-reply') for (const fd of fds) close(fd);
        // A connect answered after we gave up on it (ETIMEDOUT): ferryd made the session, nobody
        // will use it; let it go rather than leave it (and its fifo pair) until we detach.
        if (msg.t === 'connect-reply' && msg.st === 0 && msg.session !== 0) {
          this.notify(sessionNoticeMessage('reset', msg.session));
        }
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
        this.#channel?.setPeerWakeFd(wakeFd);
      } else if (msg.t === 'hello-reply') {
        for (const fd of fds) close(fd);
      }
      if ('st' in msg && msg.st !== 0) p.reject(errorFromWire(msg.st, msg.err));
      else {
        if (msg.t === 'connect-reply' && msg.fifos) {
          const seg = this.segments.get(msg.fifos.segment);
          if (seg) seg.pins++;
          const early = this.#earlyResets.get(msg.session) ?? null;
          if (early) this.#earlyResets.delete(msg.session);
          this.#unclaimed.set(msg.session, { seg, reset: early });
        }
        p.resolve(msg as DaemonMessage);
      }
      return;
    }
    switch (msg.t) {
      case 'segment-add':
        this.#onSegmentAdd(msg, fds);
        return;
      case 'pool-grant':
        this.pools.onGrant(msg);
        return;
      case 'pool-serve':
        this.pools.onServe(msg, (id) => this.segments.get(id));
        return;
      case 'pool-revoke':
        if (!this.lentSockets.onRevoke(msg.pool)) this.pools.onRevoke(msg);
        return;
      case 'sockets-lent':
        this.lentSockets.onLent(msg, fds);
        return;
      case 'listener-lent': {
        const i = msg.fds.indexOf('listener');
        const fd = i >= 0 ? fds[i] : undefined;
        for (const other of fds) if (other !== fd) close(other);
        if (fd !== undefined) {
          const old = this.#lentFds.get(msg.listener);
          if (old) close(old.fd);
          this.#lentFds.set(msg.listener, { fd, window: msg.window });
        }
        this.emit('listener-lent', msg.listener, msg.window, fd !== undefined);
        return;
      }
      case 'segment-del': {
        const seg = this.segments.get(msg.segment);
        this.pools.dropSegment(msg.segment);
        if (seg) {
          seg.deleted = true;
          this.releaseSegmentIfUnused(seg);
        }
        return;
      }
      case 'accepted': {
        const i = msg.fds.indexOf('socket');
        const handed: HandedFd | null = i >= 0 && fds[i] !== undefined ? { fd: fds[i], taken: false } : null;
        for (const fd of fds) if (fd !== handed?.fd) close(fd);
        this.emit('accepted', msg, handed);
        if (handed && !handed.taken) {
          // No listener took it (closed meanwhile): let the connection go.
          close(handed.fd);
          this.notify(sessionNoticeMessage('reset', msg.session));
        }
        return;
      }
      case 'session-reset': {
        const h = this.#resetHandlers.get(msg.session);
        if (h) h.cb(errorFromWire(msg.st, msg.err));
        else {
          const c = this.#unclaimed.get(msg.session);
          if (c) c.reset = errorFromWire(msg.st, msg.err);
          else {
            if (this.#earlyResets.size >= EARLY_RESETS) {
              const oldest = this.#earlyResets.keys().next();
              if (!oldest.done) this.#earlyResets.delete(oldest.value);
            }
            this.#earlyResets.set(msg.session, errorFromWire(msg.st, msg.err));
          }
        }
        return;
      }
      default:
        for (const fd of fds) close(fd);
    }
  }

  #onSegmentAdd(msg: SegmentAdd, fds: number[]): void {
    const segFd = fds[msg.fds.indexOf('segment')];
    const bellFd = fds[msg.fds.indexOf('doorbell')];
    if (segFd === undefined || bellFd === undefined || this.segments.has(msg.segment)) {
      for (const fd of fds) close(fd);
      return;
    }
    try {
      this.segments.set(msg.segment, new AppSegment(msg, segFd, bellFd));
      this.#segList = null;
      // A sleeping notifier armed only the segments it knew: poll once more to arm this one.
      this.#notifier.kick();
    } catch {
      // A segment we cannot trust is never mapped; sessions placed in it will fail to open.
      close(segFd);
      close(bellFd);
    }
  }

  /** The current segments as an array, rebuilt when they change: the polling loops run on it. */
  #segs(): AppSegment[] {
    if (this.#segList === null) this.#segList = [...this.segments.values()];
    return this.#segList;
  }

  #pollSegments(): number {
    let work = 0;
    this.#polling = true;
    try {
      const segs = this.#segs();
      for (let i = 0; i < segs.length; i++) work += (segs[i] as AppSegment).poll();
      if (this.#orphans.size > 0) for (const seg of [...this.#orphans]) work += seg.poll();
      if (this.#pollers.size > 0) for (const p of this.#pollers) work += p.poll();
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

  // These run on every turn of a polling notifier: plain loops, no generator (each call of one
  // allocated, and a polling process collected garbage every few milliseconds for it).
  #writesBlocked(): boolean {
    const segs = this.#segs();
    for (let i = 0; i < segs.length; i++) if ((segs[i] as AppSegment).spaceWaiters > 0) return true;
    if (this.#orphans.size > 0) for (const seg of this.#orphans) if (seg.spaceWaiters > 0) return true;
    return false;
  }

  #armSegments(): boolean {
    if (this.#beforeSleep.length > 0) {
      const fns = this.#beforeSleep;
      this.#beforeSleep = [];
      for (const fn of fns) fn();
    }
    let pending = false;
    const segs = this.#segs();
    for (let i = 0; i < segs.length; i++) if ((segs[i] as AppSegment).armWake()) pending = true;
    if (this.#orphans.size > 0) for (const seg of this.#orphans) if (seg.armWake()) pending = true;
    if (this.#pollers.size > 0) for (const p of this.#pollers) if (p.arm()) pending = true;
    return pending;
  }

  #onChannelClose(ch: CtrlChannel, err: FerryError): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(ferryError('ERR_FERRY_DAEMON_LOST', err.message, { cause: err }));
    }
    this.#pending.clear();
    // A failed reattach attempt, or our own close(): nothing more to do.
    if (ch !== this.#channel || this.#state !== 'attached') return;
    // Notices for this ferryd's sessions mean nothing to the next one (nor its resets to us).
    this.#earlyResets.clear();
    this.#batch = [];
    this.#batchSoon = false;
    this.#channel = null;
    this.#wake = null;
    this.#state = 'away';
    this.#lostAt = Date.now();
    this.#lost =
      err instanceof FerryError && err.code === 'ERR_FERRY_DAEMON_LOST'
        ? err
        : ferryError('ERR_FERRY_DAEMON_LOST', err.message, { cause: err });
    // Before the segments become orphans and listeners forget their ids: pairs clients took are
    // accepted, the others voided.
    this.pools.onLost();
    this.lentSockets.onLost();
    this.#dropLentFds();
    this.#orphanSegments();
    this.emit('lost', this.#lost);
    const timeout = this.options.reattachTimeoutMs ?? Number.POSITIVE_INFINITY;
    if (timeout > 0) void this.#reattach(timeout);
    else this.close();
  }

  /**
   * The segments of the lost ferryd become orphans: the next one does not know them. Sessions in
   * them that ferryd itself carried (TCP) cannot go on and fail with ECONNRESET; cut-through
   * sessions continue between the two apps.
   */
  #orphanSegments(): void {
    this.#resetHandlers.clear();
    const segs = [...this.segments.values()];
    this.segments.clear();
    this.#segList = null;
    const carried = ferryError('ECONNRESET', 'ferryd, which carried this session, went away');
    for (const seg of segs) {
      seg.orphaned = true;
      seg.deleted = true;
      this.#orphans.add(seg);
      if (seg.daemonPeer) seg.failAll(carried);
      this.releaseSegmentIfUnused(seg);
    }
    if (this.#orphans.size > 0 && !this.#probeTimer) {
      this.#probeTimer = setInterval(() => this.#probeOrphans(), ORPHAN_PROBE_MS);
      this.#probeTimer.unref();
    }
  }

  /**
   * ferryd used to tell us when a peer app died; for orphan segments nobody will. Ringing the
   * peer's doorbell fails with EPIPE once no process holds its read end, i.e. the peer is gone:
   * its sessions then fail with ECONNRESET instead of waiting forever. (A live peer just sees a
   * spurious wake-up.)
   */
  #probeOrphans(): void {
    const gone = ferryError('ECONNRESET', 'peer app went away while ferryd was away');
    for (const seg of [...this.#orphans]) {
      if (!seg.peerAlive()) {
        seg.failAll(gone);
        this.releaseSegmentIfUnused(seg);
      }
    }
  }

  #stopProbe(): void {
    if (this.#probeTimer) clearInterval(this.#probeTimer);
    this.#probeTimer = null;
  }

  async #reattach(timeoutMs: number): Promise<void> {
    const min = this.options.reattachMinDelayMs ?? 50;
    const max = this.options.reattachMaxDelayMs ?? 2000;
    let delay = min;
    while (this.#state === 'away') {
      // Jitter: apps that lost the same ferryd do not all come back in the same millisecond.
      await sleep(delay / 2 + Math.random() * (delay / 2));
      if (this.#state !== 'away') return;
      try {
        await this.#hello();
      } catch (err) {
        if (this.#state !== 'away') return;
        if (Date.now() - this.#lostAt >= timeoutMs) {
          this.#lost = ferryError('ERR_FERRY_DAEMON_LOST', `gave up reattaching: ${(err as Error).message}`, {
            cause: err,
          });
          this.close();
          return;
        }
        delay = Math.min(max, delay * 2);
        continue;
      }
      if (this.#state !== 'away') {
        this.#channel?.close();
        return;
      }
      this.#state = 'attached';
      this.#reattaches++;
      this.emit('reattached', { appId: this.appId, awayMs: Date.now() - this.#lostAt });
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Attachments holding notices for the end of the turn (flushed by a process that exits first). */
const pendingBatches = new Set<Attachment>();
let exitHooked = false;

function flushAllOnExit(): void {
  for (const att of pendingBatches) att.flushNoticesNow();
  pendingBatches.clear();
}

/** The NOTICE_OP of a session notice that may ride in `notices`; 0 for any other message. */
function noticeOp(msg: AppRequest): number {
  switch (msg.t) {
    case 'fast-open':
      return NOTICE_OP['fast-open'];
    case 'close':
      return NOTICE_OP.close;
    case 'shutdown':
      return NOTICE_OP.shutdown;
    case 'reset':
      return NOTICE_OP.reset;
    default:
      return 0;
  }
}
