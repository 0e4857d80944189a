// AF_UNIX sockets (SEQPACKET and stream): create, bind, listen, accept, connect, credentials.

import { constants } from 'node:os';
import { ferryError } from '../errors.js';
import {
  AF_UNIX,
  LE,
  SHUT_RD,
  SHUT_RDWR,
  SHUT_WR,
  SO_PEERCRED,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOCKADDR_UN_SIZE,
  SOL_SOCKET,
  SOMAXCONN,
  UCRED_GID,
  UCRED_PID,
  UCRED_SIZE,
  UCRED_UID,
} from './constants.js';
import { lastErrno, libc } from './libc.js';
import { decodeSockaddrUn, encodeSockaddrUn } from './sockaddr.js';
import { check, EAGAIN, EINTR, retryEintr, sysError } from './sys-error.js';
import { validateFd, validateRange } from './validate.js';

export type UnixSocketType = 'seqpacket' | 'stream';

const addrScratch = new Uint8Array(SOCKADDR_UN_SIZE);
const lenScratch = new Uint32Array(1);
const pairScratch = new Int32Array(2);
const ucredScratch = new Uint8Array(UCRED_SIZE);
const ucredView = new DataView(ucredScratch.buffer);
const { ECONNABORTED, EISCONN } = constants.errno;
/** A burst of connections aborted before accept() is skipped at most this many times per call. */
const MAX_ACCEPT_ABORTS = 64;

function socketTypeFlags(type: UnixSocketType, nonblock: boolean | undefined): number {
  let base: number;
  if (type === 'seqpacket') base = SOCK_SEQPACKET;
  else if (type === 'stream') base = SOCK_STREAM;
  else
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      `socket type must be 'seqpacket' or 'stream', got ${String(type)}`,
    );
  return base | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0);
}

/** An AF_UNIX socket, always SOCK_CLOEXEC. */
export function unixSocket(type: UnixSocketType, opts?: { nonblock?: boolean }): number {
  const flags = socketTypeFlags(type, opts?.nonblock);
  return check('socket', () => libc.socket(AF_UNIX, flags, 0));
}

/** Binds to a filesystem path or, with a leading '@', an abstract name of exact length. */
export function bindUnix(fd: number, path: string): void {
  validateFd(fd);
  const len = encodeSockaddrUn(path, addrScratch);
  check('bind', () => libc.bind(fd, addrScratch, len), path);
}

export function listen(fd: number, backlog = SOMAXCONN): void {
  validateFd(fd);
  validateRange(backlog, 'backlog', 0, SOMAXCONN);
  check('listen', () => libc.listen(fd, backlog));
}

/** accept4 with SOCK_CLOEXEC. Returns the new fd, or -1 when a non-blocking listener has none. */
export function accept(fd: number, opts?: { nonblock?: boolean }): number {
  validateFd(fd);
  const flags = SOCK_CLOEXEC | (opts?.nonblock ? SOCK_NONBLOCK : 0);
  for (let i = 0; i < MAX_ACCEPT_ABORTS; i++) {
    const r = retryEintr(() => libc.accept4(fd, null, null, flags));
    if (r >= 0) return r;
    if (r === -EAGAIN) return -1;
    // A peer that went away between the handshake and accept(): take the next one.
    if (r !== -ECONNABORTED) throw sysError('accept4', -r);
  }
  return -1;
}

/**
 * Connects to a path or '@name'. Failures keep their POSIX codes: ENOENT (no such path),
 * ECONNREFUSED (nothing listening), EAGAIN (non-blocking and the listener's backlog is full).
 */
export function connectUnix(fd: number, path: string): void {
  validateFd(fd);
  const len = encodeSockaddrUn(path, addrScratch);
  let interrupted = false;
  const r = retryEintr(() => {
    const c = libc.connect(fd, addrScratch, len);
    if (c === -1 && lastErrno() === EINTR) interrupted = true;
    return c;
  });
  // connect() interrupted by a signal carries on in the kernel; the retry then reports EISCONN.
  if (r === -EISCONN && interrupted) return;
  if (r < 0) throw sysError('connect', -r, path);
}

export function socketpair(type: UnixSocketType, opts?: { nonblock?: boolean }): [number, number] {
  const flags = socketTypeFlags(type, opts?.nonblock);
  check('socketpair', () => libc.socketpair(AF_UNIX, flags, 0, pairScratch));
  return [pairScratch[0] ?? -1, pairScratch[1] ?? -1];
}

export function shutdown(fd: number, how: 'read' | 'write' | 'both'): void {
  validateFd(fd);
  const h = how === 'read' ? SHUT_RD : how === 'write' ? SHUT_WR : how === 'both' ? SHUT_RDWR : -1;
  if (h === -1) throw ferryError('ERR_INVALID_ARG_VALUE', `how must be 'read', 'write' or 'both'`);
  check('shutdown', () => libc.shutdown(fd, h));
}

/** The peer's credentials as the kernel recorded them at connect()/socketpair() (SO_PEERCRED). */
export function peerCredentials(fd: number): { pid: number; uid: number; gid: number } {
  validateFd(fd);
  lenScratch[0] = UCRED_SIZE;
  check(
    'getsockopt',
    () => libc.getsockopt(fd, SOL_SOCKET, SO_PEERCRED, ucredScratch, lenScratch),
    'SO_PEERCRED',
  );
  return {
    pid: ucredView.getInt32(UCRED_PID, LE),
    uid: ucredView.getUint32(UCRED_UID, LE),
    gid: ucredView.getUint32(UCRED_GID, LE),
  };
}

/** The bound name of fd: 'path', '@name', or '' when unbound. */
export function socketName(fd: number): string {
  validateFd(fd);
  lenScratch[0] = SOCKADDR_UN_SIZE;
  check('getsockname', () => libc.getsockname(fd, addrScratch, lenScratch));
  return decodeSockaddrUn(addrScratch, lenScratch[0] ?? 0);
}
