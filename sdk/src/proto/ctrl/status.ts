// The one numeric mapping between control-wire status values (`st`) and Ferry error codes.
import { ERROR_MESSAGES, type ErrorCode, FerryError, ferryError } from '../../errors.js';

/** `st` of a successful reply. */
export const STATUS_OK = 0;

/**
 * Wire status of every error code. Numbers never change once shipped.
 *
 * POSIX codes travel as minus their Linux errno (the asm-generic numbers, as x86-64 and arm64 use;
 * fixed on the wire whatever the host), as VCL does, so a client in any language can read them with
 * strerror. Ferry codes live below -1000, in blocks of 100 per area so each can grow: arguments
 * -1000.., native boundary -1100.., shared memory -1200.., control protocol -1300.., daemon and
 * attachment -1400.., sessions and sockets -1500.., TLS -1600.., memif -1700.., messages -1800... A new code takes the
 * next free number in its area.
 *
 * The table is total (the mapped type makes a code without a number a compile error), so statusOf
 * never fails and a daemon can forward any FerryError it caught.
 */
export const WIRE_STATUS = {
  EPERM: -1,
  ENOENT: -2,
  ESRCH: -3,
  EINTR: -4,
  EBADF: -9,
  EAGAIN: -11,
  ENOMEM: -12,
  EACCES: -13,
  EEXIST: -17,
  EINVAL: -22,
  EMFILE: -24,
  EPIPE: -32,
  ENOSYS: -38,
  ENOTSOCK: -88,
  EMSGSIZE: -90,
  EADDRINUSE: -98,
  ECONNRESET: -104,
  ENOBUFS: -105,
  ENOTCONN: -107,
  ETIMEDOUT: -110,
  ECONNREFUSED: -111,
  EHOSTUNREACH: -113,

  ERR_INVALID_ARG_TYPE: -1000,
  ERR_INVALID_ARG_VALUE: -1001,
  ERR_OUT_OF_RANGE: -1002,

  ERR_FERRY_SYS: -1100,
  ERR_FERRY_FD_CTRUNC: -1101,
  ERR_FERRY_FD_UNEXPECTED: -1102,
  ERR_FERRY_MAPPING_RELEASED: -1103,

  ERR_FERRY_SHM_BAD_LAYOUT: -1200,
  ERR_FERRY_SHM_NOT_SEALED: -1201,
  ERR_FERRY_SHM_NO_SPACE: -1202,
  ERR_FERRY_FIFO_CORRUPT: -1203,
  ERR_FERRY_QUEUE_CORRUPT: -1204,

  ERR_FERRY_PROTO_MALFORMED: -1300,
  ERR_FERRY_PROTO_TOO_LARGE: -1301,
  ERR_FERRY_PROTO_UNKNOWN_MSG: -1302,
  ERR_FERRY_PROTO_UNKNOWN_STATUS: -1303,
  ERR_FERRY_PROTO_VERSION: -1304,

  ERR_FERRY_DAEMON_UNREACHABLE: -1400,
  ERR_FERRY_DAEMON_LOST: -1401,
  ERR_FERRY_NOT_ATTACHED: -1402,
  ERR_FERRY_LIMIT: -1403,
  ERR_FERRY_DENIED: -1404,

  ERR_FERRY_BAD_URI: -1500,
  ERR_FERRY_SESSION_NOT_FOUND: -1501,
  ERR_FERRY_SESSION_STATE: -1502,
  ERR_FERRY_SOCKET_CLOSED: -1503,
  ERR_FERRY_SERVER_LISTENING: -1504,
  ERR_FERRY_NOT_SUPPORTED: -1505,
  ERR_FERRY_VIEW_RELEASED: -1520,

  ERR_FERRY_TLS_CERT: -1600,
  ERR_FERRY_TLS_HANDSHAKE: -1601,
  ERR_FERRY_TLS_CONFIG: -1602,

  ERR_FERRY_MEMIF_PEER_DISCONNECT: -1700,
  ERR_FERRY_MEMIF_PEER_GONE: -1701,
  ERR_FERRY_MEMIF_PROTOCOL: -1702,
  ERR_FERRY_MEMIF_BAD_MEMORY: -1703,
  ERR_FERRY_MEMIF_BAD_RING: -1704,
  ERR_FERRY_MEMIF_CLOSED: -1705,
  ERR_FERRY_MEMIF_REJECTED: -1706,

  ERR_FERRY_REMOTE: -1800,
  ERR_FERRY_MSG_MALFORMED: -1801,
  ERR_FERRY_MSG_INCOMPLETE: -1802,
  ERR_FERRY_CHANNEL_CLOSED: -1803,
  ERR_FERRY_LOAN_STATE: -1804,
  ERR_FERRY_SLOW_SUBSCRIBER: -1805,
} as const satisfies { readonly [C in ErrorCode]: number };

const CODE_OF_STATUS: ReadonlyMap<number, ErrorCode> = new Map(
  (Object.keys(WIRE_STATUS) as ErrorCode[]).map((code) => [WIRE_STATUS[code], code]),
);

/** The wire status for an error code (always negative). */
export function statusOf(code: ErrorCode): number {
  return WIRE_STATUS[code];
}

/**
 * The error code for a failure status. A negative status this version does not know (a newer peer
 * added a code) maps to ERR_FERRY_PROTO_UNKNOWN_STATUS, not to MALFORMED: the reply itself was well
 * formed, only its reason is unknown. `st >= 0` is not a failure: passing it is a programmer error.
 */
export function codeOf(st: number): ErrorCode {
  if (!Number.isSafeInteger(st) || st >= 0) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `wire status must be a negative integer, got ${String(st)}`);
  }
  return CODE_OF_STATUS.get(st) ?? 'ERR_FERRY_PROTO_UNKNOWN_STATUS';
}

/**
 * The FerryError for a failed reply. `err` is the peer's full message and is kept verbatim (it
 * already names the failure); an empty `err` falls back to the table's message.
 */
export function errorFromWire(st: number, err: string): FerryError {
  const code = codeOf(st);
  const known = CODE_OF_STATUS.has(st);
  const base = known ? ERROR_MESSAGES[code] : `${ERROR_MESSAGES[code]} (${st})`;
  const message = err === '' ? base : known ? err : `${base}: ${err}`;
  return new FerryError(code, message, { wireStatus: st });
}
