// errno -> FerryError, and the EINTR retry every wrapper uses.

import { constants } from 'node:os';
import { type ErrorCode, type FerryError, ferryError, isErrorCode } from '../errors.js';
import { lastErrno } from './libc.js';

const errnoNames = new Map<number, string>();
const errnoCodes = new Map<number, ErrorCode>();
for (const [name, value] of Object.entries(constants.errno)) {
  // Aliases share a number (EWOULDBLOCK = EAGAIN): the first name that is a Ferry code wins.
  if (!errnoNames.has(value)) errnoNames.set(value, name);
  if (isErrorCode(name) && !errnoCodes.has(value)) {
    errnoCodes.set(value, name);
    errnoNames.set(value, name);
  }
}

export const EINTR = constants.errno.EINTR;
export const EAGAIN = constants.errno.EAGAIN;
/** A signal storm that interrupts a call this many times in a row is reported as EINTR. */
const MAX_EINTR_RETRIES = 1000;

/** The POSIX name of an errno value ('EBADF'), or 'E<number>' when Node does not know it. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `E${errno}`;
}

/**
 * A FerryError for a failed system call: `code` is the POSIX name when Ferry's table has it, else
 * ERR_FERRY_SYS (the message then names the errno); `errno` and `syscall` are always set.
 */
export function sysError(syscall: string, errno: number, detail?: string): FerryError {
  const code = errnoCodes.get(errno);
  const what = detail ? `${syscall} ${detail}` : syscall;
  if (code !== undefined) return ferryError(code, what, { errno, syscall });
  return ferryError('ERR_FERRY_SYS', `${what}: ${errnoName(errno)} (${errno})`, { errno, syscall });
}

/**
 * Runs a libc call until it does not fail with EINTR. Returns the result (>= 0) or, on failure,
 * minus errno, so callers can branch on EAGAIN without a second koffi.errno() read.
 */
export function retryEintr(call: () => number): number {
  for (let i = 0; i < MAX_EINTR_RETRIES; i++) {
    const r = call();
    if (r !== -1) return r;
    const errno = lastErrno();
    if (errno !== EINTR) return -errno;
  }
  return -EINTR;
}

/** retryEintr, then throws sysError on any failure. */
export function check(syscall: string, call: () => number, detail?: string): number {
  const r = retryEintr(call);
  if (r < 0) throw sysError(syscall, -r, detail);
  return r;
}
