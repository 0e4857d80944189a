// Kernel TCP sockets that ferryd hands to apps (handoff mode): how ferryd opens one without
// node:net (a non-blocking connect on a bare descriptor, which it can pass on as soon as it is
// connected), what it may ask the kernel about a socket it keeps a duplicate of (TCP_INFO,
// addresses), and how it resets one the app also holds.

import { isIPv4, isIPv6 } from 'node:net';
import { constants } from 'node:os';
import { ferryError } from '../errors.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IPPROTO_TCP,
  LE,
  MSG_DONTWAIT,
  MSG_PEEK,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  SOCKADDR_IN_SIZE,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_STORAGE_SIZE,
  SOL_SOCKET,
  TCP_INFO,
  TCP_INFO_SIZE,
  TCP_NODELAY,
  TCPI_BYTES_ACKED,
  TCPI_BYTES_RECEIVED,
  TCPI_LAST_DATA_RECV,
  TCPI_LAST_DATA_SENT,
  TCPI_MIN_SIZE,
  TCPI_NOTSENT_BYTES,
  TCPI_RTT,
  TCPI_STATE,
  TCPI_UNACKED,
} from './constants.js';
import { libc } from './libc.js';
import { check, EAGAIN, errnoName, retryEintr, sysError } from './sys-error.js';
import { validateFd } from './validate.js';

/** Linux TCP states (include/net/tcp_states.h), by number. */
const TCP_STATES = [
  'UNKNOWN',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT1',
  'FIN_WAIT2',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'CLOSING',
  'NEW_SYN_RECV',
] as const;

export type TcpState = (typeof TCP_STATES)[number];

/** What the kernel says about a TCP connection (getsockopt TCP_INFO). */
export interface TcpInfo {
  state: TcpState;
  /** Bytes the peer acknowledged (sent and delivered), and bytes received in order. */
  bytesAcked: number;
  bytesReceived: number;
  /** Bytes sent but not yet acknowledged, as segments (tcpi_unacked), and written but not sent. */
  unackedSegments: number;
  notSentBytes: number;
  /** Smoothed round-trip time, microseconds. */
  rttUs: number;
  /** Milliseconds since data was last sent / received. */
  lastDataSentMs: number;
  lastDataRecvMs: number;
}

const info = new Uint8Array(TCP_INFO_SIZE);
const infoView = new DataView(info.buffer);
const lenScratch = new Uint32Array(1);
const intScratch = new Int32Array(1);
const peekByte = new Uint8Array(1);
const addrScratch = new Uint8Array(SOCKADDR_STORAGE_SIZE);
const addrView = new DataView(addrScratch.buffer);
/** sockaddr with sa_family AF_UNSPEC: connect() with it dissolves a TCP connection (RST). */
const unspec = new Uint8Array(16);
new DataView(unspec.buffer).setUint16(0, AF_UNSPEC, LE);

/** TCP_INFO of a TCP socket; throws with the errno (EBADF, ENOTSOCK, EOPNOTSUPP...). */
export function tcpInfo(fd: number): TcpInfo {
  validateFd(fd);
  info.fill(0);
  lenScratch[0] = TCP_INFO_SIZE;
  check('getsockopt', () => libc.getsockopt(fd, IPPROTO_TCP, TCP_INFO, info, lenScratch), 'TCP_INFO');
  if ((lenScratch[0] ?? 0) < TCPI_MIN_SIZE) {
    throw ferryError('ERR_FERRY_SYS', `TCP_INFO gave ${lenScratch[0]} bytes, fewer than ${TCPI_MIN_SIZE}`);
  }
  return {
    state: TCP_STATES[info[TCPI_STATE] ?? 0] ?? 'UNKNOWN',
    bytesAcked: Number(infoView.getBigUint64(TCPI_BYTES_ACKED, LE)),
    bytesReceived: Number(infoView.getBigUint64(TCPI_BYTES_RECEIVED, LE)),
    unackedSegments: infoView.getUint32(TCPI_UNACKED, LE),
    notSentBytes: infoView.getUint32(TCPI_NOTSENT_BYTES, LE),
    rttUs: infoView.getUint32(TCPI_RTT, LE),
    lastDataSentMs: infoView.getUint32(TCPI_LAST_DATA_SENT, LE),
    lastDataRecvMs: infoView.getUint32(TCPI_LAST_DATA_RECV, LE),
  };
}

function intOption(fd: number, name: number, what: string): number {
  lenScratch[0] = 4;
  check('getsockopt', () => libc.getsockopt(fd, SOL_SOCKET, name, intScratch, lenScratch), what);
  return intScratch[0] ?? -1;
}

/** True when fd is an IPv4 or IPv6 TCP stream socket (whatever its state). Throws on EBADF. */
export function isTcpSocket(fd: number): boolean {
  validateFd(fd);
  const domain = intOption(fd, SO_DOMAIN, 'SO_DOMAIN');
  return (
    (domain === AF_INET || domain === AF_INET6) &&
    intOption(fd, SO_TYPE, 'SO_TYPE') === SOCK_STREAM &&
    intOption(fd, SO_PROTOCOL, 'SO_PROTOCOL') === IPPROTO_TCP
  );
}

export interface InetAddress {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

function decodeInet(len: number): InetAddress | null {
  const family = addrView.getUint16(0, LE);
  const port = addrView.getUint16(2, false);
  if (family === AF_INET && len >= 16) {
    return { address: Array.from(addrScratch.subarray(4, 8)).join('.'), port, family: 'IPv4' };
  }
  if (family === AF_INET6 && len >= 24) {
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(addrView.getUint16(8 + i * 2, false).toString(16));
    const text = groups.join(':');
    // IPv4-mapped (::ffff:a.b.c.d) is shown as IPv4, as node shows it for dual-stack sockets.
    if (text.startsWith('0:0:0:0:0:ffff:')) {
      return { address: Array.from(addrScratch.subarray(20, 24)).join('.'), port, family: 'IPv4' };
    }
    return { address: text, port, family: 'IPv6' };
  }
  return null;
}

/** The local and peer addresses of a connected TCP socket (ENOTCONN when it has no peer). */
export function tcpAddresses(fd: number): { local: InetAddress; remote: InetAddress } {
  validateFd(fd);
  lenScratch[0] = SOCKADDR_STORAGE_SIZE;
  check('getsockname', () => libc.getsockname(fd, addrScratch, lenScratch));
  const local = decodeInet(lenScratch[0] ?? 0);
  lenScratch[0] = SOCKADDR_STORAGE_SIZE;
  check('getpeername', () => libc.getpeername(fd, addrScratch, lenScratch));
  const remote = decodeInet(lenScratch[0] ?? 0);
  if (!local || !remote) throw ferryError('ERR_INVALID_ARG_VALUE', 'not an IPv4 or IPv6 socket');
  return { local, remote };
}

/**
 * Resets a TCP connection for every holder of the socket: connect() with AF_UNSPEC makes the
 * kernel send an RST (when the state calls for one) and drop the connection, and whoever else
 * holds the socket (an app it was handed to) sees ECONNRESET. close() could not: another
 * descriptor keeps the socket alive.
 */
export function tcpDisconnect(fd: number): void {
  validateFd(fd);
  check('connect', () => libc.connect(fd, unspec, unspec.length), 'AF_UNSPEC');
}

/**
 * What a TCP socket's next read would say, asked with a read that takes nothing (MSG_PEEK,
 * MSG_DONTWAIT): 'data' (bytes are queued), 'open' (nothing yet), 'fin' (end of stream: the
 * peer's FIN came, whatever followed it), or the POSIX name of the error an RST left
 * ('ECONNRESET'). The kernel hands that error out once: the call consumes it, and later reads
 * say 'fin'.
 *
 * Why: node 20's libuv (1.46) takes a short read that comes with POLLHUP for end of stream, and an
 * RST that arrives behind unread bytes raises POLLHUP; so a node:net socket reports such a reset
 * as 'end', as if a FIN had come, and the error stays in the kernel. Asked after 'end', the
 * kernel tells the two apart.
 */
export function tcpReadEnd(fd: number): 'data' | 'open' | 'fin' | `E${string}` {
  validateFd(fd);
  const r = retryEintr(() => libc.recv(fd, peekByte, 1, MSG_PEEK | MSG_DONTWAIT));
  if (r > 0) return 'data';
  if (r === 0) return 'fin';
  if (r === -EAGAIN) return 'open';
  // EBADF, ENOTSOCK: not an answer about the connection; the caller's descriptor is wrong.
  if (r === -constants.errno.EBADF || r === -constants.errno.ENOTSOCK) throw sysError('recv', -r);
  return errnoName(-r) as `E${string}`;
}

/** The 16 bytes of a textual IPv6 address (no zone), or null when it is not one. */
function ipv6Bytes(text: string): Uint8Array | null {
  if (!isIPv6(text) || text.includes('%')) return null;
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  const groups = (part: string): number[] | null => {
    if (part === '') return [];
    const words: number[] = [];
    const items = part.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] ?? '';
      if (i === items.length - 1 && item.includes('.')) {
        // An IPv4 tail (::ffff:1.2.3.4): two 16-bit words.
        const b = item.split('.').map(Number);
        words.push(((b[0] ?? 0) << 8) | (b[1] ?? 0), ((b[2] ?? 0) << 8) | (b[3] ?? 0));
      } else words.push(Number.parseInt(item, 16));
    }
    return words.every((w) => Number.isInteger(w) && w >= 0 && w <= 0xffff) ? words : null;
  };
  const gap = text.indexOf('::');
  const head = groups(gap < 0 ? text : text.slice(0, gap));
  const tail = gap < 0 ? [] : groups(text.slice(gap + 2));
  if (!head || !tail || head.length + tail.length > 8) return null;
  for (const [i, w] of head.entries()) view.setUint16(i * 2, w, false);
  for (const [i, w] of tail.entries()) view.setUint16((8 - tail.length + i) * 2, w, false);
  return out;
}

const connectAddr = new Uint8Array(SOCKADDR_IN6_SIZE);
const connectView = new DataView(connectAddr.buffer);

/** Encodes a numeric address and port as sockaddr_in or sockaddr_in6; returns its length. */
function encodeInet(address: string, port: number): number {
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `port must be 1-65535, got ${String(port)}`);
  }
  connectAddr.fill(0);
  connectView.setUint16(2, port, false);
  if (isIPv4(address)) {
    connectView.setUint16(0, AF_INET, LE);
    connectAddr.set(address.split('.').map(Number), 4);
    return SOCKADDR_IN_SIZE;
  }
  const v6 = ipv6Bytes(address);
  if (!v6) throw ferryError('ERR_INVALID_ARG_VALUE', `'${address}' is not a numeric IPv4 or IPv6 address`);
  connectView.setUint16(0, AF_INET6, LE);
  connectAddr.set(v6, 8);
  return SOCKADDR_IN6_SIZE;
}

/** True when `address` is one tcpConnect takes: a numeric IPv4 or IPv6 address without a zone. */
export function isNumericAddress(address: string): boolean {
  return isIPv4(address) || ipv6Bytes(address) !== null;
}

/**
 * A non-blocking, close-on-exec TCP socket for `address`'s family, with TCP_NODELAY set (a handed
 * socket does not delay small writes, as fifos do not; the app may turn Nagle back on).
 */
export function tcpSocket(address: string): number {
  const family = isIPv4(address) ? AF_INET : AF_INET6;
  const fd = check('socket', () =>
    libc.socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP),
  );
  try {
    setTcpNoDelay(fd, true);
  } catch (err) {
    libc.close(fd);
    throw err;
  }
  return fd;
}

/** Whether TCP_NODELAY is on (Nagle off). */
export function tcpNoDelay(fd: number): boolean {
  validateFd(fd);
  lenScratch[0] = 4;
  check(
    'getsockopt',
    () => libc.getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intScratch, lenScratch),
    'TCP_NODELAY',
  );
  return intScratch[0] !== 0;
}

export function setTcpNoDelay(fd: number, on: boolean): void {
  validateFd(fd);
  intScratch[0] = on ? 1 : 0;
  check('setsockopt', () => libc.setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, intScratch, 4), 'TCP_NODELAY');
}

const { EINPROGRESS, EALREADY, EISCONN } = constants.errno;

/**
 * Starts connecting a socket from tcpSocket(); true when it is connected already (on loopback and
 * veth the kernel completes the handshake before connect() returns), false when the handshake is
 * still under way (wait for the socket to be writable, then ask tcpConnected). Throws the
 * failure (ECONNREFUSED, ENETUNREACH, ...).
 */
export function tcpConnect(fd: number, address: string, port: number): boolean {
  validateFd(fd);
  const len = encodeInet(address, port);
  const r = retryEintr(() => libc.connect(fd, connectAddr, len));
  if (r === 0) return true;
  // EINTR cannot stop a connect under way: the retry saw EALREADY; both mean "in progress".
  if (r !== -EINPROGRESS && r !== -EALREADY) throw sysError('connect', -r, `${address}:${port}`);
  return tcpConnected(fd, address, port);
}

/**
 * The outcome of a connect under way, asked by connecting again (the kernel answers 0 once
 * connected, EALREADY while the handshake runs, or the failure): true connected, false not yet.
 */
export function tcpConnected(fd: number, address: string, port: number): boolean {
  validateFd(fd);
  const len = encodeInet(address, port);
  const r = retryEintr(() => libc.connect(fd, connectAddr, len));
  if (r === 0 || r === -EISCONN) return true;
  if (r === -EALREADY || r === -EINPROGRESS) return false;
  throw sysError('connect', -r, `${address}:${port}`);
}

/** The local address of a bound or connected TCP socket (getsockname). */
export function tcpLocalAddress(fd: number): InetAddress {
  validateFd(fd);
  lenScratch[0] = SOCKADDR_STORAGE_SIZE;
  check('getsockname', () => libc.getsockname(fd, addrScratch, lenScratch));
  const local = decodeInet(lenScratch[0] ?? 0);
  if (!local) throw ferryError('ERR_INVALID_ARG_VALUE', 'not an IPv4 or IPv6 socket');
  return local;
}
