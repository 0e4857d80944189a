/**
 * One TCP session's data path in ferryd: bytes between the app's fifo pair and a kernel socket,
 * both ways, with backpressure, half-close and reset mapped across.
 *
 * fifo -> socket writes views of the fifo (no copy in ferryd) and drops the bytes only in the
 * write callback, once the kernel has taken them, so the app cannot overwrite them meanwhile;
 * what is in flight is bounded by the fifo. socket -> fifo: with a DirectRead (plain TCP) the
 * kernel reads straight into the fifo's free space, which is committed after each read; otherwise
 * (TLS, or while the fifo is full) each chunk is copied in. When the fifo is full the socket is
 * paused (the kernel window closes on the remote) until the app frees space.
 */
import type { Socket } from 'node:net';
import { type FerryError, FifoConsumer, type FifoPairRef, FifoProducer } from '@ferry/sdk/internal';
import type { SessionEnd } from '../session/session.js';
import type { DaemonSegment, SlotPump } from './daemon-end.js';
import { directReadOf, scratchBuffer } from './direct-read.js';
import { resetSocket } from './reset-socket.js';
import { tcpError } from './tcp-errors.js';
import { resetBehindEnd } from './tcp-read-end.js';
import { TurnNotice } from './turn-notice.js';

/** Rounds of work per call before yielding to the loop. */
const ROUNDS_PER_TURN = 64;

export interface TcpPumpHooks {
  /** The remote sent FIN; the app's rx fifo carries it. */
  onRemoteFin(): void;
  /** The app's FIN (read from its tx fifo) went out as the socket's FIN: the session's shutdown. */
  onAppFin(): void;
  /** The connection failed (RST, timeout, broken fifo); the app's fifos carry the reset. */
  onRemoteReset(err: FerryError): void;
  /** ferryd no longer touches the fifos: the pair may be freed once the app let go too. */
  onDone(): void;
}

export class TcpPump implements SlotPump, SessionEnd {
  /** The stream the bytes go through: the kernel socket, or the TLS socket on top of it. */
  readonly socket: Socket;
  /** The kernel socket (the same as `socket` without TLS): resets go here. */
  readonly raw: Socket;
  readonly slot: number;
  /** Bytes ferryd moved: fifo -> socket (confirmed by the kernel) and socket -> fifo. */
  bytesOut = 0;
  bytesIn = 0;
  #seg: DaemonSegment;
  /** The fifo the app writes (ferryd reads) and the one ferryd writes (the app reads). */
  #rx: FifoConsumer;
  #tx: FifoProducer;
  #hooks: TcpPumpHooks;
  /** Bytes handed to socket.write() and not yet confirmed: still in the fifo, not dropped. */
  #inflight = 0;
  /** The part of a socket chunk that did not fit in the fifo; the socket is paused meanwhile. */
  #pendingIn: Uint8Array | null = null;
  /**
   * The fifo view the next kernel read lands in (DirectRead), else null (it lands in the scratch
   * buffer). Lent only while nothing else writes the fifo: no #pendingIn, no FIN, no failure.
   */
  #lent: Uint8Array | null = null;
  #waitingSpace = false;
  #remoteEnded = false;
  #finForwarded = false;
  #outEnded = false;
  #appClosed = false;
  #failed = false;
  #done = false;
  #outScheduled = false;
  #socketClosed = false;
  readonly #notice: TurnNotice;

  /**
   * `ref` is the fifo pair as the daemon's side sees it (tx = what ferryd writes). `raw` is the
   * kernel socket under a TLS `socket`.
   */
  constructor(
    socket: Socket,
    seg: DaemonSegment,
    ref: FifoPairRef,
    hooks: TcpPumpHooks,
    raw: Socket = socket,
  ) {
    this.socket = socket;
    this.raw = raw;
    this.slot = ref.slot;
    this.#seg = seg;
    this.#rx = new FifoConsumer(seg.buffer, ref.rxOffset, ref.rxSize);
    this.#tx = new FifoProducer(seg.buffer, ref.txOffset, ref.txSize);
    this.#notice = new TurnNotice(seg, ref.slot, this.#tx, this.#rx, () => !this.#done && !this.#failed);
    this.#hooks = hooks;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    this.#seg.add(this.slot, this);
    const s = this.socket;
    this.raw.setNoDelay(true);
    const direct = s === this.raw ? directReadOf(s) : undefined;
    if (direct) {
      direct.attach({
        nextBuffer: () => this.#nextBuffer(),
        onRead: (n, buf) => this.#onRead(n, buf),
      });
    } else s.on('data', (chunk: Buffer) => this.#onData(chunk));
    s.on('end', () => this.#onEnd());
    s.on('error', (err) => this.#fail(tcpError(err, 'tcp session'), false));
    s.on('close', () => {
      this.#socketClosed = true;
      // A close that was neither an orderly exchange of FINs nor asked for by the app: the app
      // must not wait forever for bytes or a FIN that will not come.
      const orderly = this.#remoteEnded && this.#outEnded;
      if (!orderly && !this.#appClosed) this.#fail(tcpError({ code: 'ECONNRESET' }, 'tcp session'), false);
      this.#maybeFinish();
    });
    s.resume();
    this.#pumpOut();
  }

  /** The app sent `close`: send what it wrote, then FIN, then let the socket go. */
  close(): void {
    if (this.#done) return;
    this.#appClosed = true;
    // FIN already sent: nobody will read what the remote still sends, so do not wait for its FIN.
    if (this.#outEnded) this.socket.destroySoon();
    else this.#pumpOut();
  }

  /** The app reset the session: RST to the remote. */
  reset(): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#resetSocket();
  }

  /** The app is gone: RST to the remote, and stop touching the fifos now. */
  abort(): void {
    if (this.#done) return;
    this.#failed = true;
    this.#resetSocket();
    this.#finish();
  }

  onQueueFailed(err: FerryError): void {
    this.#fail(err, true);
  }

  onSlotEvent(): void {
    if (this.#done || this.#failed) return;
    const err = this.#rx.error ?? this.#tx.error;
    if (err) {
      this.#fail(err, true);
      return;
    }
    if (this.#rx.peerReset) {
      this.reset();
      return;
    }
    // An event may mean the app's CAS consumed an arming made after we already looked: re-arm
    // (wantSpace here, wantData in #pumpOut) before concluding there is nothing to do.
    if (this.#waitingSpace && (this.#tx.freeSpace() > 0 || this.#tx.peerClosed || this.#tx.armSpace())) {
      this.#waitingSpace = false;
      this.#flushIn();
    }
    this.#pumpOut();
  }

  // ---- socket -> fifo ----

  /** DirectRead: where the next kernel read lands. Never empty (that would read as EOF). */
  #nextBuffer(): Uint8Array {
    this.#lent = null;
    if (!this.#done && !this.#failed && !this.#remoteEnded && this.#pendingIn === null) {
      const v = this.#tx.writableView();
      if (v.length > 0) {
        this.#lent = v;
        return v;
      }
    }
    return scratchBuffer();
  }

  /** DirectRead: the kernel read `n` bytes into `buf`, the fifo view or the shared scratch. */
  #onRead(n: number, buf: Uint8Array): void {
    const lent = this.#lent;
    this.#lent = null;
    if (this.#done || this.#failed) return;
    if (buf !== lent) {
      this.#onData(buf.subarray(0, n));
      // What did not fit must leave the scratch buffer before the next read reuses it.
      if (this.#pendingIn !== null && this.#pendingIn.buffer === buf.buffer)
        this.#pendingIn = this.#pendingIn.slice();
      return;
    }
    // The app stopped reading (closed or reset): nobody will read these bytes.
    if (this.#tx.peerClosed) return;
    if (this.#tx.commit(n) !== n) {
      this.#fail(this.#tx.error ?? tcpError(new Error('rx fifo refused data'), 'tcp session'), true);
      return;
    }
    this.bytesIn += n;
    this.#notice.data();
    // Full: stop reading now rather than read into the scratch only to copy it aside. The read
    // after the resume still lands in the scratch (lent while full), then usually fits the room
    // the app made.
    if (this.#tx.freeSpace() === 0) {
      this.#waitingSpace = true;
      if (this.#tx.armSpace()) this.#waitingSpace = false;
      else this.socket.pause();
    }
  }

  #onData(chunk: Uint8Array): void {
    if (this.#done || this.#failed) return;
    if (this.#pendingIn) {
      this.#pendingIn = Buffer.concat([this.#pendingIn, chunk]);
      return;
    }
    this.#pendingIn = chunk;
    this.#flushIn();
  }

  #onEnd(): void {
    // node may report an RST behind unread bytes as 'end' (tcp-read-end.ts): the app must see a
    // reset, not a stream that looks whole.
    const reset = resetBehindEnd(this.raw);
    if (reset) {
      this.#fail(reset, false);
      // The kernel dropped the connection already: closing sends nothing.
      this.socket.destroy();
      if (this.raw !== this.socket) this.raw.destroy();
      return;
    }
    this.#remoteEnded = true;
    if (!this.#pendingIn) this.#forwardFin();
  }

  /** Moves #pendingIn into the fifo; pauses the socket when the fifo is full. */
  #flushIn(): void {
    for (let i = 0; i < ROUNDS_PER_TURN && this.#pendingIn; i++) {
      if (this.#done || this.#failed) return;
      const chunk = this.#pendingIn;
      if (this.#tx.peerClosed) {
        // The app stopped reading (closed or reset): nobody will read these bytes.
        this.#pendingIn = null;
        break;
      }
      const n = this.#tx.enqueue(chunk);
      if (n < 0) {
        this.#fail(this.#tx.error ?? tcpError(new Error('rx fifo refused data'), 'tcp session'), true);
        return;
      }
      if (n > 0) {
        this.bytesIn += n;
        this.#notice.data();
      }
      if (n === chunk.length) {
        this.#pendingIn = null;
        break;
      }
      this.#pendingIn = chunk.subarray(n);
      if (!this.socket.isPaused()) this.socket.pause();
      this.#waitingSpace = true;
      if (!this.#tx.armSpace()) return;
      this.#waitingSpace = false;
    }
    if (this.#pendingIn) {
      setImmediate(() => this.#flushIn());
      return;
    }
    if (this.#remoteEnded) {
      this.#forwardFin();
      this.#maybeFinish();
    } else if (this.socket.isPaused()) this.socket.resume();
  }

  #forwardFin(): void {
    if (this.#finForwarded || this.#done || this.#failed) return;
    this.#finForwarded = true;
    this.#tx.fin();
    this.#seg.post(this.slot);
    this.#hooks.onRemoteFin();
  }

  // ---- fifo -> socket ----

  #pumpOut(): void {
    for (let i = 0; i < ROUNDS_PER_TURN; i++) {
      if (this.#done || this.#failed || this.#outEnded) return;
      const avail = this.#rx.readable();
      const fresh = avail - this.#inflight;
      if (fresh > 0) {
        this.#writeOut(this.#inflight, fresh);
        continue;
      }
      // The write callback continues from here.
      if (this.#inflight > 0) return;
      if (this.#rx.fin || (this.#appClosed && avail === 0)) {
        this.#outEnded = true;
        if (this.#rx.fin) this.#hooks.onAppFin();
        // After FIN, with the app gone from the session, nobody reads what the remote sends.
        if (this.#appClosed) this.socket.destroySoon();
        else this.socket.end();
        return;
      }
      if (this.#rx.error) {
        this.#fail(this.#rx.error, true);
        return;
      }
      if (!this.#rx.armData()) return;
    }
    if (this.#outScheduled) return;
    this.#outScheduled = true;
    setImmediate(() => {
      this.#outScheduled = false;
      this.#pumpOut();
    });
  }

  /** Writes `n` bytes that start `skip` bytes past the fifo's head, straight from its memory. */
  #writeOut(skip: number, n: number): void {
    const views = this.#rx.readableViews();
    const s = this.socket;
    let left = n;
    let toSkip = skip;
    s.cork();
    for (const v of views) {
      if (left === 0) break;
      if (toSkip >= v.length) {
        toSkip -= v.length;
        continue;
      }
      const piece = v.subarray(toSkip, Math.min(v.length, toSkip + left));
      toSkip = 0;
      left -= piece.length;
      if (left === 0) s.write(piece, (err) => this.#onWritten(n, err));
      else s.write(piece);
    }
    this.#inflight += n;
    s.uncork();
  }

  #onWritten(n: number, err: Error | null | undefined): void {
    if (this.#done || this.#failed || err) return;
    this.#inflight -= n;
    this.#rx.drop(n);
    this.bytesOut += n;
    this.#notice.space();
    this.#pumpOut();
  }

  // ---- teardown ----

  /** The connection or a fifo failed: the app sees a reset on its fifos and in a session-reset. */
  #fail(err: FerryError, resetSocket: boolean): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#pendingIn = null;
    // Only the reset flag, not a close of the fifo the app writes: the app's next write would then
    // fail with EPIPE before it saw the reset, and a vanished remote must read as ECONNRESET.
    this.#tx.reset();
    this.#seg.post(this.slot);
    if (resetSocket) this.#resetSocket();
    this.#hooks.onRemoteReset(err);
  }

  /**
   * After the socket closed: done once the last bytes it delivered are in the fifo. (The remote's
   * FIN can close the socket while those still wait for room: net emits 'end' on a paused socket.)
   */
  #maybeFinish(): void {
    if (!this.#socketClosed || (this.#pendingIn && !this.#failed)) return;
    if (this.#remoteEnded) this.#forwardFin();
    this.#finish();
  }

  /**
   * RST to the remote: through the kernel socket (a TLS socket cannot send one). After the app's
   * FIN went out as end(), a reset may be refused while the shutdown is pending: then the socket is
   * closed instead (reset-socket.ts), or ferryd would keep its descriptor for good.
   */
  #resetSocket(): void {
    resetSocket(this.raw);
    if (this.socket !== this.raw && !this.socket.destroyed) this.socket.destroy();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#pendingIn = null;
    this.#seg.remove(this.slot, this);
    this.#hooks.onDone();
  }
}
