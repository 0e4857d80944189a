// sendmsg/recvmsg with SCM_RIGHTS: bytes plus file descriptors over AF_UNIX sockets.
//
// msghdr, iovec and the control buffer live in native memory (stable addresses the kernel can be
// given inside msghdr); data is copied between the caller's Uint8Array and a native bounce buffer,
// because a JS buffer's address is only pinned for the duration of a direct koffi argument.

import { ferryError } from '../errors.js';
import {
  CMSG_ALIGN_BYTES,
  CMSGHDR_LEN,
  CMSGHDR_LEVEL,
  CMSGHDR_SIZE,
  CMSGHDR_TYPE,
  FD_SIZE,
  IOVEC_BASE,
  IOVEC_LEN,
  IOVEC_SIZE,
  LE,
  MSG_CMSG_CLOEXEC,
  MSG_CTRUNC,
  MSG_NOSIGNAL,
  MSG_TRUNC,
  MSGHDR_CONTROL,
  MSGHDR_CONTROLLEN,
  MSGHDR_FLAGS,
  MSGHDR_IOV,
  MSGHDR_IOVLEN,
  MSGHDR_NAME,
  MSGHDR_NAMELEN,
  MSGHDR_SIZE,
  SCM_MAX_FD,
  SCM_RIGHTS,
  SOL_SOCKET,
} from './constants.js';
import { libc, NativeBuffer } from './libc.js';
import { EAGAIN, retryEintr, sysError } from './sys-error.js';
import { validateBytes, validateFd, validateRange } from './validate.js';

export interface RecvResult {
  /** Bytes copied into buf. */
  bytes: number;
  /** Descriptors received (already FD_CLOEXEC); the caller owns them. */
  fds: number[];
  /** MSG_TRUNC: the datagram was larger than buf and the rest was discarded. */
  truncated: boolean;
}

/** With maxFds = 0 there is still room for this many, so stray descriptors are seen and closed. */
const STRAY_FD_SLOTS = 16;

const cmsgAlign = (n: number): number => (n + CMSG_ALIGN_BYTES - 1) & ~(CMSG_ALIGN_BYTES - 1);
const cmsgLen = (dataLen: number): number => CMSGHDR_SIZE + dataLen;
const cmsgSpace = (dataLen: number): number => CMSGHDR_SIZE + cmsgAlign(dataLen);

// msghdr followed by its single iovec.
const header = new NativeBuffer(MSGHDR_SIZE + IOVEC_SIZE);
const control = new NativeBuffer(cmsgSpace(FD_SIZE * STRAY_FD_SLOTS));
const bounce = new NativeBuffer(64 * 1024);

function fillHeader(dataLen: number, controlLen: number): void {
  const h = header.view;
  const iov = header.ptr + BigInt(MSGHDR_SIZE);
  h.setBigUint64(MSGHDR_NAME, 0n, LE);
  h.setUint32(MSGHDR_NAMELEN, 0, LE);
  h.setBigUint64(MSGHDR_IOV, iov, LE);
  h.setBigUint64(MSGHDR_IOVLEN, 1n, LE);
  h.setBigUint64(MSGHDR_CONTROL, controlLen > 0 ? control.ptr : 0n, LE);
  h.setBigUint64(MSGHDR_CONTROLLEN, BigInt(controlLen), LE);
  h.setInt32(MSGHDR_FLAGS, 0, LE);
  h.setBigUint64(MSGHDR_SIZE + IOVEC_BASE, bounce.ptr, LE);
  h.setBigUint64(MSGHDR_SIZE + IOVEC_LEN, BigInt(dataLen), LE);
}

/**
 * Sends data and, if given, fds in one SCM_RIGHTS message (MSG_NOSIGNAL). Returns the bytes sent,
 * or -1 when a non-blocking socket would block. EPIPE / ECONNRESET (peer gone) throw FerryError.
 * The fds stay open here; the receiver gets its own copies.
 */
export function sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number {
  validateFd(fd);
  validateBytes(data, 'data');
  const n = fds?.length ?? 0;
  if (n > SCM_MAX_FD) throw ferryError('ERR_OUT_OF_RANGE', `at most ${SCM_MAX_FD} fds per message, got ${n}`);
  bounce.ensure(data.byteLength);
  bounce.bytes.set(data);
  let controlLen = 0;
  if (fds !== undefined && n > 0) {
    controlLen = cmsgSpace(FD_SIZE * n);
    control.ensure(controlLen);
    const c = control.view;
    control.bytes.fill(0, 0, controlLen);
    c.setBigUint64(CMSGHDR_LEN, BigInt(cmsgLen(FD_SIZE * n)), LE);
    c.setInt32(CMSGHDR_LEVEL, SOL_SOCKET, LE);
    c.setInt32(CMSGHDR_TYPE, SCM_RIGHTS, LE);
    for (let i = 0; i < n; i++) {
      const f = fds[i];
      validateFd(f, `fds[${i}]`);
      c.setInt32(CMSGHDR_SIZE + FD_SIZE * i, f, LE);
    }
  }
  fillHeader(data.byteLength, controlLen);
  const r = retryEintr(() => libc.sendmsg(fd, header.ptr, MSG_NOSIGNAL));
  if (r >= 0) return r;
  if (r === -EAGAIN) return -1;
  throw sysError('sendmsg', -r);
}

/**
 * Receives one message into buf with up to maxFds descriptors (MSG_CMSG_CLOEXEC). Returns null
 * when a non-blocking socket would block; bytes 0 with no fds is EOF (stream) or an empty datagram.
 *
 * Descriptors never leak: if the kernel truncated the control data (MSG_CTRUNC) every fd that did
 * arrive is closed and ERR_FERRY_FD_CTRUNC is thrown; if more fds arrive than maxFds (including
 * any at all with maxFds = 0) they are closed and ERR_FERRY_FD_UNEXPECTED is thrown. In both cases
 * the message's bytes are still copied into buf but the message itself is consumed.
 */
export function recvMsg(fd: number, buf: Uint8Array, maxFds: number): RecvResult | null {
  validateFd(fd);
  validateBytes(buf, 'buf');
  validateRange(maxFds, 'maxFds', 0, SCM_MAX_FD);
  const controlLen = cmsgSpace(FD_SIZE * (maxFds > 0 ? maxFds : STRAY_FD_SLOTS));
  control.ensure(controlLen);
  bounce.ensure(buf.byteLength);
  fillHeader(buf.byteLength, controlLen);
  const r = retryEintr(() => libc.recvmsg(fd, header.ptr, MSG_CMSG_CLOEXEC));
  if (r === -EAGAIN) return null;
  if (r < 0) throw sysError('recvmsg', -r);
  const flags = header.view.getInt32(MSGHDR_FLAGS, LE);
  const returnedLen = Number(header.view.getBigUint64(MSGHDR_CONTROLLEN, LE));
  const { fds, malformed } = parseRights(Math.min(returnedLen, controlLen));
  buf.set(bounce.bytes.subarray(0, Math.min(r, buf.byteLength)));
  if ((flags & MSG_CTRUNC) !== 0 || malformed) {
    closeQuietly(fds);
    if (maxFds === 0) throw ferryError('ERR_FERRY_FD_UNEXPECTED', `fds arrived on fd ${fd} with maxFds 0`);
    throw ferryError(
      'ERR_FERRY_FD_CTRUNC',
      `more than ${maxFds} fds, or malformed control data, on fd ${fd}`,
    );
  }
  if (fds.length > maxFds) {
    closeQuietly(fds);
    throw ferryError('ERR_FERRY_FD_UNEXPECTED', `${fds.length} fds arrived on fd ${fd}, maxFds ${maxFds}`);
  }
  return { bytes: r, fds, truncated: (flags & MSG_TRUNC) !== 0 };
}

/** Walks the cmsgs in the first `len` bytes of control, bounds-checking every length. */
function parseRights(len: number): { fds: number[]; malformed: boolean } {
  const c = control.view;
  const fds: number[] = [];
  let off = 0;
  while (off + CMSGHDR_SIZE <= len) {
    const l = c.getBigUint64(off + CMSGHDR_LEN, LE);
    if (l < BigInt(CMSGHDR_SIZE) || l > BigInt(len - off)) return { fds, malformed: true };
    const cl = Number(l);
    if (
      c.getInt32(off + CMSGHDR_LEVEL, LE) === SOL_SOCKET &&
      c.getInt32(off + CMSGHDR_TYPE, LE) === SCM_RIGHTS
    ) {
      const count = Math.floor((cl - CMSGHDR_SIZE) / FD_SIZE);
      for (let i = 0; i < count; i++) fds.push(c.getInt32(off + CMSGHDR_SIZE + FD_SIZE * i, LE));
    }
    off += cmsgAlign(cl);
  }
  return { fds, malformed: false };
}

function closeQuietly(fds: readonly number[]): void {
  for (const f of fds) libc.close(f);
}
