// Kernel TCP sockets that ferryd hands to apps (handoff mode): what ferryd may ask the kernel about
// a socket it keeps a duplicate of (TCP_INFO, addresses), and how it resets one the app also holds.

import { ferryError } from '../errors.js';
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  IPPROTO_TCP,
  LE,
  SO_DOMAIN,
  SO_PROTOCOL,
  SO_TYPE,
  SOCK_STREAM,
  SOCKADDR_STORAGE_SIZE,
  SOL_SOCKET,
  TCP_INFO,
  TCP_INFO_SIZE,
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
import { check } from './sys-error.js';
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
