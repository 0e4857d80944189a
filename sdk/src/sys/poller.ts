// FdPoller: readiness of any fd (SEQPACKET sockets, eventfds) for Node's loop, via epoll on a worker.
//
// One epoll instance per poller and at most one koffi `.async` epoll_wait in flight, on a thread of
// the libuv threadpool (koffi uses napi async work). It is re-issued after each batch is delivered.
// An internal eventfd is in the set so unwatch/close can interrupt the wait. When nothing is
// watched no wait is in flight, so the poller does not keep the process alive. While something is
// watched it holds one threadpool thread (4 by default, UV_THREADPOOL_SIZE): share one poller per
// process rather than creating many. Watches are level-triggered: a callback should drain its fd
// (read until EAGAIN) before it returns, or it is called again at once with the same events.

import { ferryError } from '../errors.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EPOLL_CLOEXEC,
  EPOLL_CTL_ADD,
  EPOLL_CTL_DEL,
  EPOLL_CTL_MOD,
  EPOLL_EVENT_DATA,
  EPOLL_EVENT_EVENTS,
  EPOLL_EVENT_SIZE,
  EPOLLERR,
  EPOLLET,
  EPOLLHUP,
  EPOLLIN,
  EPOLLOUT,
  EPOLLRDHUP,
  LE,
} from './constants.js';
import { eventfdRead, eventfdWrite } from './fd.js';
import { libc, NativeBuffer } from './libc.js';
import { check, retryEintr, sysError } from './sys-error.js';
import { validateFd } from './validate.js';

export interface FdEvents {
  readable: boolean;
  writable: boolean;
  /** EPOLLHUP or EPOLLRDHUP: the peer closed (reads may still return buffered data, then EOF). */
  hangup: boolean;
  error: boolean;
}
/**
 * `edge`: edge-triggered (EPOLLET). The callback runs once per new readiness event and the fd need
 * not be drained; for an eventfd every write is a new event, so a doorbell can be watched without
 * ever reading it (useful when a peer shares the eventfd and controls its blocking mode).
 */
export type FdInterest = { readable?: boolean; writable?: boolean; edge?: boolean };
export type FdCallback = (ev: FdEvents) => void;

const MAX_EVENTS = 64;
/** Consecutive failed epoll_wait calls (not EINTR) before the poller gives up and reports errors. */
const MAX_WAIT_FAILURES = 16;
const NO_TIMEOUT = -1;

export class FdPoller {
  #epfd: number;
  #wakeFd: number;
  #events = new NativeBuffer(MAX_EVENTS * EPOLL_EVENT_SIZE);
  #ctl = new Uint8Array(EPOLL_EVENT_SIZE);
  #ctlView = new DataView(this.#ctl.buffer);
  #watches = new Map<number, FdCallback>();
  #waiting = false;
  #closed = false;
  #failures = 0;

  constructor() {
    this.#epfd = check('epoll_create1', () => libc.epollCreate1(EPOLL_CLOEXEC));
    try {
      this.#wakeFd = check('eventfd', () => libc.eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    } catch (err) {
      libc.close(this.#epfd);
      throw err;
    }
    this.#ctlOp(EPOLL_CTL_ADD, this.#wakeFd, EPOLLIN);
  }

  /** Number of fds being watched (the internal eventfd not included). */
  get size(): number {
    return this.#watches.size;
  }

  /** Starts (or changes) watching fd; cb replaces any earlier callback for fd. */
  watch(fd: number, interest: FdInterest, cb: FdCallback): void {
    if (this.#closed) throw ferryError('ERR_FERRY_SOCKET_CLOSED', 'FdPoller is closed');
    validateFd(fd);
    if (typeof cb !== 'function') throw ferryError('ERR_INVALID_ARG_TYPE', 'cb must be a function');
    const mask =
      (interest.readable ? EPOLLIN | EPOLLRDHUP : 0) |
      (interest.writable ? EPOLLOUT : 0) |
      (interest.edge ? EPOLLET : 0);
    // Watching a new fd while a wait is in flight is safe: epoll_ctl on a set being waited on
    // takes effect for that wait.
    this.#ctlOp(this.#watches.has(fd) ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd, mask);
    this.#watches.set(fd, cb);
    this.#arm();
  }

  /** Stops watching fd. Safe after fd was closed (the kernel already dropped it from the set). */
  unwatch(fd: number): void {
    if (!this.#watches.delete(fd)) return;
    // Failure is ignored: EBADF / ENOENT mean fd was closed first, which removed it from the set.
    retryEintr(() => libc.epollCtl(this.#epfd, EPOLL_CTL_DEL, fd, this.#ctl));
    if (this.#watches.size === 0) this.#interrupt();
  }

  /** Stops watching everything; the epoll fd is closed once the in-flight wait (if any) returns. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watches.clear();
    if (this.#waiting) this.#interrupt();
    else this.#destroy();
  }

  #ctlOp(op: number, fd: number, mask: number): void {
    this.#ctlView.setUint32(EPOLL_EVENT_EVENTS, mask, LE);
    this.#ctlView.setBigUint64(EPOLL_EVENT_DATA, BigInt(fd), LE);
    const r = retryEintr(() => libc.epollCtl(this.#epfd, op, fd, this.#ctl));
    if (r < 0) throw sysError('epoll_ctl', -r, `fd ${fd}`);
  }

  #interrupt(): void {
    if (this.#waiting) eventfdWrite(this.#wakeFd);
  }

  #arm(): void {
    if (this.#waiting || this.#closed || this.#watches.size === 0) return;
    this.#waiting = true;
    libc.epollWait.async(this.#epfd, this.#events.ptr, MAX_EVENTS, NO_TIMEOUT, (err: unknown, n: number) =>
      this.#onWait(err, n),
    );
  }

  #onWait(err: unknown, n: number): void {
    this.#waiting = false;
    if (this.#closed) {
      this.#destroy();
      return;
    }
    // The worker thread's errno is not visible here; a failure is almost always EINTR. Repeated
    // failures mean the set is broken: report an error to every watcher and stop.
    if (err || n < 0) {
      if (++this.#failures >= MAX_WAIT_FAILURES) this.#failAll();
      else this.#arm();
      return;
    }
    this.#failures = 0;
    const batch: Array<[number, FdCallback, FdEvents]> = [];
    const v = this.#events.view;
    for (let i = 0; i < n; i++) {
      const base = i * EPOLL_EVENT_SIZE;
      const mask = v.getUint32(base + EPOLL_EVENT_EVENTS, LE);
      const fd = Number(v.getBigUint64(base + EPOLL_EVENT_DATA, LE));
      if (fd === this.#wakeFd) {
        eventfdRead(this.#wakeFd);
        continue;
      }
      const cb = this.#watches.get(fd);
      if (cb === undefined) continue;
      batch.push([
        fd,
        cb,
        {
          readable: (mask & EPOLLIN) !== 0,
          writable: (mask & EPOLLOUT) !== 0,
          hangup: (mask & (EPOLLHUP | EPOLLRDHUP)) !== 0,
          error: (mask & EPOLLERR) !== 0,
        },
      ]);
    }
    // Re-arm after dispatch (the callbacks drain their fds first, or a level-triggered wait would
    // return at once with the same events), in finally so a throwing callback cannot stall the
    // poller. A callback that unwatches or re-watches a later fd of this batch cancels its event.
    try {
      for (const [fd, cb, ev] of batch) if (this.#watches.get(fd) === cb) cb(ev);
    } finally {
      this.#arm();
    }
  }

  #failAll(): void {
    const watchers = [...this.#watches.values()];
    this.close();
    for (const cb of watchers) cb({ readable: false, writable: false, hangup: false, error: true });
  }

  #destroy(): void {
    libc.close(this.#wakeFd);
    libc.close(this.#epfd);
    this.#events.free();
  }
}
