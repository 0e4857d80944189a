/**
 * A control channel: one SOCK_SEQPACKET connection between an app and ferryd, carrying one
 * msgpack message (and its fds) per datagram.
 *
 * Node's loop cannot watch a SEQPACKET socket, so each side owns a wake pipe whose read end libuv
 * watches natively (a Doorbell) and whose only writer is the peer: the sender does sendmsg() and
 * then rings. The kernel has queued the datagram before the ring byte is written, so when the
 * ring is seen the datagram is there to drain. Because the peer holds the only write end, the
 * pipe also reports the peer's death ('end') at once, even when it dies between messages. Until
 * the wake pipes are exchanged (HELLO), the socket is watched through an FdPoller (epoll on a
 * worker thread), which is slower but works for any fd.
 */
import { type FerryError, ferryError } from '../errors.js';
import { decodeCtrl, encodeCtrl } from '../proto/ctrl/codec.js';
import { CTRL_MAX_FDS, CTRL_MAX_MESSAGE_BYTES, type CtrlMessage } from '../proto/ctrl/messages.js';
import { close, type Doorbell, dup, type FdPoller, recvMsg, ring, sendMsg } from '../sys/index.js';

export interface CtrlChannelHandlers {
  /** A decoded message; `fds` are now owned by the handler (close what you do not keep). */
  onMessage(msg: CtrlMessage, fds: number[]): void;
  /** A datagram that did not decode; its fds were already closed. The channel stays open. */
  onBadMessage(err: FerryError): void;
  /** The channel is gone: the peer closed or died, or close() was called. Called once. */
  onClose(err: FerryError | null): void;
}

/** Messages queued while the peer's socket buffer is full, before the channel gives up. */
const MAX_PENDING_SENDS = 4096;

/** At most this long (ms) between a 'lazy' send and the ring that makes the peer read it. */
export const LAZY_RING_MS = 10;

/**
 * When send() rings the peer's wake pipe: 'now'; 'soon', once at the end of this loop turn; or
 * 'lazy', with the next ring for any other message, and within LAZY_RING_MS at the latest.
 */
export type RingWhen = 'now' | 'soon' | 'lazy';

export interface CtrlChannelOptions {
  /** Messages queued for a peer that does not read before the channel fails with
   *  ERR_FERRY_LIMIT (default 4096). ferryd raises it: a burst to an app that reads is legitimate
   *  (one notice per session when its peer dies), and its stall monitor decides about the rest. */
  maxPending?: number;
}

export class CtrlChannel {
  readonly fd: number;
  #handlers: CtrlChannelHandlers;
  #rx = new Uint8Array(CTRL_MAX_MESSAGE_BYTES + 1);
  #wake: Doorbell | null = null;
  #peerWakeFd = -1;
  #poller: FdPoller | null = null;
  #pending: { bytes: Uint8Array; fds: readonly number[] }[] = [];
  #closed = false;
  #ringScheduled = false;
  /** A lazy send is waiting for a ring; #lazyTimer guarantees one. */
  #lazyPending = false;
  #lazyTimer: ReturnType<typeof setTimeout> | null = null;
  #draining = false;
  #sent = 0;
  #received = 0;

  readonly #maxPending: number;

  constructor(fd: number, handlers: CtrlChannelHandlers, options: CtrlChannelOptions = {}) {
    this.fd = fd;
    this.#handlers = handlers;
    this.#maxPending = options.maxPending ?? MAX_PENDING_SENDS;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get stats(): { sent: number; received: number; pending: number } {
    return { sent: this.#sent, received: this.#received, pending: this.#pending.length };
  }

  /** Watch the socket with epoll until wake pipes are in place (the HELLO phase). */
  watchWith(poller: FdPoller): void {
    this.#poller = poller;
    poller.watch(this.fd, { readable: true }, (ev) => {
      if (ev.readable) this.drain();
      if ((ev.hangup || ev.error) && !this.#closed) this.drain(true);
    });
  }

  /**
   * Switch to wake pipes: `wake` is rung by the peer after each send; `peerWakeFd` is the write
   * end of the peer's pipe, or -1 until it is known (the channel owns it and closes it on close()).
   */
  useWakePipes(wake: Doorbell, peerWakeFd: number): void {
    if (this.#poller) {
      this.#poller.unwatch(this.fd);
      this.#poller = null;
    }
    this.#wake = wake;
    this.#peerWakeFd = peerWakeFd;
    wake.onRing(() => this.drain());
    wake.onEnd(() => {
      // The peer is gone, but what it sent before (last notices, sent lazily or without a ring
      // when it exited) is still queued on the socket: take it, then fail.
      const err = ferryError('ECONNRESET', 'control channel peer went away');
      this.drain(false, err);
      this.#fail(err);
    });
    // Anything that arrived before the switch was announced by a ring we never saw.
    this.drain();
  }

  /** The write end of the peer's wake pipe, once HELLO has brought it. */
  setPeerWakeFd(fd: number): void {
    if (this.#peerWakeFd >= 0) close(this.#peerWakeFd);
    this.#peerWakeFd = fd;
  }

  /**
   * Sends one message; never blocks. Fds are duplicated by the kernel: the caller keeps its copies.
   * With `ring` 'soon', the peer's wake pipe is rung once later in this loop turn (setImmediate)
   * instead of now: notices sent in one burst then cost one ring (a syscall that wakes the peer,
   * tens of us on a VM) instead of one each. Any immediate send rings for them too: the peer
   * drains every queued datagram per ring, in order. 'lazy' is for notices nobody waits for (an
   * orderly close): the datagram goes out now, and the peer reads it with whatever rings next, or
   * LAZY_RING_MS later; a peer that dies reads it before it fails. Order is kept either way.
   */
  send(msg: CtrlMessage, fds: readonly number[] = [], ring: RingWhen = 'now'): void {
    if (this.#closed) return;
    const bytes = encodeCtrl(msg);
    if (this.#pending.length > 0) {
      this.#queue(bytes, fds);
      return;
    }
    if (!this.#sendNow(bytes, fds, ring)) this.#queue(bytes, fds);
  }

  /**
   * Reads every queued datagram. Called on a ring, on epoll readiness, and after switching.
   * `eofError` is what the channel fails with if the peer's end is found closed (default none).
   */
  drain(hangup = false, eofError: FerryError | null = null): void {
    // Not re-entered: a handler that drains (directly or through another channel's handler) would
    // otherwise handle later messages before the one it is handling is done. The running loop
    // reads on once the handler returns.
    if (this.#closed || this.#draining) return;
    this.#draining = true;
    try {
      this.#drainLoop(hangup, eofError);
    } finally {
      this.#draining = false;
    }
  }

  #drainLoop(hangup: boolean, eofError: FerryError | null): void {
    this.#flushPending();
    for (;;) {
      let r: ReturnType<typeof recvMsg>;
      try {
        r = recvMsg(this.fd, this.#rx, CTRL_MAX_FDS);
      } catch (err) {
        const e = err as FerryError;
        if (e.code === 'ERR_FERRY_FD_CTRUNC' || e.code === 'ERR_FERRY_FD_UNEXPECTED') {
          this.#handlers.onBadMessage(e);
          continue;
        }
        this.#fail(e);
        return;
      }
      if (r === null) break;
      if (r.bytes === 0 && r.fds.length === 0) {
        this.#fail(eofError);
        return;
      }
      this.#received++;
      if (r.truncated || r.bytes > CTRL_MAX_MESSAGE_BYTES) {
        for (const fd of r.fds) close(fd);
        this.#handlers.onBadMessage(
          ferryError('ERR_FERRY_PROTO_TOO_LARGE', `limit ${CTRL_MAX_MESSAGE_BYTES} B`),
        );
        continue;
      }
      let msg: CtrlMessage;
      try {
        msg = decodeCtrl(this.#rx.subarray(0, r.bytes));
      } catch (err) {
        for (const fd of r.fds) close(fd);
        this.#handlers.onBadMessage(err as FerryError);
        continue;
      }
      this.#handlers.onMessage(msg, r.fds);
      if (this.#closed) return;
    }
    if (hangup) this.#fail(null);
  }

  close(): void {
    this.#fail(null, true);
  }

  #sendNow(bytes: Uint8Array, fds: readonly number[], ring: RingWhen = 'now'): boolean {
    let n: number;
    try {
      n = sendMsg(this.fd, bytes, fds);
    } catch (err) {
      // Deferred: a send fails in the middle of the caller's work (ferryd announcing a segment to
      // both apps of a connect). Running onClose now would tear down the dead peer's state (close
      // its doorbell fd) while that work still uses it: the next send would carry a closed or
      // reused fd number to the other app.
      this.#fail(err as FerryError, false, true);
      return true;
    }
    if (n < 0) return false;
    this.#sent++;
    if (ring === 'now') this.#ringPeer();
    else if (ring === 'soon') {
      if (!this.#ringScheduled) {
        this.#ringScheduled = true;
        setImmediate(this.#ringDeferred);
      }
    } else {
      this.#lazyPending = true;
      if (this.#lazyTimer === null) {
        // unref: a process about to exit does not wait for it (ferryd reads the notice on the
        // wake pipe's end).
        this.#lazyTimer = setTimeout(this.#ringLazy, LAZY_RING_MS);
        this.#lazyTimer.unref();
      }
    }
    return true;
  }

  #ringPeer(): void {
    this.#ringScheduled = false;
    this.#lazyPending = false;
    if (this.#peerWakeFd >= 0) ring(this.#peerWakeFd);
  }

  readonly #ringDeferred = (): void => {
    if (this.#ringScheduled && !this.#closed) this.#ringPeer();
  };

  readonly #ringLazy = (): void => {
    this.#lazyTimer = null;
    if (this.#lazyPending && !this.#closed) this.#ringPeer();
  };

  #queue(bytes: Uint8Array, fds: readonly number[]): void {
    if (this.#pending.length >= this.#maxPending) {
      this.#fail(ferryError('ERR_FERRY_LIMIT', 'control channel peer is not reading'));
      return;
    }
    // Our own duplicates: the caller may close its fds as soon as send() returns.
    this.#pending.push({ bytes, fds: fds.map((fd) => dup(fd)) });
    this.#armWritable();
  }

  #flushPending(): void {
    while (this.#pending.length > 0 && !this.#closed) {
      const head = this.#pending[0];
      if (!head || !this.#sendNow(head.bytes, head.fds)) return;
      this.#pending.shift();
      for (const fd of head.fds) close(fd);
    }
  }

  #armWritable(): void {
    // The peer drains its socket when rung; we retry on our next wake or on a short timer, so a
    // slow peer costs us a bounded queue and no busy loop.
    setTimeout(() => {
      this.#flushPending();
      if (this.#pending.length > 0 && !this.#closed) this.#armWritable();
    }, 5).unref();
  }

  #fail(err: FerryError | null, local = false, deferred = false): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lazyTimer !== null) clearTimeout(this.#lazyTimer);
    this.#lazyTimer = null;
    if (this.#poller) this.#poller.unwatch(this.fd);
    this.#wake?.close();
    if (this.#peerWakeFd >= 0) close(this.#peerWakeFd);
    close(this.fd);
    for (const p of this.#pending) for (const fd of p.fds) close(fd);
    this.#pending = [];
    if (deferred) queueMicrotask(() => this.#handlers.onClose(local ? null : err));
    else this.#handlers.onClose(local ? null : err);
  }
}
