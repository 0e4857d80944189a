// The memif control channel: one SEQPACKET socket, 128-byte datagrams, at most one fd each.
//
// Receives everything the peer sends, checks framing (size, fds) and decodes it; the handshake
// state machines above decide what is legal. On any failure the channel reports once through
// `onFail` with the reason and the DISCONNECT string to send (if the socket is still usable) and
// stops reading; the owner then calls `close`.

import { FerryError, ferryError } from '../errors.js';
import {
  decodeMemif,
  encodeMemif,
  MEMIF_MSG_SIZE,
  type MemifMessage,
  memifMessageCarriesFd,
  truncateUtf8,
} from '../proto/memif/index.js';
import { close, recvMsg, sendMsg } from '../sys/index.js';
import { memifPoller } from './poller.js';

export interface ControlHandlers {
  /** A framed, decoded message; `fd` is set exactly when the type carries one (the handler owns it). */
  message(msg: MemifMessage, fd: number): void;
  /** The channel failed; `reply` is the DISCONNECT reason to send, or null when the peer is gone. */
  fail(err: FerryError, reply: string | null): void;
}

/** Receive buffer: larger than a message, so an oversized datagram shows up as too long. */
const RX_BYTES = 2 * MEMIF_MSG_SIZE;
/** Messages handled per readiness callback before yielding to the loop. */
const MAX_PER_WAKE = 64;

export class ControlChannel {
  readonly fd: number;
  #handlers: ControlHandlers;
  #closed = false;
  #failed = false;
  readonly #rx = new Uint8Array(RX_BYTES);
  readonly #tx = new Uint8Array(MEMIF_MSG_SIZE);

  constructor(fd: number, handlers: ControlHandlers) {
    this.fd = fd;
    this.#handlers = handlers;
    memifPoller().watch(fd, { readable: true }, (ev) => {
      if (this.#closed || this.#failed) return;
      this.#drain();
      // Hang-up with nothing left to read: recvMsg reports EOF as 0 bytes in #drain already; an
      // error condition with no data is reported here.
      if (!this.#closed && !this.#failed && ev.error && !ev.readable) {
        this.#failWith(ferryError('ERR_FERRY_MEMIF_PEER_GONE', 'control socket error'), null);
      }
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  setHandlers(handlers: ControlHandlers): void {
    this.#handlers = handlers;
  }

  /** Sends one message (with fd for ADD_REGION / ADD_RING). False if the socket failed (reported). */
  send(msg: MemifMessage, fd?: number): boolean {
    if (this.#closed || this.#failed) return false;
    encodeMemif(msg, this.#tx);
    try {
      const r = sendMsg(this.fd, this.#tx, fd === undefined ? undefined : [fd]);
      if (r === MEMIF_MSG_SIZE) return true;
      this.#failWith(
        ferryError('ERR_FERRY_MEMIF_PEER_GONE', 'control socket is not accepting messages'),
        null,
      );
    } catch (e) {
      const code = e instanceof FerryError ? e.code : 'error';
      this.#failWith(ferryError('ERR_FERRY_MEMIF_PEER_GONE', `send failed (${code})`), null);
    }
    return false;
  }

  /** Best effort: sends DISCONNECT with `reason` (truncated to fit) and closes. */
  disconnect(reason: string): void {
    if (!this.#closed) {
      try {
        encodeMemif({ type: 'disconnect', code: 0, reason: truncateUtf8(reason, 95) }, this.#tx);
        sendMsg(this.fd, this.#tx);
      } catch {
        // The peer may already be gone; closing is what matters.
      }
    }
    this.close();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    memifPoller().unwatch(this.fd);
    close(this.fd);
  }

  #failWith(err: FerryError, reply: string | null): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    memifPoller().unwatch(this.fd);
    this.#handlers.fail(err, reply);
  }

  #drain(): void {
    for (let i = 0; i < MAX_PER_WAKE && !this.#closed && !this.#failed; i++) {
      let r: ReturnType<typeof recvMsg>;
      try {
        r = recvMsg(this.fd, this.#rx, 1);
      } catch (e) {
        const fdTrouble =
          e instanceof FerryError &&
          (e.code === 'ERR_FERRY_FD_UNEXPECTED' || e.code === 'ERR_FERRY_FD_CTRUNC');
        if (fdTrouble)
          this.#failWith(
            ferryError('ERR_FERRY_MEMIF_PROTOCOL', 'more than one fd on a message'),
            'Too many fds',
          );
        else
          this.#failWith(
            ferryError('ERR_FERRY_MEMIF_PEER_GONE', `receive failed (${(e as FerryError).code})`),
            null,
          );
        return;
      }
      if (r === null) return;
      const fd = r.fds[0] ?? -1;
      if (r.bytes === 0 && fd < 0) {
        this.#failWith(ferryError('ERR_FERRY_MEMIF_PEER_GONE', 'the peer closed the control socket'), null);
        return;
      }
      if (r.truncated || r.bytes !== MEMIF_MSG_SIZE) {
        if (fd >= 0) close(fd);
        this.#failWith(
          ferryError(
            'ERR_FERRY_MEMIF_PROTOCOL',
            `control message of ${r.truncated ? 'more than 256' : r.bytes} bytes`,
          ),
          'Invalid message size',
        );
        return;
      }
      let msg: MemifMessage;
      try {
        msg = decodeMemif(this.#rx.subarray(0, MEMIF_MSG_SIZE));
      } catch (e) {
        if (fd >= 0) close(fd);
        const unknown = e instanceof FerryError && e.code === 'ERR_FERRY_PROTO_UNKNOWN_MSG';
        this.#failWith(
          ferryError('ERR_FERRY_MEMIF_PROTOCOL', (e as Error).message),
          unknown ? 'Unknown message type' : 'Malformed message',
        );
        return;
      }
      const wantsFd = memifMessageCarriesFd(msg.type);
      if (wantsFd && fd < 0) {
        const what = msg.type === 'add-region' ? 'Missing region fd' : 'Missing interrupt fd';
        this.#failWith(ferryError('ERR_FERRY_MEMIF_PROTOCOL', what), what);
        return;
      }
      if (!wantsFd && fd >= 0) {
        close(fd);
        this.#failWith(ferryError('ERR_FERRY_MEMIF_PROTOCOL', `${msg.type} carried an fd`), 'Unexpected fd');
        return;
      }
      this.#handlers.message(msg, fd);
    }
  }
}
