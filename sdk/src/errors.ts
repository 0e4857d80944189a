/**
 * The one table of Ferry error codes. Codes never change; messages may.
 *
 * Where a condition has an exact POSIX / node:net meaning the POSIX code is used, so code written
 * for net.Socket keeps working (`if (err.code === 'ECONNREFUSED')`). Everything else is
 * `ERR_FERRY_*`. Match on `err.code`, never on the message. docs/errors.md has a section for every
 * code (a test checks).
 */

const kFerryError = Symbol.for('ferry.error');

export const ERROR_MESSAGES = {
  // POSIX meanings (also produced by sys/ from errno).
  EACCES: 'Permission denied',
  EADDRINUSE: 'Address already in use',
  EAGAIN: 'Resource temporarily unavailable',
  EBADF: 'Bad file descriptor',
  ECONNREFUSED: 'Connection refused',
  ECONNRESET: 'Connection reset by peer',
  EEXIST: 'File exists',
  EHOSTUNREACH: 'No route to host',
  EINTR: 'Interrupted system call',
  EINVAL: 'Invalid argument',
  EMFILE: 'Too many open files',
  EMSGSIZE: 'Message too long',
  ENOBUFS: 'No buffer space available',
  ENOENT: 'No such file or directory',
  ENOMEM: 'Cannot allocate memory',
  ENOSYS: 'Function not implemented',
  ENOTCONN: 'Socket is not connected',
  ENOTSOCK: 'Socket operation on non-socket',
  EPIPE: 'Broken pipe',
  EPERM: 'Operation not permitted',
  ESRCH: 'No such process',
  ETIMEDOUT: 'Operation timed out',
  // Arguments (thrown synchronously, Node core's codes).
  ERR_INVALID_ARG_TYPE: 'Invalid argument type',
  ERR_INVALID_ARG_VALUE: 'Invalid argument value',
  ERR_OUT_OF_RANGE: 'Value out of range',
  // Native boundary.
  ERR_FERRY_SYS: 'System call failed',
  ERR_FERRY_FD_CTRUNC: 'Ancillary data was truncated; file descriptors were lost',
  ERR_FERRY_FD_UNEXPECTED: 'Unexpected file descriptors were received and closed',
  ERR_FERRY_MAPPING_RELEASED: 'The shared-memory mapping has been released',
  // Shared memory.
  ERR_FERRY_SHM_BAD_LAYOUT: 'Shared-memory header is invalid (magic, version or size)',
  ERR_FERRY_SHM_NOT_SEALED: 'Shared-memory file is not sealed against shrinking and growing',
  ERR_FERRY_SHM_NO_SPACE: 'No room left in the shared-memory segment',
  ERR_FERRY_FIFO_CORRUPT: 'Fifo indices in shared memory are inconsistent',
  ERR_FERRY_QUEUE_CORRUPT: 'Event queue in shared memory is inconsistent',
  // Control protocol.
  ERR_FERRY_PROTO_MALFORMED: 'Malformed control message',
  ERR_FERRY_PROTO_TOO_LARGE: 'Control message is larger than allowed',
  ERR_FERRY_PROTO_UNKNOWN_MSG: 'Unknown control message type',
  ERR_FERRY_PROTO_UNKNOWN_STATUS: 'Control reply carries a failure status this version does not know',
  ERR_FERRY_PROTO_VERSION: 'Incompatible control protocol version',
  // Daemon and attachment.
  ERR_FERRY_DAEMON_UNREACHABLE: 'Cannot reach ferryd',
  ERR_FERRY_DAEMON_LOST: 'Connection to ferryd was lost',
  ERR_FERRY_NOT_ATTACHED: 'The app is not attached to ferryd',
  ERR_FERRY_LIMIT: 'A configured limit was reached',
  ERR_FERRY_DENIED: 'Connect denied by a session rule of ferryd',
  // Sessions and sockets.
  ERR_FERRY_BAD_URI: 'Invalid session URI',
  ERR_FERRY_SESSION_NOT_FOUND: 'No such session',
  ERR_FERRY_SESSION_STATE: 'Operation not allowed in the session state',
  ERR_FERRY_SOCKET_CLOSED: 'Socket is closed',
  ERR_FERRY_SERVER_LISTENING: 'Server is already listening',
  ERR_FERRY_NOT_SUPPORTED: 'Not supported',
  ERR_FERRY_VIEW_RELEASED: 'The zero-copy view or reservation was released or invalidated',
  // memif interfaces.
  ERR_FERRY_MEMIF_PEER_DISCONNECT: 'The memif peer disconnected',
  ERR_FERRY_MEMIF_PEER_GONE: 'The memif peer closed the control channel',
  ERR_FERRY_MEMIF_PROTOCOL: 'The memif peer violated the control protocol',
  ERR_FERRY_MEMIF_BAD_MEMORY: 'The memif peer handed over invalid shared memory',
  ERR_FERRY_MEMIF_BAD_RING: 'A memif ring in shared memory is inconsistent',
  ERR_FERRY_MEMIF_CLOSED: 'The memif interface was closed',
  ERR_FERRY_MEMIF_REJECTED: 'A memif client was refused',
  // Messages (@ferry/sdk/messages).
  ERR_FERRY_REMOTE: "The peer's request handler failed",
  ERR_FERRY_MSG_MALFORMED: 'A message frame broke the framing rules',
  ERR_FERRY_MSG_INCOMPLETE: 'A message frame stopped arriving before it was complete',
  ERR_FERRY_CHANNEL_CLOSED: 'The message channel is closed',
  ERR_FERRY_LOAN_STATE: 'The loan was already committed, released or aborted',
  ERR_FERRY_SLOW_SUBSCRIBER: 'The subscriber fell too far behind its topic and was disconnected',
  // TLS (ferryd terminates it; node's own code is kept in the message).
  ERR_FERRY_TLS_CERT: "The peer's TLS certificate was refused",
  ERR_FERRY_TLS_HANDSHAKE: 'TLS handshake failed',
  ERR_FERRY_TLS_CONFIG: 'TLS certificate, key or CA cannot be used',
} as const;

export type ErrorCode = keyof typeof ERROR_MESSAGES;

export interface FerryErrorOptions extends ErrorOptions {
  /** The errno value, for errors that came from a system call. */
  errno?: number;
  /** The system call that failed. */
  syscall?: string;
  /** The numeric status, for errors that crossed the control wire. */
  wireStatus?: number;
}

/** A Ferry error: `code` is stable; `instanceof` works across two loaded copies of the SDK. */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly errno: number | undefined;
  readonly syscall: string | undefined;
  readonly wireStatus: number | undefined;

  constructor(code: ErrorCode, message?: string, options?: FerryErrorOptions) {
    super(message ?? ERROR_MESSAGES[code], options);
    this.name = 'FerryError';
    this.code = code;
    this.errno = options?.errno;
    this.syscall = options?.syscall;
    this.wireStatus = options?.wireStatus;
  }

  get [kFerryError](): true {
    return true;
  }

  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kFerryError] === true;
  }
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ERROR_MESSAGES, s);
}

/** Builds a FerryError with the table's message and an optional detail appended. */
export function ferryError(code: ErrorCode, detail?: string, options?: FerryErrorOptions): FerryError {
  const base = ERROR_MESSAGES[code];
  return new FerryError(code, detail ? `${base}: ${detail}` : base, options);
}
