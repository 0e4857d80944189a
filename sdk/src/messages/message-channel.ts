/**
 * MessageChannel: whole msgpack values over one session's fifo pair, with one-way sends,
 * request/response, and async iteration of what the peer pushes. Both ends of a connection are a
 * MessageChannel (the server's side gets its handlers from createMessageServer).
 *
 * Lifecycle: open -> closing (close() called: flush, FIN, wait for the peer's FIN) -> closed; or
 * open -> closed at once on failure (peer reset or death, bad frame), which rejects every pending
 * request with the cause and makes the iterator throw it.
 */
import { EventEmitter } from 'node:events';
import { requestTraced, traceRequest } from '../api/diagnostics.js';
import type { SessionOwner } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import { type FerryError, ferryError } from '../errors.js';
import { type MessageKind, MSG_KIND, MSG_PROTO_VERSION } from '../proto/message-frame.js';
import { type ExpectHost, ExpectPoll, type ExpectStats } from './expect-poll.js';
import { FrameReader, type LoanFrame } from './frame-reader.js';
import { FrameWriter } from './frame-writer.js';
import { type OutgoingLoan, ReceivedLoan } from './loan.js';
import type { ResolvedChannelOptions } from './options.js';
import { errorBody, remoteError } from './remote-error.js';
import { RequestTable } from './request-table.js';
import { ServingTable } from './serving-table.js';
import { closeLink, finLink, openLink, type SessionLink } from './session-link.js';
import { ValueInbox } from './value-inbox.js';

/** Given to onRequest: which channel asked, and a signal aborted if the caller gives up. */
export interface RequestContext {
  readonly channel: MessageChannel;
  /** The request's correlation id on this channel. */
  readonly id: number;
  /** Aborted when the caller cancels (abort, timeout) or the channel closes. */
  readonly signal: AbortSignal;
}

/** Given to onMessage. */
export interface MessageContext {
  readonly channel: MessageChannel;
}

export interface ChannelHandlers {
  /** Answers a request: the returned value (or the promise's) is the reply; a throw or rejection
   *  is the error reply (ERR_FERRY_REMOTE at the caller). */
  onRequest?: (value: unknown, ctx: RequestContext) => unknown;
  /** Takes one-way values. Without it they are buffered for `for await (const v of channel)`. */
  onMessage?: (value: unknown, ctx: MessageContext) => void;
  /** Send the handler's error stack with error replies. Default false. */
  exposeStack?: boolean;
}

export interface RequestOptions {
  /** ETIMEDOUT after this many ms; default the channel's requestTimeoutMs; 0 = never. */
  timeoutMs?: number;
  /** Aborting rejects the request (AbortError, code ABORT_ERR) and tells the peer. */
  signal?: AbortSignal;
}

type State = 'open' | 'closing' | 'closed';

/**
 * How long adaptive polling waits at most for an awaited reply, or for the next request of a peer
 * after our reply, before sleeping (ms); whether it polls at all is PollBudget's choice. A round
 * trip with both sides polling takes about 10-20 us on a free machine, one through two wake-ups
 * 60-150 us.
 */
const EXPECT_POLL_MS = 0.2;

const RESOLVED: Promise<void> = Promise.resolve();

/** A request being served: its context for onRequest and its state, in one object per request. */
class Serving implements RequestContext {
  readonly channel: MessageChannel;
  readonly id: number;
  controller: AbortController | null = null;
  cancelled = false;

  constructor(channel: MessageChannel, id: number) {
    this.channel = channel;
    this.id = id;
  }

  /** Made on first use: most handlers never look at it. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }
}

export class MessageChannel extends EventEmitter implements SessionOwner, AsyncIterable<unknown> {
  readonly localUri: string;
  readonly remoteUri: string;
  /** 'ct' for cut-through, else the transport ferryd carries the channel over ('tcp', ...). */
  readonly transport: string;
  readonly #link: SessionLink;
  readonly #opts: ResolvedChannelOptions;
  readonly #handlers: ChannelHandlers;
  readonly #writer: FrameWriter;
  readonly #reader: FrameReader;
  readonly #requests: RequestTable;
  #state: State = 'open';
  #error: FerryError | null = null;
  #peerEnded = false;
  /** Received values and the iterators' waiters (done or the error once the channel ends). */
  readonly #inbox: ValueInbox;
  readonly #serving = new ServingTable<Serving>();
  /** Polling for replies we await, and for the peer's next request after our reply. */
  readonly #replyPoll: ExpectPoll;
  readonly #requestPoll: ExpectPoll;
  #pulling = false;
  #pullAgain = false;
  #stallTimer: NodeJS.Timeout | null = null;
  #stallMark = -1;
  #closePromise: Promise<void> | null = null;
  #closeTimer: NodeJS.Timeout | null = null;
  #onClosed: (() => void) | null = null;
  #refed = true;
  /** Inside the constructor (see #teardown). */
  #constructing = false;
  #readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  readonly #msgCtx: MessageContext;

  /** @internal Made by connectMessages() and the server; the session is opened here. */
  constructor(link: SessionLink, opts: ResolvedChannelOptions, handlers: ChannelHandlers = {}) {
    super();
    this.#link = link;
    this.#opts = opts;
    this.#inbox = new ValueInbox(opts.highWaterMark, {
      resume: () => this.#kickPull(),
      handed: () => this.#link.att.yieldPoll(),
      ended: () => this.#error ?? (this.#state !== 'open' || this.#peerEnded),
    });
    this.#handlers = handlers;
    this.localUri = link.localUri;
    this.remoteUri = link.remoteUri;
    this.transport = link.transport;
    this.#msgCtx = { channel: this };
    const att = link.att;
    const host: ExpectHost = {
      mode: att.options.mode,
      wakeups: () => att.wakeups,
      preemptions: () => att.preemptions,
      pollUntil: (untilMs) => att.pollUntil(untilMs),
      sleepUntil: (untilMs) => att.sleepUntil(untilMs),
      announce: (id) => {
        if (this.#state !== 'closed') link.session.announcePoll(id);
      },
      beforeSleep: (fn) => att.beforeSleep(fn),
    };
    this.#replyPoll = new ExpectPoll(EXPECT_POLL_MS, host);
    this.#requestPoll = new ExpectPoll(EXPECT_POLL_MS, host);
    // A pair lent from a pool may hold the last user's announcement.
    link.session.announcePoll(0);
    this.#writer = new FrameWriter(link.session, {
      maxBodyBytes: opts.maxMessageBytes,
      maxQueuedBytes: opts.maxQueuedBytes,
      defer: (fn) => {
        // Outside a poll (a request written from the caller's continuation): a microtask, which
        // costs less than a tick (no async context pushed and popped, no tick object).
        if (!att.afterPoll(fn)) void RESOLVED.then(fn);
      },
      onDrain: () => this.#onDrain(),
      onError: (err) => this.#fail(err as FerryError),
    });
    this.#reader = new FrameReader(
      link.session,
      {
        onFrame: (kind, id, value) => this.#onFrame(kind, id, value),
        onMessage: (value) => this.#deliver(value),
        onLoan: (loan) => this.#onLoan(loan),
        onFailure: (err) => this.#fail(err, 'reset'),
      },
      { maxBodyBytes: opts.maxMessageBytes, paused: () => this.#paused() },
    );
    this.#requests = new RequestTable(opts.requestTimeoutMs, (id) => {
      if (this.#state === 'open') this.#writer.writeEmpty(MSG_KIND.CANCEL, id);
    });
    // shapes: 1 says this end reads shape records (proto/shape-codec.ts); a peer that does not say
    // so gets msgpackr only.
    this.#writer.writeValue(MSG_KIND.HELLO, 0, {
      v: MSG_PROTO_VERSION,
      maxBytes: opts.maxMessageBytes,
      shapes: 1,
    });
    this.#constructing = true;
    try {
      openLink(link, this);
    } finally {
      this.#constructing = false;
    }
  }

  /** 'open', 'closing' or 'closed'. */
  get state(): State {
    return this.#state;
  }

  /** Why the channel failed (null while open, or after a clean close). */
  get error(): FerryError | null {
    return this.#error;
  }

  /** Requests sent and not yet answered. */
  get pendingRequests(): number {
    return this.#requests.size;
  }

  /**
   * How this end waited for the frames of round trips (diagnostics): for replies it awaited and
   * for the peer's next request after its reply, the choices to poll or sleep by the peer's
   * announced state, whether each expected frame came while polling or after a wake-up, and the
   * counts of the attachment's notifier (shared by every session of the attachment).
   */
  get roundTripStats(): {
    reply: ExpectStats & { averages: ExpectPoll['averages']; budgets: ExpectPoll['budgetStats'] };
    request: ExpectStats & { averages: ExpectPoll['averages']; budgets: ExpectPoll['budgetStats'] };
    notifier: Attachment['notifierStats'];
  } {
    const r = this.#replyPoll;
    const q = this.#requestPoll;
    return {
      reply: { ...r.stats, averages: r.averages, budgets: r.budgetStats },
      request: { ...q.stats, averages: q.averages, budgets: q.budgetStats },
      notifier: this.#link.att.notifierStats,
    };
  }

  /** Values received and waiting to be iterated (at most highWaterMark: then reading stops). */
  get bufferedValues(): number {
    return this.#inbox.size;
  }

  /** Encoded bytes waiting behind a full fifo. */
  get queuedBytes(): number {
    return this.#writer.queuedBytes;
  }

  /**
   * Sends a one-way value. True when it is in the fifo; false when it waits behind a full fifo
   * (it will go, whole and in order): wait for 'drain' or `await ready()` before sending more.
   * Throws EMSGSIZE, ENOBUFS (too much already waits), ERR_FERRY_CHANNEL_CLOSED, or msgpackr's
   * error for a value it cannot encode; a refused value is not sent at all.
   */
  send(value: unknown): boolean {
    this.#checkOpen();
    if (!this.#reader.sawHello) this.#lookForHello();
    return this.#writer.writeValue(MSG_KIND.MESSAGE, 0, value);
  }

  /**
   * Lends `bytes` bytes to fill in place and send with `loan.commit(meta?)` (see OutgoingLoan):
   * in the fifo itself when it has contiguous room, else a private buffer copied at commit. One
   * loan at a time per channel; values sent meanwhile follow it. Throws EMSGSIZE (larger than
   * maxMessageBytes), ERR_FERRY_LOAN_STATE (a loan is open), ERR_FERRY_CHANNEL_CLOSED.
   */
  loan(bytes: number): OutgoingLoan {
    this.#checkOpen();
    return this.#writer.openLoan(bytes);
  }

  /** Sends `value` as a request and resolves with the peer's reply (see RequestOptions). */
  request(value: unknown, options?: RequestOptions): Promise<unknown> {
    // Untraced (the usual case), no closure is made for the tracer.
    if (!requestTraced()) return this.#request(value, options);
    return traceRequest(this, value, () => this.#request(value, options));
  }

  #request(value: unknown, options: RequestOptions | undefined): Promise<unknown> {
    if (this.#state !== 'open') return Promise.reject(this.#closedError());
    // One clock reading for the default timeout's deadline and the expectation of the reply.
    const now = performance.now();
    let r: { readonly id: number; readonly promise: Promise<unknown> };
    try {
      r = this.#requests.add(options?.timeoutMs, options?.signal, now);
    } catch (err) {
      return Promise.reject(err);
    }
    // Read before the request goes: once the server has it, it takes its announcement back.
    const peerPolling = this.#link.session.peerPollId() === r.id;
    try {
      this.#writer.writeValue(MSG_KIND.REQUEST, r.id, value);
    } catch (err) {
      this.#requests.fail(r.id, err as Error);
      return r.promise;
    }
    if (this.#requests.size === 1) this.#replyPoll.start(now, r.id, peerPolling, r.id);
    return r.promise;
  }

  /**
   * The peer's HELLO says whether it reads shape records: take it as soon as it is in the fifo
   * (not when the loop next turns), so that a burst sent right after connecting uses them. A
   * version the peer speaks and we do not fails the channel here (send then throws).
   */
  #lookForHello(): void {
    if (this.#pulling) return;
    this.#reader.takeHello();
    this.#checkOpen();
  }

  /** Resolves when nothing waits behind a full fifo (at once if nothing does). */
  ready(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(this.#closedError());
    if (!this.#writer.backlogged) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /**
   * Closes the channel: pending requests reject with ERR_FERRY_CHANNEL_CLOSED, what was sent is
   * flushed, then FIN; resolves once the peer ended too (or closeTimeoutMs passed: then reset).
   */
  close(): Promise<void> {
    if (this.#closePromise) return this.#closePromise;
    if (this.#state === 'closed') return Promise.resolve();
    this.#state = 'closing';
    this.#closePromise = new Promise<void>((resolve) => {
      this.#onClosed = resolve;
    });
    this.#requests.rejectAll(ferryError('ERR_FERRY_CHANNEL_CLOSED', 'close() was called'));
    this.#abortServing();
    this.#writer.abortOpenLoan();
    this.#closeTimer = setTimeout(
      () => this.#fail(ferryError('ETIMEDOUT', 'close timed out'), 'reset', true),
      this.#opts.closeTimeoutMs,
    );
    this.#closeTimer.unref();
    if (this.#writer.flush()) this.#sendFin();
    return this.#closePromise;
  }

  /** Lets the process exit while only this channel is open (as net.Socket.unref). */
  unref(): this {
    if (this.#refed && this.#state !== 'closed') {
      this.#refed = false;
      this.#link.att.unref();
    }
    return this;
  }

  ref(): this {
    if (!this.#refed && this.#state !== 'closed') {
      this.#refed = true;
      this.#link.att.ref();
    }
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this.#inbox.iterator(() => this.close());
  }

  /**
   * The received values in arrays: each step hands over every value buffered (at least one),
   * with one promise per array rather than one per value (`for await (const batch of
   * ch.batches())`). Ends and throws as the value iterator does; leaving the loop closes the
   * channel. Use one of the two iterators at a time.
   */
  batches(): AsyncIterableIterator<unknown[]> {
    return this.#inbox.batchIterator(() => this.close());
  }

  // ---- SessionOwner upcalls ----

  onReadable(): void {
    this.#pull();
  }

  onWritable(): void {
    if (this.#state === 'closed') return;
    if (this.#writer.flush() && this.#state === 'closing') this.#sendFin();
  }

  onFailure(err: FerryError): void {
    this.#fail(err, err.code === 'ECONNRESET' ? 'peer-reset' : 'reset');
  }

  // ---- receiving ----

  #pull(): void {
    if (this.#state === 'closed') return;
    if (this.#pulling) {
      this.#pullAgain = true;
      return;
    }
    this.#pulling = true;
    try {
      for (let round = 0; round < 64 && !this.#isClosed(); round++) {
        this.#pullAgain = false;
        const r = this.#reader.pull();
        if (r === 'failed' || r === 'paused' || this.#isClosed()) return;
        const s = this.#link.session;
        if (r === 'partial') {
          if (s.peerFinished && !this.#pullAgain) {
            this.#fail(
              ferryError('ERR_FERRY_MSG_INCOMPLETE', 'the peer ended in the middle of a frame'),
              'reset',
            );
            return;
          }
          this.#watchStall(s.readableBytes);
        } else {
          this.#clearStall();
          if (s.ended) {
            this.#onPeerEnd();
            return;
          }
        }
        if (this.#pullAgain) continue;
        if (!s.armRead()) return;
      }
      setImmediate(() => this.#pull());
    } finally {
      this.#pulling = false;
    }
  }

  #paused(): boolean {
    return (
      this.#inbox.size >= this.#opts.highWaterMark || this.#serving.size >= this.#opts.maxConcurrentRequests
    );
  }

  /** A frame is partly there: fail if nothing more comes for frameTimeoutMs. */
  #watchStall(readable: number): void {
    if (this.#reader.heldLoans > 0) {
      // Our own loans may be what stops the peer (the fifo is full behind them).
      this.#clearStall();
      return;
    }
    if (this.#stallTimer !== null && readable === this.#stallMark) return;
    this.#clearStall();
    this.#stallMark = readable;
    this.#stallTimer = setTimeout(() => {
      this.#stallTimer = null;
      this.#fail(
        ferryError(
          'ERR_FERRY_MSG_INCOMPLETE',
          `a frame stayed incomplete for ${this.#opts.frameTimeoutMs} ms`,
        ),
        'reset',
      );
    }, this.#opts.frameTimeoutMs);
    this.#stallTimer.unref();
  }

  #clearStall(): void {
    if (this.#stallTimer !== null) clearTimeout(this.#stallTimer);
    this.#stallTimer = null;
    this.#stallMark = -1;
  }

  #onFrame(kind: MessageKind, id: number, value: unknown): void {
    switch (kind) {
      case MSG_KIND.MESSAGE:
        this.#deliver(value);
        return;
      case MSG_KIND.REQUEST:
        this.#serve(id, value);
        return;
      case MSG_KIND.REPLY:
      case MSG_KIND.ERROR: {
        const failed = kind === MSG_KIND.ERROR;
        const r = this.#requests.settle(id, failed ? remoteError(value) : value, failed);
        if (r === 'ok') {
          // The caller's continuation is a microtask: let it run before the poll spins on.
          this.#link.att.yieldPoll();
          if (this.#requests.size === 0) this.#replyPoll.end(performance.now());
        } else if (r === 'unknown') {
          this.#fail(
            ferryError('ERR_FERRY_MSG_MALFORMED', `a reply to request ${id}, which was never sent`),
            'reset',
          );
        }
        return;
      }
      case MSG_KIND.CANCEL: {
        const s = this.#serving.get(id);
        if (s) {
          s.cancelled = true;
          s.controller?.abort(ferryError('ETIMEDOUT', 'the caller cancelled the request'));
        }
        return;
      }
      case MSG_KIND.HELLO: {
        const hello = value as { v?: unknown; shapes?: unknown } | null;
        const v = hello?.v;
        if (typeof v !== 'number' || Math.trunc(v) !== MSG_PROTO_VERSION) {
          this.#fail(
            ferryError('ERR_FERRY_PROTO_VERSION', `the peer speaks message protocol ${String(v)}`),
            'reset',
          );
          return;
        }
        if (hello?.shapes === 1) this.#writer.enableShapes();
        return;
      }
      default:
        return;
    }
  }

  #onLoan(loan: LoanFrame): void {
    const reader = this.#reader;
    const release = loan.held ? () => reader.release(loan.token) : () => {};
    const received = new ReceivedLoan(loan.bytes as Buffer, loan.meta, loan.held, release);
    if (this.#state !== 'open') {
      received.release();
      return;
    }
    this.#deliver(received);
  }

  #deliver(value: unknown): void {
    if (this.#state !== 'open') return;
    const onMessage = this.#handlers.onMessage;
    if (onMessage) {
      try {
        onMessage(value, this.#msgCtx);
      } catch (err) {
        this.#handlerThrew(err);
      }
      return;
    }
    this.#inbox.push(value);
  }

  /**
   * Polls for a frame we expect (announcing it to the peer as `announceId`) when polling for it
   * has been paying with the peer in its announced state (see expect-poll.ts).
   */
  #expect(e: ExpectPoll, key: number, peerPolling: boolean, announceId: number): void {
    e.start(performance.now(), key, peerPolling, announceId);
  }

  #kickPull(): void {
    queueMicrotask(() => this.#pull());
  }

  // ---- serving requests ----

  #serve(id: number, value: unknown): void {
    if (this.#state !== 'open') return;
    if (this.#serving.get(id) !== undefined) {
      this.#fail(ferryError('ERR_FERRY_MSG_MALFORMED', `request id ${id} reused while in flight`), 'reset');
      return;
    }
    const handler = this.#handlers.onRequest;
    if (!handler) {
      this.#replyError(id, ferryError('ERR_FERRY_NOT_SUPPORTED', 'this channel has no request handler'));
      return;
    }
    if (this.#serving.size === 0) this.#requestPoll.end(performance.now());
    const serving = new Serving(this, id);
    this.#serving.set(id, serving);
    let result: unknown;
    try {
      result = handler(value, serving);
    } catch (err) {
      this.#finishServing(id, serving, err, true);
      return;
    }
    if (isThenable(result)) {
      // The reply is written from a microtask: let it run before the poll spins on.
      this.#link.att.yieldPoll();
      result.then(
        (v) => this.#finishServing(id, serving, v, false),
        (e) => this.#finishServing(id, serving, e, true),
      );
    } else {
      this.#finishServing(id, serving, result, false);
    }
  }

  #finishServing(id: number, serving: Serving, value: unknown, failed: boolean): void {
    if (this.#serving.get(id) !== serving) return;
    this.#serving.delete(id);
    // The caller gave up: it would drop the reply anyway.
    if (serving.cancelled || this.#state !== 'open') return;
    // Read before the reply goes: once the caller has it, it takes its announcement back.
    const peerPolling = this.#link.session.peerPollId() === id;
    if (failed) {
      this.#replyError(id, value);
    } else {
      try {
        this.#writer.writeValue(MSG_KIND.REPLY, id, value);
      } catch (err) {
        // The reply cannot be encoded or is too large: the caller gets that as the error.
        this.#replyError(id, err);
      }
    }
    // A peer whose requests come back to back sends the next one soon after this reply.
    if (this.#serving.size === 0) {
      const next = id >= 0xffffffff ? 1 : id + 1;
      this.#expect(this.#requestPoll, next, peerPolling, next);
    }
    if (this.#serving.size === this.#opts.maxConcurrentRequests - 1) this.#kickPull();
  }

  #replyError(id: number, thrown: unknown): void {
    if (this.#state !== 'open') return;
    try {
      this.#writer.writeValue(MSG_KIND.ERROR, id, errorBody(thrown, this.#handlers.exposeStack === true));
    } catch (err) {
      this.#writer.writeValue(MSG_KIND.ERROR, id, {
        name: 'Error',
        message: `unencodable error: ${String(err)}`,
      });
    }
  }

  #abortServing(): void {
    for (const s of this.#serving.values()) {
      s.cancelled = true;
      s.controller?.abort(ferryError('ERR_FERRY_CHANNEL_CLOSED', 'the channel closed'));
    }
    this.#serving.clear();
  }

  #handlerThrew(err: unknown): void {
    // As a throwing 'data' listener of a socket does: the process hears it, the channel goes on.
    process.nextTick(() => {
      throw err;
    });
  }

  // ---- ending ----

  #onPeerEnd(): void {
    if (this.#peerEnded) return;
    this.#peerEnded = true;
    this.#inbox.endWaiters(null);
    if (this.#state === 'open') {
      this.#requests.rejectAll(ferryError('ECONNRESET', 'the peer closed the channel'));
      this.#abortServing();
      this.#state = 'closing';
      if (this.#writer.flush()) this.#sendFin();
      return;
    }
    if (this.#finSent) this.#teardown('clean');
  }

  #finSent = false;

  #sendFin(): void {
    if (this.#finSent) return;
    this.#finSent = true;
    finLink(this.#link);
    if (this.#peerEnded) this.#teardown('clean');
  }

  #onDrain(): void {
    for (const w of this.#readyWaiters.splice(0)) w.resolve();
    this.emit('drain');
  }

  #fail(err: FerryError, how: 'reset' | 'peer-reset' = 'reset', closing = false): void {
    if (this.#state === 'closed') return;
    if (!closing) this.#error = err;
    this.#requests.rejectAll(err);
    this.#abortServing();
    this.#inbox.endWaiters(closing ? null : err);
    this.#teardown(how);
  }

  #teardown(how: 'clean' | 'peer-reset' | 'reset'): void {
    if (this.#state === 'closed') return;
    this.#replyPoll.stop();
    this.#requestPoll.stop();
    this.#state = 'closed';
    this.#clearStall();
    if (this.#closeTimer) clearTimeout(this.#closeTimer);
    this.#reader.stop();
    this.#reader.dropHeld();
    this.#writer.discard();
    const err = this.#error;
    for (const w of this.#readyWaiters.splice(0)) w.reject(err ?? this.#closedError());
    this.#inbox.endWaiters(err);
    if (!this.#refed) this.#link.att.ref();
    closeLink(this.#link, how);
    this.#onClosed?.();
    // Bytes already in the fifo when the channel opens (a fast connect's client writes before the
    // server accepts) can fail it inside the constructor: 'close' then comes a tick later, once
    // whoever made the channel could listen.
    if (this.#constructing) process.nextTick(() => this.emit('close', err));
    else this.emit('close', err);
  }

  /** A method, not a field test: handlers called from pull() may close the channel meanwhile. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  #checkOpen(): void {
    if (this.#state !== 'open') throw this.#closedError();
  }

  #closedError(): FerryError {
    if (this.#error) return this.#error;
    if (this.#peerEnded && this.#closePromise === null)
      return ferryError('ECONNRESET', 'the peer closed the channel');
    return ferryError('ERR_FERRY_CHANNEL_CLOSED');
  }

  /** For tests: fail as if the peer had sent something broken. @internal */
  _failForTest(err: FerryError): void {
    this.#fail(err);
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
