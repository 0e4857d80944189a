// Doorbell: a pipe whose read end Node's own loop watches (net.Socket), rung by peers with one byte.
//
// The read end is wrapped in `new net.Socket({ fd })`, so libuv polls it natively: no worker
// thread, and unref() works. Every 'data' event drains whatever bytes are queued and calls the
// ring callbacks once, so many rings between two loop turns coalesce into one call. ringFd (the
// write end, O_NONBLOCK) is meant to be handed to peers over SCM_RIGHTS; once the owner closes its
// own copy (dropRingFd), 'end' on the read side means every writer is gone, i.e. the peers died
// or closed it, and the onEnd callbacks run (once).

import { type OnReadOpts, Socket, type SocketConstructorOpts } from 'node:net';
import { constants } from 'node:os';
import { ferryError } from '../errors.js';
import { close, pipe2 } from './fd.js';
import { libc } from './libc.js';
import { EAGAIN, retryEintr, sysError } from './sys-error.js';
import { validateFd } from './validate.js';

const RING_BYTE = new Uint8Array([1]);
/** Ring bytes drained per read: rings coalesce, so one read nearly always takes them all. */
const RING_READ_BYTES = 256;

/**
 * Rings the doorbell whose write end is fd (non-blocking write of one byte). Returns true when the
 * doorbell is rung, including EAGAIN (the pipe is full, so it is rung already), and false on EPIPE
 * (the doorbell's owner has closed it; Node ignores SIGPIPE so this is just a return value). Other
 * errors (EBADF) throw FerryError. fd should be O_NONBLOCK, as Doorbell.create() makes it.
 */
export function ring(fd: number): boolean {
  validateFd(fd);
  const r = retryEintr(() => libc.write(fd, RING_BYTE, 1));
  if (r >= 0 || r === -EAGAIN) return true;
  if (r === -constants.errno.EPIPE) return false;
  throw sysError('write', -r, 'doorbell');
}

export class Doorbell {
  #socket: Socket;
  #ringFd: number;
  #onRing: Array<() => void> = [];
  #onEnd: Array<() => void> = [];
  #onError: Array<(err: Error) => void> = [];
  #closed = false;
  #hungUp = false;

  private constructor(readFd: number, ringFd: number, unref: boolean) {
    this.#ringFd = ringFd;
    // onread: libuv reads the ring bytes into one small buffer of ours and calls back directly,
    // skipping a 64 KiB allocation and the Readable machinery on every wake (most of a wake's JS
    // cost in ferryd's profile). Several reads in one libuv turn call back several times; each
    // callback is cheap for the notifiers, which only schedule a turn.
    // Node accepts onread in the Socket constructor; @types/node lists it only for connect().
    const opts: SocketConstructorOpts & { onread: OnReadOpts } = {
      fd: readFd,
      readable: true,
      writable: false,
      onread: {
        buffer: Buffer.allocUnsafe(RING_READ_BYTES),
        callback: () => {
          for (const cb of this.#onRing) cb();
          return true;
        },
      },
    };
    this.#socket = new Socket(opts);
    if (unref) this.#socket.unref();
    // Flowing, so that EOF (every writer gone) is emitted as 'end'.
    this.#socket.resume();
    this.#socket.on('end', () => this.#hangup());
    this.#socket.on('error', (err) => {
      if (this.#onError.length === 0) this.#hangup();
      for (const cb of this.#onError) cb(err);
    });
  }

  /** A doorbell; with unref: true it does not keep the process alive. */
  static create(opts?: { unref?: boolean }): Doorbell {
    // Both ends non-blocking: libuv needs it on the read end, ring() on the write end, and
    // O_NONBLOCK travels with the file description to every peer the write end is passed to.
    const [readFd, writeFd] = pipe2({ nonblock: true });
    return new Doorbell(readFd, writeFd, opts?.unref === true);
  }

  /** The write end, for peers (send it with sendMsg). -1 after dropRingFd() or close(). */
  get ringFd(): number {
    return this.#ringFd;
  }

  onRing(cb: () => void): void {
    if (typeof cb !== 'function') throw ferryError('ERR_INVALID_ARG_TYPE', 'cb must be a function');
    this.#onRing.push(cb);
  }

  /** Called once when every write end is closed (only possible after dropRingFd()). */
  onEnd(cb: () => void): void {
    if (typeof cb !== 'function') throw ferryError('ERR_INVALID_ARG_TYPE', 'cb must be a function');
    this.#onEnd.push(cb);
  }

  /** Read errors on the pipe; without an error callback an error is treated as a hangup. */
  onError(cb: (err: Error) => void): void {
    if (typeof cb !== 'function') throw ferryError('ERR_INVALID_ARG_TYPE', 'cb must be a function');
    this.#onError.push(cb);
  }

  /** Closes this process's copy of the write end, after it has been handed to the peers. */
  dropRingFd(): void {
    if (this.#ringFd === -1) return;
    const fd = this.#ringFd;
    this.#ringFd = -1;
    close(fd);
  }

  ref(): void {
    this.#socket.ref();
  }

  unref(): void {
    this.#socket.unref();
  }

  /** Closes both ends; idempotent. No callbacks run afterwards. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#onRing = [];
    this.#onEnd = [];
    this.#socket.destroy();
    this.dropRingFd();
  }

  #hangup(): void {
    if (this.#hungUp || this.#closed) return;
    this.#hungUp = true;
    for (const cb of this.#onEnd) cb();
  }
}
