// Doorbell: a pipe whose read end Node's own loop watches (net.Socket), rung by peers with one record.
//
// The read end is wrapped in `new net.Socket({ fd })`, so libuv polls it natively: no worker
// thread, and unref() works. Every 'data' event drains whatever bytes are queued and calls the
// ring callbacks once, so many rings between two loop turns coalesce into one call. ringFd (the
// write end, O_NONBLOCK) is meant to be handed to peers over SCM_RIGHTS; once the owner closes its
// own copy (dropRingFd), 'end' on the read side means every writer is gone, i.e. the peers died
// or closed it, and the onEnd callbacks run (once).
//
// A ring is an 8-byte record, two u32 words: RING_TAG, then (every STAMP_EVERY-th ring of a process)
// the ringer's monoNs32() clock, else 0. The woken side reads the first record of a read: how long
// the oldest ring waited for it to run is what a wake costs on this machine (shm/wake-cost.ts).
// A clock reading is a call out of optimized code (~0.1-0.4 us here; one per sleep was 0.4 us of
// a node:http server's ~15 us per request, BENCHMARKS.md wake8): one per STAMP_EVERY rings is a few
// ns a ring, and the woken side reads it only when asked (ringAgeMs) after a stamped ring. Writes of 8 bytes to a pipe are atomic (under PIPE_BUF), so
// records never interleave; bytes from anything else (a peer of an older build rang one byte) at
// the head of a read make that read unstamped, never an error.

import { type OnReadOpts, Socket, type SocketConstructorOpts } from 'node:net';
import { constants } from 'node:os';
import { ferryError } from '../errors.js';
import { close, pipe2 } from './fd.js';
import { libc } from './libc.js';
import { monoAgeMs, monoNs32 } from './mono-clock.js';
import { EAGAIN, retryEintr, sysError } from './sys-error.js';
import { validateFd } from './validate.js';

/** The first word of a ring record (no byte of it is 1, which a one-byte ring of older builds wrote). */
export const RING_TAG = 0xfe57a3c9;
export const RING_RECORD_BYTES = 8;
/** Rings per stamped ring (a power of two). */
const STAMP_EVERY = 32;
const RING_RECORD = new Uint32Array([RING_TAG, 0]);
let ringsRung = 0;
/** Ring bytes drained per read (256 rings): rings coalesce, so one read nearly always takes them all. */
const RING_READ_BYTES = 256 * RING_RECORD_BYTES;

/**
 * Rings the doorbell whose write end is fd (non-blocking write of one record). Returns true when the
 * doorbell is rung, including EAGAIN (the pipe is full, so it is rung already), and false on EPIPE
 * (the doorbell's owner has closed it; Node ignores SIGPIPE so this is just a return value). Other
 * errors (EBADF) throw FerryError. fd should be O_NONBLOCK, as Doorbell.create() makes it.
 */
export function ring(fd: number): boolean {
  validateFd(fd);
  // 0 means unstamped: a clock reading of exactly 0 is sent as 1 ns later.
  RING_RECORD[1] = (++ringsRung & (STAMP_EVERY - 1)) === 0 ? monoNs32() || 1 : 0;
  const r = retryEintr(() => libc.write(fd, RING_RECORD, RING_RECORD_BYTES));
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
  /** The first record of the last read: its stamp, or 0 (none, or not a ring record). */
  #stamp = 0;

  private constructor(readFd: number, ringFd: number, unref: boolean) {
    this.#ringFd = ringFd;
    const readBuffer = new ArrayBuffer(RING_READ_BYTES);
    const readWords = new Uint32Array(readBuffer);
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
        buffer: new Uint8Array(readBuffer),
        callback: (nread: number) => {
          this.#stamp = nread >= RING_RECORD_BYTES && readWords[0] === RING_TAG ? (readWords[1] ?? 0) : 0;
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

  /**
   * In an onRing callback: ms since the ring that this read began with, when the ringer stamped it
   * (else NaN). A peer writes what it likes here: a value from the future or garbage reads as up to
   * ~4.3 s, so a reader must bound what it believes.
   */
  get ringAgeMs(): number {
    return this.#stamp === 0 ? Number.NaN : monoAgeMs(this.#stamp);
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
