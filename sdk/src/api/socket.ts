/**
 * Socket: a stream.Duplex shaped like net.Socket, over one session's fifo pair. Bytes go app to
 * app through shared memory; ferryd hears only about connect, shutdown (cut-through only), close and
 * reset.
 */
import { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import type { AppSession, SessionOwner } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import { announceFin, endSession, openSession, type SessionEnd } from '../app/session-control.js';
import { FerryError, ferryError } from '../errors.js';
import { parseUri, type SessionUri } from '../proto/uri.js';
import { kDestroying, publishClose } from './diagnostics.js';
import { type ConnectOptions, type OnReadOptions, resolveUri } from './options.js';
import { connectArgs, startConnect, type TakeHanded } from './socket-connect.js';
import { makeStreamHandle, type StreamHandle } from './stream-handle.js';
import { ReadView, WriteReservation } from './zero-copy.js';

const debug = debuglog('ferry');
/**
 * Bytes handed to node:http's parser per readBuffer: its buffer's size (node_http_parser.cc's
 * kAllocBufferSize), which is also what a kernel socket's read gives it at most.
 */
const HANDLE_READ_BYTES = 64 * 1024;

export interface SocketOptions {
  allowHalfOpen?: boolean;
  /** Largest chunk one read hands to the stream ('data'); default 1 MiB. */
  readChunkBytes?: number;
  /** Read into the caller's buffer instead of emitting 'data' (net.Socket's `onread`). */
  onread?: OnReadOptions;
  /** Aborting it destroys the socket with an AbortError, as net.Socket's `signal` option. */
  signal?: AbortSignal;
}

type PendingWrite = { chunks: Uint8Array[]; cb: (err?: Error | null) => void };

/** Callbacks of fast-path writes due on one tick: `count` calls of `cb`. */
interface FastCallbacks {
  cb: (err?: Error | null) => void;
  count: number;
  /** Its tick came: writes from now on open a new batch. */
  due: boolean;
}

function runFastCallbacks(batch: FastCallbacks): void {
  batch.due = true;
  for (let n = batch.count; n > 0; n--) batch.cb(null);
}

/** The parts of Writable's state the write fast path looks at (public getters in Node 20 and 22). */
interface WritableStateView {
  length: number;
  corked: number;
  writing: boolean;
  ending: boolean;
  destroyed: boolean;
  errored: Error | null;
  afterWriteTickInfo: object | null;
  defaultEncoding: BufferEncoding;
}

/**
 * Small writes are copied into a per-socket stage and published to the fifo together, at the end
 * of the tick (or when the stage fills). Publishing costs a store to the tail's cache line, which
 * the spinning peer reads: once per 64 B message that line bounces between cores on every write.
 */
const STAGE_BYTES = 16 * 1024;
const STAGE_MAX_CHUNK = 1024;

export class Socket extends Duplex implements SessionOwner {
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  localAddress: string | undefined;
  localPort: number | undefined;
  remoteFamily: string | undefined;
  /** 'ct' for cut-through, otherwise the transport ferryd carries the session over. */
  transport: string | undefined;
  connecting = false;
  #attachment: Attachment | null = null;
  #session: AppSession | null = null;
  #bytesRead = 0;
  #bytesWritten = 0;
  #pending: PendingWrite | null = null;
  #wantRead = false;
  #readChunk: number;
  #finished = false;
  #peerReset = false;
  #refed = false;
  #stage: Buffer | null = null;
  #staged = 0;
  #flushScheduled = false;
  /**
   * Writable's state was idle at the last full look (#fastIdle) and nothing that can change that
   * was called since: the write fallback, cork(), end() or destroy() clear it.
   */
  #writableIdle = false;
  /** The newest batch of fast-path write callbacks still to be called (see #fastDone). */
  #fastCbs: FastCallbacks | null = null;
  #onread: OnReadOptions | null = null;
  /** onread mode: paused by the callback's false or by pause(), until resume(). */
  #onreadPaused = false;
  /** Zero-copy receive (onView): the callback, the view out, and bytes it left unreleased. */
  #onview: ((view: ReadView) => void) | null = null;
  #viewOut: ReadView | null = null;
  #viewLeft = 0;
  #viewFinOffered = false;
  #inPullView = false;
  /** reserve() found the fifo full: 'drain' is emitted when space appears. */
  #reserveWaiting = false;
  /** Counts reserve() calls: only the newest reservation may commit. */
  #reserveSeq = 0;
  /** Set when the data path failed (peer reset, corrupt fifo): destroy then resets, never FINs. */
  #failed = false;
  /** _start() ran: bytes may be delivered ('connect' or 'connection' was emitted). */
  #started = false;
  /** setTimeout(): idle time in ms (0: off) and its timer while on, refreshed by reads and writes. */
  #idleMs: number | undefined = undefined;
  #idleTimer: NodeJS.Timeout | null = null;
  /**
   * The timer of the last idle period, left scheduled when it ended (its callback then does
   * nothing) and re-armed by the next setTimeout of the same length: node:http turns a keep-alive
   * socket's timeout off when a request arrives and on again after its response, so a new Timeout
   * per request (and the clearTimeout of the old one) was garbage and timer-list work on every
   * request.
   */
  #spareTimer: NodeJS.Timeout | null = null;
  #spareMs = 0;
  /**
   * The stream way's last look armed the read and found nothing, and no event came since: the
   * peer posts one for anything it writes after the arming (onReadable clears this), so _read
   * need not look again.
   */
  #readArmed = false;
  /** The StreamBase handle node:http's parser may consume (stream-handle.ts); undefined: not made. */
  #handle: StreamHandle | null | undefined = undefined;
  /** Bytes being handed to the handle's reader right now (read, not consumed yet). */
  #handing = 0;
  /** Where node:http keeps the parser that may consume the handle: this, or a wrapping net.Socket. */
  #parserHolder: object | null = null;

  constructor(options: SocketOptions = {}) {
    // decodeStrings false, as net.Socket: strings are encoded straight into fifo space (node:http
    // and undici write their headers as latin1 strings), not into a Buffer first. emitClose off:
    // 'close' carries hadError, as net.Socket's does (emitted by _destroy).
    super({ allowHalfOpen: options.allowHalfOpen ?? false, emitClose: false, decodeStrings: false });
    // A read takes what is there, up to this: a 64 KiB HTTP body plus its header in one piece (64 KiB
    // pieces, as net.Socket reads, split such a response in two and cost the client ~15% more CPU
    // per request in a paired run), and all a default 1 MiB fifo holds in one push: against 256 KiB,
    // a stream's receiver spent ~20% less CPU per MiB and its sender ~20% less (fewer wakes and
    // pushes; BENCHMARKS.md, "Stream and 64 B data path").
    this.#readChunk = options.readChunkBytes ?? 1024 * 1024;
    const onread = options.onread;
    if (onread !== undefined) {
      checkOnread(onread);
      this.#onread = onread;
      // Bytes go to the callback, not through the stream: read from the start, as net does.
      this.#wantRead = true;
    }
    const signal = options.signal;
    if (signal !== undefined) {
      const abort = () => this.destroy(abortError(signal));
      if (signal.aborted) process.nextTick(abort);
      else {
        signal.addEventListener('abort', abort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', abort));
      }
    }
  }

  override pause(): this {
    if (this.#onread) this.#onreadPaused = true;
    return super.pause();
  }

  override resume(): this {
    super.resume();
    if (this.#onread && this.#onreadPaused) {
      this.#onreadPaused = false;
      if (this.#session && this.#started) this.#pull();
    }
    return this;
  }

  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** As net.Socket's: bytes handed to the fifo plus those still queued in the socket (corked,
   *  waiting for space or for the connect). */
  get bytesWritten(): number {
    let n = this.#bytesWritten;
    for (const c of this.#pending?.chunks ?? []) n += c.length;
    const queued = (
      this as unknown as { writableBuffer: { chunk: Buffer | string; encoding: BufferEncoding }[] }
    ).writableBuffer;
    for (const w of queued) {
      n += typeof w.chunk === 'string' ? Buffer.byteLength(w.chunk, w.encoding) : w.chunk.length;
    }
    return n;
  }

  get pending(): boolean {
    return this.#session === null || this.connecting;
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    return this.writable ? 'writeOnly' : 'closed';
  }

  /** The idle timeout set by setTimeout() (undefined until set), as net.Socket's `timeout`. */
  get timeout(): number | undefined {
    return this.#idleMs;
  }

  /**
   * Emits 'timeout' after `ms` without reads or writes (once per idle period; the socket stays
   * open). 0 turns it off. `cb` is added as a 'timeout' listener (removed again by 0), as in net.
   */
  setTimeout(ms: number, cb?: () => void): this {
    if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms)) {
      throw ferryError(
        'ERR_INVALID_ARG_VALUE',
        `timeout must be a non-negative finite number, got ${String(ms)}`,
      );
    }
    const prevMs = this.#idleMs ?? 0;
    this.#idleMs = ms;
    const running = this.#idleTimer;
    if (running !== null) {
      // Kept for the next period instead of cleared: its callback sees it is not current.
      this.#idleTimer = null;
      this.#keepSpare(running, prevMs);
    }
    if (ms === 0) {
      if (cb) this.removeListener('timeout', cb);
      return this;
    }
    if (cb) this.once('timeout', cb);
    if (!this.destroyed) {
      const spare = this.#spareTimer;
      if (spare !== null && this.#spareMs === ms) {
        this.#spareTimer = null;
        // Restarts the period from now, whether the timer is still scheduled or already fired.
        this.#idleTimer = spare.refresh();
        return this;
      }
      // Unref'd, as net's: an idle timeout alone does not keep the process alive. Once it ran out
      // it stays the idle timer, as net's does: the next read or write arms it again (#active), so
      // a socket that was active after a 'timeout' gets another one after the same idle time.
      const timer: NodeJS.Timeout = setTimeout(() => {
        if (this.#idleTimer !== timer) return;
        if (!this.destroyed) this.emit('timeout');
      }, ms).unref();
      this.#idleTimer = timer;
    }
    return this;
  }

  /** Keeps `timer` (made for `ms`) for a later setTimeout(ms); clears the one kept before it. */
  #keepSpare(timer: NodeJS.Timeout, ms: number): void {
    const old = this.#spareTimer;
    if (old !== null && old !== timer) clearTimeout(old);
    this.#spareTimer = timer;
    this.#spareMs = ms;
  }

  /** Reads and writes restart the idle timer. */
  #active(): void {
    this.#idleTimer?.refresh();
  }

  /** net.Socket's: node:http calls it after each read its parser consumed from the handle. @internal */
  _unrefTimer(): void {
    this.#active();
  }

  /**
   * A StreamBase handle for node:http's server parser (`socket._handle`, which node:http reads
   * right after it set `socket.parser`): it then consumes it and the Socket hands it the rx fifo's
   * bytes in place (#pullHandle) instead of pushing Buffers through the Readable. Shown only to a
   * holder of a parser that has not consumed it yet or still consumes it: null to anyone else (http2
   * or TLS would consume it too and write through it; they wrap the Socket as a JS stream instead),
   * in onread/onView modes, and without the binding (stream-handle.ts). @internal
   */
  get _handle(): StreamHandle | null {
    const parser = this.#parser();
    if (this.#handle === undefined) {
      if (parser == null || this.#onread !== null || this.#onview !== null) return null;
      this.#handle = makeStreamHandle(() => this.#resumeHandle());
    }
    const h = this.#handle;
    if (h == null || parser == null) return null;
    return h._consumed !== true || parser._consumed === true ? h : null;
  }

  /** The parser node:http keeps on this Socket or on the net.Socket wrapping it, if any. */
  #parser(): { _consumed?: boolean } | null {
    const holder = this.#parserHolder ?? this;
    const parser = (holder as { parser?: { _consumed?: boolean } | null }).parser;
    return typeof parser === 'object' ? parser : null;
  }

  set _handle(h: StreamHandle | null) {
    this.#handle = h;
  }

  /**
   * A net.Socket wraps this Socket and is given to node:http in its place (http/net-socket.ts):
   * `holder.parser` is then the parser `_handle` is for. @internal
   */
  _setParserHolder(holder: object): void {
    this.#parserHolder = holder;
  }

  /** node:http started reading the handle again (after a pause): deliver what waits. */
  #resumeHandle(): void {
    if (this.#session && this.#started) setImmediate(() => this.#pull());
  }

  /**
   * 1: node:http's parser consumes the handle and reads are on (hand it the bytes); 2: it consumes
   * it and paused reading (leave the bytes in the fifo); 0: no parser consumes it (the stream way:
   * before node:http took the socket, after an upgrade or once a 'data' listener unconsumed it).
   */
  #handleMode(): 0 | 1 | 2 {
    const h = this.#handle;
    if (h == null || h._consumed !== true || this.#parser()?._consumed !== true) return 0;
    return h.reading ? 1 : 2;
  }

  /**
   * Connects this socket, as net.Socket#connect: (uri[, cb]), (options[, cb]) or
   * (port[, host][, cb]). Constructor options (allowHalfOpen, onread, signal) stay the socket's.
   */
  connect(target: string | ConnectOptions, listener?: () => void): this;
  connect(port: number, host?: string, listener?: () => void): this;
  connect(port: number, listener?: () => void): this;
  connect(...args: unknown[]): this {
    if (this.connecting || this.#session !== null || this.destroyed) {
      throw ferryError(
        'ERR_FERRY_SOCKET_CLOSED',
        'connect() on a socket that is connecting, connected or destroyed',
      );
    }
    const { opts, listener } = connectArgs(args);
    resolveUri(opts);
    if (listener) this.once('connect', listener);
    startConnect(this, opts, this._handedConnect(opts));
    return this;
  }

  /** How a connect of this socket takes a handed kernel socket; null: it asks for none. @internal */
  _handedConnect(_opts: ConnectOptions): TakeHanded<Socket> | null {
    return null;
  }

  /** Ends the writable side, then destroys the socket once it finished (net.Socket#destroySoon). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once('finish', () => this.destroy());
  }

  /** Destroys the socket with an abort: the peer sees ECONNRESET (TCP: an RST), as net's. */
  resetAndDestroy(): this {
    this.#failed = true;
    this.destroy();
    return this;
  }

  /** Accepted for net.Socket compatibility: fifos have no Nagle and no keep-alive to tune. */
  setNoDelay(_noDelay?: boolean): this {
    return this;
  }

  setKeepAlive(_enable?: boolean, _initialDelay?: number): this {
    return this;
  }

  ref(): this {
    if (!this.#refed && this.#attachment) {
      this.#refed = true;
      this.#attachment.ref();
    }
    return this;
  }

  unref(): this {
    if (this.#refed && this.#attachment) {
      this.#refed = false;
      this.#attachment.unref();
    }
    return this;
  }

  address(): { address: string; family: string; port: number } | Record<string, never> {
    if (this.localAddress === undefined || this.localPort === undefined) return {};
    return { address: this.localAddress, family: familyOf(this.localAddress), port: this.localPort };
  }

  /** Binds the socket to an established session (from connect or accept); the owner then emits
   *  'connect' or 'connection' and calls _start(). @internal */
  _attach(
    att: Attachment,
    session: AppSession,
    localUri: string | SessionUri,
    remoteUri: string | SessionUri,
    transport: string,
  ): void {
    this.#attachment = att;
    this.#session = session;
    this._setEnds(localUri, remoteUri, transport);
    this.ref();
    openSession(att, session, this);
  }

  /**
   * The session's addresses and transport, as ferryd gave them (as URIs, or already parsed: a fast
   * connect's pool parsed its ends once); the socket is connected. @internal
   */
  _setEnds(localUri: string | SessionUri, remoteUri: string | SessionUri, transport: string): void {
    this.transport = transport;
    const local = typeof localUri === 'string' ? parseUri(localUri) : localUri;
    const remote = typeof remoteUri === 'string' ? parseUri(remoteUri) : remoteUri;
    this.localAddress = local.host;
    this.localPort = local.port;
    this.remoteAddress = remote.host;
    this.remotePort = remote.port;
    this.remoteFamily = familyOf(remote.host);
    this.connecting = false;
  }

  /**
   * Starts moving bytes, after 'connect' (or 'connection') was emitted, so that no 'data' comes
   * before it. Reads at once, as net.Socket does: a socket nobody consumes still reads the peer's
   * FIN (then 'end', and 'close' without allowHalfOpen). Like net, a client paused before it
   * connected does not start reading; an accepted socket does even if 'connection' paused it
   * (net reads when it creates the socket, before 'connection'), unless the server has
   * pauseOnConnect (`readIfPaused` false). @internal
   */
  _start(readIfPaused = false): void {
    if (this.destroyed || this.#session === null) return;
    this.#started = true;
    if (this.#wantRead) this.#pull();
    else if (this.readable && (readIfPaused || !this.isPaused())) this.read(0);
    this.onWritable();
  }

  // ---- Zero-copy (beyond net.Socket; see zero-copy.ts) ----

  /**
   * Receives without copying: `cb` gets a ReadView of the bytes in place in the fifo, and no
   * further view comes until it is released (the fifo fills meanwhile: back-pressure). No 'data'
   * events; 'end', 'error' and 'close' come as usual. Set it before any byte is read (in the
   * 'connection' or 'connect' handler, or right after connect()).
   */
  onView(cb: (view: ReadView) => void): this {
    if (typeof cb !== 'function') throw ferryError('ERR_INVALID_ARG_TYPE', 'onView takes a function');
    if (this.#onview || this.#onread || this.#bytesRead > 0 || this.readableLength > 0) {
      throw ferryError('ERR_FERRY_SESSION_STATE', 'onView must be set once, before any byte is read');
    }
    this.#onview = cb;
    this.#wantRead = true;
    if (this.#session && this.#started) this.#pull();
    return this;
  }

  /**
   * Reserves up to `max` contiguous bytes of the tx fifo to fill in place; commit() publishes them.
   * Returns null when the fifo is full ('drain' follows when space appears). Throws
   * ERR_FERRY_SESSION_STATE while write() has bytes queued (order would break), EPIPE when the
   * peer stopped reading, ERR_FERRY_SOCKET_CLOSED when not connected or ended.
   */
  reserve(max = 64 * 1024): WriteReservation | null {
    if (!(Number.isInteger(max) && max > 0)) throw ferryError('ERR_OUT_OF_RANGE', `reserve(${max})`);
    const s = this.#session;
    if (!s || this.destroyed || this.writableEnded) {
      throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'reserve on a socket that is not open for writing');
    }
    if (this.#pending !== null || this.writableLength > 0 || (this.#staged > 0 && !this.#flushStage(s))) {
      throw ferryError('ERR_FERRY_SESSION_STATE', 'reserve while written bytes are still queued');
    }
    if (s.peerStoppedReading) throw ferryError('EPIPE', 'peer closed the session for reading');
    this.#reserveSeq++;
    let bytes = s.reserve(max);
    if (bytes.length === 0) {
      if (!s.waitForSpace()) {
        this.#reserveWaiting = true;
        return null;
      }
      bytes = s.reserve(max);
      if (bytes.length === 0) return null;
    }
    const seq = ++this.#reserveSeq;
    return new WriteReservation(bytes, (n) => {
      // A write() since the reserve (in the fifo, staged or queued) must stay ahead of these bytes,
      // and a newer reservation lent the same space.
      if (
        this.#session !== s ||
        seq !== this.#reserveSeq ||
        this.#staged > 0 ||
        this.#pending !== null ||
        this.writableLength > 0
      ) {
        return false;
      }
      // The reader is told at the end of the tick: one wake for a loop of commits.
      if (s.commit(n, true) < 0) return false;
      this.#bytesWritten += n;
      return true;
    });
  }

  // ---- SessionOwner upcalls ----

  onReadable(): void {
    if (debug.enabled) {
      debug(
        'socket %d: readable, wantRead %s, flowing %s',
        this.#session?.id,
        this.#wantRead,
        this.readableFlowing,
      );
    }
    this.#readArmed = false;
    if (this.#wantRead && this.#started) this.#pull();
  }

  onWritable(): void {
    const p = this.#pending;
    if (!p) {
      if (this.#staged > 0) this.#flushTick();
      if (this.#reserveWaiting) {
        this.#reserveWaiting = false;
        this.emit('drain');
      }
      return;
    }
    this.#pending = null;
    this.#writeChunks(p.chunks, p.cb);
  }

  onFailure(err: FerryError): void {
    if (this.destroyed) return;
    if (err.code === 'ECONNRESET') this.#peerReset = true;
    this.#failed = true;
    this.destroy(err);
  }

  // ---- Writable fast path ----

  /**
   * net.Socket#write. A small chunk written while the stream is idle (connected, not corked,
   * nothing queued, in flight or waiting for space, not ending, destroyed or errored) is staged
   * here without going through Writable: its per-call bookkeeping was most of the cost of a 64 B
   * message. What Writable would do is kept: the return value (true: nothing stays queued), the
   * callback called with null on a later tick in write order (before 'finish', which end() can
   * emit only a tick later), writableLength 0 afterwards, bytesWritten counted. Anything else
   * (an encoding argument on a Buffer, other chunk types, errors) goes through Writable.
   */
  override write(
    chunk: unknown,
    encoding?: BufferEncoding | ((err?: Error | null) => void) | null,
    cb?: (err?: Error | null) => void,
  ): boolean {
    if (typeof encoding === 'function') {
      cb = encoding;
      encoding = undefined;
    }
    const s = this.#session;
    if (s !== null && this.#pending === null && this.#fastIdle(cb)) {
      if (chunk instanceof Uint8Array) {
        if (encoding == null && this.#stageBytes(s, chunk)) return this.#fastDone(cb);
      } else if (
        typeof chunk === 'string' &&
        (encoding == null || encoding === 'utf8' || encoding === 'latin1')
      ) {
        const enc = encoding ?? writableState(this).defaultEncoding;
        if ((enc === 'utf8' || enc === 'latin1') && this.#writeString(s, chunk, enc))
          return this.#fastDone(cb);
      }
    }
    this.#writableIdle = false;
    return super.write(chunk, encoding as BufferEncoding, cb);
  }

  /** Writable has nothing queued, in flight or pending to order after, and may be written to. */
  #fastIdle(cb: ((err?: Error | null) => void) | undefined): boolean {
    if (this.#writableIdle && cb === undefined) return true;
    const st = writableState(this);
    const idle =
      st.length === 0 && st.corked === 0 && !st.writing && !st.ending && !st.destroyed && st.errored === null;
    this.#writableIdle = idle;
    // A callback Writable will call on a later tick, for a write made earlier in this one, must
    // come before this write's: let Writable order them.
    return idle && (cb === undefined || st.afterWriteTickInfo === null);
  }

  override cork(): void {
    this.#writableIdle = false;
    super.cork();
  }

  override end(...args: unknown[]): this {
    this.#writableIdle = false;
    return (Duplex.prototype.end as (...a: unknown[]) => this).apply(this, args);
  }

  override destroy(...args: unknown[]): this {
    this.#writableIdle = false;
    return (Duplex.prototype.destroy as (...a: unknown[]) => this).apply(this, args);
  }

  /** The rest of what Writable does for a write that completed at once. */
  #fastDone(cb: ((err?: Error | null) => void) | undefined): boolean {
    if (this.#idleTimer !== null) this.#active();
    if (typeof cb !== 'function') return true;
    // As Writable: the callback is called with null on a later tick, even if destroyed meanwhile;
    // a run of writes with the same callback shares one tick, a different callback takes its own
    // (so a process.nextTick queued between two writes runs between their callbacks).
    const last = this.#fastCbs;
    if (last !== null && !last.due && last.cb === cb) {
      last.count++;
      return true;
    }
    const batch: FastCallbacks = { cb, count: 1, due: false };
    this.#fastCbs = batch;
    process.nextTick(runFastCallbacks, batch);
    return true;
  }

  /**
   * Takes a small chunk whole, as _write would, or nothing (false: go the Writable way): the first
   * of a tick straight into the fifo, the ones after it into the stage.
   */
  #stageBytes(s: AppSession, chunk: Uint8Array): boolean {
    const len = chunk.length;
    if (len === 0 || len > STAGE_MAX_CHUNK) return false;
    if (!this.#flushScheduled) {
      if (this.#staged > 0 || s.peerStoppedReading) return false;
      const n = s.write(chunk);
      if (n !== len) {
        if (n <= 0) return false;
        // The rest waits in the stage; the flush at the end of the tick sends it (or waits for space).
        if (this.#stage === null) this.#stage = Buffer.allocUnsafeSlow(STAGE_BYTES);
        this.#stage.set(chunk.subarray(n), 0);
        this.#staged = len - n;
      }
      this.#bytesWritten += len;
      this.#scheduleFlush();
      return true;
    }
    if (this.#staged + len > STAGE_BYTES && !this.#flushStage(s)) return false;
    if (this.#staged === 0 && s.peerStoppedReading) return false;
    if (this.#stage === null) this.#stage = Buffer.allocUnsafeSlow(STAGE_BYTES);
    this.#stage.set(chunk, this.#staged);
    this.#staged += len;
    this.#bytesWritten += len;
    return true;
  }

  /** Opens a batch: small writes until the end of this tick (or data poll) are staged together. */
  #scheduleFlush(): void {
    this.#flushScheduled = true;
    if (!this.#attachment?.afterPoll(this.#flushTick)) process.nextTick(this.#flushTick);
  }

  // ---- Duplex implementation ----

  override _read(): void {
    this.#wantRead = true;
    // Armed and no event since: nothing to read, and onReadable pulls when there is (a reader that
    // takes each chunk with read(), as undici does, asks again after every chunk it took).
    if (this.#session && this.#started && !this.#readArmed) this.#pull();
  }

  override _write(data: Buffer | string, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const s = this.#session;
    if (this.#idleTimer !== null) this.#active();
    if (typeof data === 'string' && s !== null && this.#pending === null && this.#writeString(s, data, enc)) {
      cb();
      return;
    }
    const chunk = typeof data === 'string' ? Buffer.from(data, enc) : data;
    const len = chunk.length;
    if (s !== null && len <= STAGE_MAX_CHUNK && this.#pending === null) {
      if (!this.#flushScheduled) {
        // The first small write of a tick goes out at once (a lone request or echo waits for
        // nothing); it opens a batch, so the writes that follow it in the same tick are staged.
        this.#flushScheduled = true;
        if (!this.#attachment?.afterPoll(this.#flushTick)) process.nextTick(this.#flushTick);
        this.#writeChunks([chunk], cb);
        return;
      }
      if (this.#staged + len > STAGE_BYTES) this.#flushStage(s);
      // peerStoppedReading reads the consumer's cache line, which bounces while it reads: look
      // once per batch (when the stage is empty), not once per small write.
      if (this.#staged + len <= STAGE_BYTES && (this.#staged > 0 || !s.peerStoppedReading)) {
        if (this.#stage === null) this.#stage = Buffer.allocUnsafeSlow(STAGE_BYTES);
        this.#stage.set(chunk, this.#staged);
        this.#staged += len;
        this.#bytesWritten += len;
        cb();
        return;
      }
    }
    this.#writeChunks([chunk], cb);
  }

  override _writev(
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    if (this.#idleTimer !== null) this.#active();
    const s = this.#session;
    if (s === null) {
      this.#writevChunks(null, chunks, cb);
      return;
    }
    // The chunks of one writev are one message (node:http's header and body): the reader is told
    // once, after the last of them (AppSession.holdPosts).
    s.holdPosts();
    try {
      this.#writevChunks(s, chunks, cb);
    } finally {
      s.releasePosts();
    }
  }

  #writevChunks(
    s: AppSession | null,
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    const bufs: Uint8Array[] = [];
    for (const { chunk, encoding } of chunks) {
      if (typeof chunk !== 'string') {
        bufs.push(chunk);
        continue;
      }
      // node:http's end() writes '' after the body: nothing to encode (a Buffer for it was an
      // allocation and a zero-fill per response).
      if (chunk.length === 0) continue;
      // Straight into the fifo while nothing is queued before it (node:http's corked header).
      if (s !== null && bufs.length === 0 && this.#pending === null && this.#staged === 0) {
        const len = byteLengthOf(chunk, encoding);
        if (len > 0 && !s.peerStoppedReading && s.writeString(chunk, encoding, len) === len) {
          this.#bytesWritten += len;
          continue;
        }
      }
      bufs.push(Buffer.from(chunk, encoding));
    }
    this.#writeChunks(bufs, cb);
  }

  /**
   * Writes a string without a Buffer in between: into the stage when small writes are being
   * batched, else straight into the fifo. False (nothing written) when it cannot be done whole now:
   * the caller then goes the Buffer way, which handles partial writes, EPIPE and failures.
   */
  #writeString(s: AppSession, str: string, enc: BufferEncoding): boolean {
    const len = byteLengthOf(str, enc);
    if (len === 0) return false;
    if (len <= STAGE_MAX_CHUNK && this.#flushScheduled) {
      if (this.#staged + len > STAGE_BYTES) this.#flushStage(s);
      if (this.#staged + len > STAGE_BYTES || (this.#staged === 0 && s.peerStoppedReading)) return false;
      if (this.#stage === null) this.#stage = Buffer.allocUnsafeSlow(STAGE_BYTES);
      if (this.#stage.write(str, this.#staged, len, enc) !== len) return false;
      this.#staged += len;
      this.#bytesWritten += len;
      return true;
    }
    if ((this.#staged > 0 && !this.#flushStage(s)) || s.peerStoppedReading) return false;
    if (s.writeString(str, enc, len) !== len) return false;
    this.#bytesWritten += len;
    if (len <= STAGE_MAX_CHUNK) {
      // The first small write of a tick opens a batch, as in _write.
      this.#flushScheduled = true;
      if (!this.#attachment?.afterPoll(this.#flushTick)) process.nextTick(this.#flushTick);
    }
    return true;
  }

  override _final(cb: (err?: Error | null) => void): void {
    const s = this.#session;
    if (!s && this.connecting) {
      this.once('connect', () => this._final(cb));
      return;
    }
    if (!s) {
      cb();
      return;
    }
    if (this.#staged > 0) {
      // FIN goes after every staged byte: wait for them like for any pending write.
      this.#writeChunks([], (err) => (err ? cb(err) : this._final(cb)));
      return;
    }
    s.fin();
    this.#finished = true;
    // The FIN in the fifo is all the peer needs. ferryd hears of a cut-through session's through a
    // notice; a session ferryd carries (tcp, tls) it sees in the fifo it reads, so no message is sent.
    const att = this.#attachment;
    if (att) announceFin(att, s, this.transport);
    // Done on the next tick, not a loop turn later as net.Socket's shutdown: a write right after
    // end() (ERR_STREAM_WRITE_AFTER_END) still destroys the socket before it finishes, so 'finish'
    // never comes then, as in net; but end()'s callback must come before the check phase. http2
    // (and tls) wrap a non-native socket in node's JSStreamSocket, whose shutdown waits for our
    // end() callback and asserts (ERR_INTERNAL_ASSERTION, an uncaught crash) if its native owner
    // writes meanwhile: an http2 session's scheduled write (a native immediate, queued before
    // ours) did when the peer's FIN made the wrapper end. A native socket just fails such a write.
    process.nextTick(cb);
  }

  /**
   * Lets the session go. As a kernel socket's close(): the peer gets what was written and a FIN
   * (then EPIPE if it writes on), unless bytes it sent are still unread here, or the data path
   * failed, or resetAndDestroy() asked for it: then a reset (ECONNRESET at the peer).
   */
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const s = this.#session;
    const att = this.#attachment;
    if (this.#idleTimer !== null) clearTimeout(this.#idleTimer);
    this.#idleTimer = null;
    if (this.#spareTimer !== null) clearTimeout(this.#spareTimer);
    this.#spareTimer = null;
    if (s && att) {
      if (this.#staged > 0) this.#flushStage(s);
      s.tellDeferred();
      this.#staged = 0;
      let how: SessionEnd = 'clean';
      if (this.#peerReset) how = 'peer-reset';
      // Bytes node:http's parser is being handed (#pullHandle) count as read: they are, as a kernel
      // socket's are once its read returned them.
      else if (this.#failed || s.readableBytes > this.#handing) how = 'reset';
      else if (!this.#finished) {
        // ferryd frees the fifos once both ends let go; the peer learns of the FIN from the fifo.
        s.fin();
        this.#finished = true;
      }
      this.unref();
      endSession(att, s, how);
    }
    this.#session = null;
    publishClose(this, err);
    this.emit(kDestroying, err);
    cb(err);
    // After the 'error' that cb schedules, as net.Socket emits 'close' when its handle closed.
    setImmediate(() => this.emit('close', err != null));
  }

  #writeChunks(chunks: Uint8Array[], cb: (err?: Error | null) => void): void {
    const s = this.#session;
    if (!s && this.connecting && !this.#pending) {
      // As net.Socket does: writes made while connecting wait for the session.
      this.#pending = { chunks, cb };
      return;
    }
    if (!s) {
      cb(ferryError('ERR_FERRY_SOCKET_CLOSED', 'write after close'));
      return;
    }
    if (s.peerStoppedReading) {
      cb(ferryError('EPIPE', 'peer closed the session for reading'));
      return;
    }
    if (this.#staged > 0 && !this.#flushStage(s)) {
      this.#waitForSpace(s, chunks, cb);
      return;
    }
    let i = 0;
    while (i < chunks.length) {
      const c = chunks[i] as Uint8Array;
      const n = s.write(c);
      if (n < 0) {
        cb(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo failed'));
        return;
      }
      this.#bytesWritten += n;
      if (n === c.length) {
        i++;
        continue;
      }
      chunks[i] = c.subarray(n);
      this.#waitForSpace(s, chunks.slice(i), cb);
      return;
    }
    cb();
  }

  #waitForSpace(s: AppSession, rest: Uint8Array[], cb: (err?: Error | null) => void): void {
    if (s.waitForSpace()) {
      // Space appeared between the write and the arm: continue on the next tick, not recursing.
      setImmediate(() => this.#writeChunks(rest, cb));
    } else {
      this.#pending = { chunks: rest, cb };
    }
  }

  /**
   * Publishes staged bytes; true when none are left (false: the fifo is full, or failed). Inside a
   * batch (a full stage in the middle of a tick) the reader is told at the batch's end (#flushTick)
   * or once a quarter of the fifo went by (AppSession.writeDeferred), not at every flush.
   */
  #flushStage(s: AppSession): boolean {
    const stage = this.#stage;
    const k = this.#staged;
    if (stage === null || k === 0) return true;
    const chunk = stage.subarray(0, k);
    const n = this.#flushScheduled ? s.writeDeferred(chunk) : s.write(chunk);
    if (n === k) {
      this.#staged = 0;
      return true;
    }
    if (n > 0) {
      stage.copyWithin(0, n, k);
      this.#staged = k - n;
    }
    return false;
  }

  readonly #flushTick = (): void => {
    this.#flushScheduled = false;
    const s = this.#session;
    if (s === null) return;
    const flushed = this.#staged === 0 || this.#flushStage(s);
    // The batch's deferred flushes: the reader hears of them now (waitForSpace below tells it too).
    // Not only a safety net: a reserve() in the batch publishes the stage deferred and leaves it
    // empty, so the flush above writes nothing that would tell (small-writes-wake.test.ts).
    s.tellDeferred();
    if (flushed) return;
    // Full fifo and no pending write to carry the stage: ask for space; onWritable flushes.
    if (this.#pending === null && s.waitForSpace()) {
      this.#flushScheduled = true;
      setImmediate(this.#flushTick);
    }
  };

  /** onread mode: copy from the fifo into the caller's buffer and call back, until paused. */
  #pullInto(s: AppSession, onread: OnReadOptions): void {
    for (let rounds = 0; rounds < 64; rounds++) {
      if (this.#onreadPaused || this.destroyed || this.#session !== s) return;
      if (s.readableBytes > 0) {
        // A buffer function is called only when there are bytes for it, as net calls it per read.
        const buf = typeof onread.buffer === 'function' ? onread.buffer() : onread.buffer;
        if (!(buf instanceof Uint8Array) || buf.length === 0) {
          this.destroy(ferryError('ERR_INVALID_ARG_TYPE', 'onread.buffer must give a non-empty Uint8Array'));
          return;
        }
        const n = s.readInto(buf);
        if (n <= 0) return;
        this.#bytesRead += n;
        if (this.#idleTimer !== null) this.#active();
        if (onread.callback(n, buf) === false) this.pause();
        continue;
      }
      if (s.ended) {
        this.#wantRead = false;
        this.push(null);
        // No data ever sits in the stream's buffer: flowing lets 'end' be emitted at once.
        if (!this.readableFlowing) super.resume();
        return;
      }
      if (!s.armRead()) return;
    }
    this.#pullSoon();
  }

  /**
   * node:http's parser consumes the handle: give it the readable bytes in place (readBuffer copies
   * them into the parser's buffer and runs it, requests and responses included, before returning),
   * then consume them, a piece at a time. Stops when reading pauses or the parser lets go of the
   * handle (an upgrade takes the rest of that piece as its head; later bytes go the stream way).
   */
  #pullHandle(s: AppSession, h: StreamHandle): void {
    for (let rounds = 0; rounds < 64; rounds++) {
      if (this.destroyed || this.#session !== s) return;
      const mode = this.#handleMode();
      // Paused: the bytes wait in the fifo for readStart (#resumeHandle).
      if (mode === 2) return;
      // The parser let go (an upgrade inside the last readBuffer): the rest goes the stream way,
      // now, which also arms the read for the next bytes (nobody else may call _read again).
      if (mode === 0) {
        this.#pull();
        return;
      }
      // At most HANDLE_READ_BYTES per readBuffer: JSStream splits a larger view into pieces of
      // the parser's buffer and emits them all, and once one piece pauses the parser or makes it
      // let go (an upgrade, a 'data' listener) the next would reach a paused parser (a 400) or
      // no listener (lost). The mode is checked between pieces, as between a kernel socket's reads.
      const view = s.readableView(HANDLE_READ_BYTES);
      const n = view.length;
      if (n > 0) {
        this.#handing = n;
        try {
          h.readBuffer(view);
        } finally {
          this.#handing = 0;
          // Read, whatever the parser made of them (a parse error destroys the socket meanwhile).
          if (this.#session === s) s.consume(n);
          this.#bytesRead += n;
        }
        if (this.#idleTimer !== null) this.#active();
        continue;
      }
      if (s.ended) {
        this.#endRead();
        return;
      }
      if (!s.armRead()) return;
    }
    this.#pullSoon();
  }

  /** onView mode: offer the readable bytes in place; one view out at a time. */
  #pullView(s: AppSession, cb: (view: ReadView) => void): void {
    if (this.#inPullView) return;
    this.#inPullView = true;
    try {
      for (let rounds = 0; rounds < 64; rounds++) {
        if (this.#viewOut !== null || this.destroyed || this.#session !== s) return;
        const avail = s.readableBytes;
        const fin = s.peerFinished;
        // Bytes left unreleased are offered again only with newer ones, or once more at FIN.
        if (avail > this.#viewLeft || (avail > 0 && fin && !this.#viewFinOffered)) {
          if (avail <= this.#viewLeft) this.#viewFinOffered = true;
          const view = new ReadView(s.readableViews(), (n, length) => this.#released(s, view, n, length));
          this.#viewOut = view;
          cb(view);
          continue;
        }
        if (fin) {
          this.#wantRead = false;
          this.push(null);
          if (!this.readableFlowing) super.resume();
          return;
        }
        // Arm, then look again: bytes published meanwhile are seen, later ones post an event.
        s.armRead();
        if (s.readableBytes <= this.#viewLeft && !s.peerFinished) return;
      }
    } finally {
      this.#inPullView = false;
    }
    this.#pullSoon();
  }

  #released(s: AppSession, view: ReadView, n: number, length: number): void {
    if (this.#viewOut !== view) return;
    this.#viewOut = null;
    if (this.#session !== s) return;
    if (n > 0) {
      s.consume(n);
      this.#bytesRead += n;
    }
    this.#viewLeft = length - n;
    // Released later, outside the callback: look for more now.
    if (!this.#inPullView) this.#pull();
  }

  #pull(): void {
    const s = this.#session;
    if (!s) return;
    if (this.#onview) {
      this.#pullView(s, this.#onview);
      return;
    }
    if (this.#onread) {
      this.#pullInto(s, this.#onread);
      return;
    }
    if (this.#handle != null && this.#handleMode() !== 0) {
      this.#pullHandle(s, this.#handle);
      return;
    }
    this.#readArmed = false;
    for (let rounds = 0; rounds < 64; rounds++) {
      const buf = s.read(this.#readChunk);
      if (buf) {
        this.#bytesRead += buf.length;
        if (this.#idleTimer !== null) this.#active();
        if (!this.push(buf)) {
          this.#wantRead = false;
          return;
        }
        continue;
      }
      if (s.ended) {
        this.#endRead();
        return;
      }
      if (!s.armRead()) {
        this.#readArmed = !this.destroyed && this.#session === s;
        return;
      }
    }
    this.#pullSoon();
  }

  /** The peer's FIN after the last byte: end the Readable. */
  #endRead(): void {
    this.#wantRead = false;
    this.push(null);
    // As net does at EOF: with nothing buffered, 'end' comes even if nobody reads.
    if (this.readableLength === 0) this.read(0);
  }

  /** Bounded work per turn: yield to the loop and continue. */
  #pullSoon(): void {
    setImmediate(() => {
      if (this.#wantRead && this.#session) this.#pull();
    });
  }
}

/** Throws ERR_INVALID_ARG_TYPE unless `onread` has net.Socket's shape. */
export function checkOnread(onread: OnReadOptions): void {
  const b: unknown = onread?.buffer;
  if (
    onread === null ||
    typeof onread !== 'object' ||
    !(b instanceof Uint8Array || typeof b === 'function') ||
    typeof onread.callback !== 'function'
  ) {
    throw ferryError(
      'ERR_INVALID_ARG_TYPE',
      'onread must be { buffer: Uint8Array | () => Uint8Array, callback: function }',
    );
  }
}

/** Writable's state, read by the write fast path only (never written). */
function writableState(w: Duplex): WritableStateView {
  return (w as unknown as { _writableState: WritableStateView })._writableState;
}

/** Bytes `str` takes in `enc`; latin1 and ascii without a scan. */
function byteLengthOf(str: string, enc: BufferEncoding): number {
  return enc === 'latin1' || enc === 'binary' || enc === 'ascii' ? str.length : Buffer.byteLength(str, enc);
}

function abortError(signal: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal.reason });
  e.name = 'AbortError';
  return Object.assign(e, { code: 'ABORT_ERR' });
}

function familyOf(host: string): string {
  return host.includes(':') ? 'IPv6' : 'IPv4';
}

export function isFerryError(e: unknown): e is FerryError {
  return e instanceof FerryError;
}
