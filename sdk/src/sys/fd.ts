// File-descriptor basics: close, read, write, pipe2, eventfd, fcntl flags, dup.

import { ferryError } from '../errors.js';
import {
  EFD_CLOEXEC,
  EFD_NONBLOCK,
  EFD_SEMAPHORE,
  EVENTFD_VALUE_SIZE,
  F_DUPFD_CLOEXEC,
  F_GETFD,
  F_GETFL,
  F_SETFD,
  F_SETFL,
  FD_CLOEXEC,
  O_CLOEXEC,
  O_NONBLOCK,
} from './constants.js';
import { lastErrno, libc } from './libc.js';
import { check, EAGAIN, EINTR, retryEintr, sysError } from './sys-error.js';
import { validateBytes, validateFd, validateRange } from './validate.js';

const pairScratch = new Int32Array(2);
const counterScratch = new BigUint64Array(1);
const counterBytes = new Uint8Array(counterScratch.buffer);
const U64_MAX = 0xffff_ffff_ffff_ffffn;

/**
 * Closes fd. EINTR counts as success: Linux releases the descriptor before it reports EINTR, and
 * retrying could close a descriptor another part of the process has just been given.
 */
export function close(fd: number): void {
  validateFd(fd);
  if (libc.close(fd) === 0) return;
  const errno = lastErrno();
  if (errno !== EINTR) throw sysError('close', errno);
}

/** Reads into buf. Returns the byte count, 0 at EOF, or -1 when a non-blocking fd would block. */
export function read(fd: number, buf: Uint8Array): number {
  validateFd(fd);
  validateBytes(buf, 'buf');
  const r = retryEintr(() => libc.read(fd, buf, buf.byteLength));
  if (r >= 0) return r;
  if (r === -EAGAIN) return -1;
  throw sysError('read', -r);
}

/** Writes buf. Returns the byte count, or -1 when a non-blocking fd would block. */
export function write(fd: number, buf: Uint8Array): number {
  validateFd(fd);
  validateBytes(buf, 'buf');
  const r = retryEintr(() => libc.write(fd, buf, buf.byteLength));
  if (r >= 0) return r;
  if (r === -EAGAIN) return -1;
  throw sysError('write', -r);
}

/** A pipe, always O_CLOEXEC; O_NONBLOCK on both ends when asked. */
export function pipe2(opts?: { nonblock?: boolean }): [readFd: number, writeFd: number] {
  const flags = O_CLOEXEC | (opts?.nonblock ? O_NONBLOCK : 0);
  check('pipe2', () => libc.pipe2(pairScratch, flags));
  return [pairScratch[0] ?? -1, pairScratch[1] ?? -1];
}

/** An eventfd, always EFD_CLOEXEC. */
export function eventfd(initval = 0, opts?: { nonblock?: boolean; semaphore?: boolean }): number {
  validateRange(initval, 'initval', 0, 0xffff_ffff);
  const flags = EFD_CLOEXEC | (opts?.nonblock ? EFD_NONBLOCK : 0) | (opts?.semaphore ? EFD_SEMAPHORE : 0);
  return check('eventfd', () => libc.eventfd(initval, flags));
}

/** Adds n (default 1) to an eventfd counter. Returns false when it would block (counter full). */
export function eventfdWrite(fd: number, n = 1n): boolean {
  validateFd(fd);
  if (typeof n !== 'bigint' || n < 1n || n >= U64_MAX) {
    throw ferryError('ERR_OUT_OF_RANGE', 'n must be a bigint in [1, 2^64 - 2]');
  }
  counterScratch[0] = n;
  const r = retryEintr(() => libc.write(fd, counterBytes, EVENTFD_VALUE_SIZE));
  if (r === EVENTFD_VALUE_SIZE) return true;
  if (r === -EAGAIN) return false;
  throw sysError('write', r < 0 ? -r : 0, 'eventfd');
}

/** Reads and resets an eventfd counter (or takes 1 in semaphore mode); null when it would block. */
export function eventfdRead(fd: number): bigint | null {
  validateFd(fd);
  const r = retryEintr(() => libc.read(fd, counterBytes, EVENTFD_VALUE_SIZE));
  if (r === EVENTFD_VALUE_SIZE) return counterScratch[0] ?? 0n;
  if (r === -EAGAIN) return null;
  throw sysError('read', r < 0 ? -r : 0, 'eventfd');
}

/** Sets or clears O_NONBLOCK (a file-description flag: every holder of a dup or passed copy sees it). */
export function setNonBlocking(fd: number, on: boolean): void {
  validateFd(fd);
  const flags = check('fcntl', () => libc.fcntl(fd, F_GETFL));
  const next = on ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (next !== flags) check('fcntl', () => libc.fcntl(fd, F_SETFL, 'int', next));
}

/** Sets or clears FD_CLOEXEC on this descriptor only. */
export function setCloexec(fd: number, on: boolean): void {
  validateFd(fd);
  const flags = check('fcntl', () => libc.fcntl(fd, F_GETFD));
  const next = on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC;
  if (next !== flags) check('fcntl', () => libc.fcntl(fd, F_SETFD, 'int', next));
}

/** Duplicates fd to the lowest free descriptor, with FD_CLOEXEC set. */
export function dup(fd: number): number {
  validateFd(fd);
  return check('fcntl', () => libc.fcntl(fd, F_DUPFD_CLOEXEC, 'int', 0), 'F_DUPFD_CLOEXEC');
}
