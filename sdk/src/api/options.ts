/** Public options of the socket API, their defaults and the FERRY_* variables behind them. */
import { join } from 'node:path';
import { ferryError } from '../errors.js';
import type { NotifyMode, TlsOptions } from '../proto/ctrl/messages.js';
import { ferryEnv } from './ferry-env.js';

export interface AttachmentOptions {
  /** ferryd's control socket: a path or '@name' (abstract). Default: $FERRY_SOCKET, else
   *  $XDG_RUNTIME_DIR/ferry/ferryd.sock, else /run/ferry/ferryd.sock. */
  socket?: string;
  /** How this process waits for data: 'interrupt' (sleep on the doorbell), 'poll' (spin on
   *  shared memory, lowest latency, burns a core) or 'adaptive' (default). $FERRY_MODE. */
  mode?: NotifyMode;
  /** App name shown by `ferry show apps`. */
  name?: string;
  /** Namespace to attach to: its listeners are the ones this app reaches. Default:
   *  $FERRY_NAMESPACE, else 'default'. */
  namespace?: string;
  /** The namespace's token, when ferryd's configuration gives it one. Default: $FERRY_TOKEN.
   *  Never logged by the SDK or ferryd. */
  token?: string;
  /** After losing ferryd, keep trying to reattach for this long (ms): Infinity (default) never
   *  gives up, 0 does not reattach. $FERRY_REATTACH_TIMEOUT_MS. The first use of a daemon socket
   *  in a process decides (one attachment per socket). */
  reattachTimeoutMs?: number;
}

/**
 * net.Socket's `onread`: received bytes are copied straight from the fifo into `buffer` (one
 * buffer reused, or a function giving the buffer for each read) and handed to `callback`, with no
 * Buffer allocated per read and no 'data' events; 'end', 'error' and 'close' come as usual.
 * `callback` returning false pauses the socket until resume(). The bytes are only valid during
 * the callback when the buffer is reused.
 */
export interface OnReadOptions {
  buffer: Uint8Array | (() => Uint8Array);
  callback: (bytesWritten: number, buf: Uint8Array) => boolean | undefined;
}

export interface ConnectOptions extends AttachmentOptions {
  uri?: string;
  host?: string;
  port?: number;
  /** Fifo sizes in bytes for this session (rounded up to a power of two by ferryd). */
  rxFifoSize?: number;
  txFifoSize?: number;
  /** Connect timeout in ms: no session by then fails with ETIMEDOUT. Default 10000. */
  connectTimeout?: number;
  /** Idle timeout in ms once connected, as net.connect's `timeout`: socket.setTimeout(timeout). */
  timeout?: number;
  allowHalfOpen?: boolean;
  /** For `tls://` URIs: how ferryd verifies the server. */
  tls?: TlsConnectOptions;
  /** Read into a buffer of the caller's (net.Socket's `onread`). */
  onread?: OnReadOptions;
  /** `tcp://` to the network: ferryd hands the connected kernel socket to the app (true) or
   *  relays its bytes through fifos (false). Default: $FERRY_TCP_MODE ('handoff' | 'relay'). */
  handoff?: boolean;
  /** Aborting it destroys the socket with an AbortError (code ABORT_ERR), as in net.connect. */
  signal?: AbortSignal;
  /** Accepted as net.connect's; fifos have no Nagle and no keep-alive to tune. */
  noDelay?: boolean;
  keepAlive?: boolean;
  keepAliveInitialDelay?: number;
}

export interface ServerOptions extends AttachmentOptions {
  allowHalfOpen?: boolean;
  /** As net.createServer's: accepted sockets start paused and read nothing until resume(). */
  pauseOnConnect?: boolean;
  /** Every accepted socket reads with this `onread` (net.Server has no such option; Ferry does). */
  onread?: OnReadOptions;
  /** For `tls://` listens: the certificate ferryd serves (a listen's own `tls` wins). */
  tls?: TlsServerOptions;
  /** `tcp://`: connections from the network arrive as kernel sockets ferryd hands over (true),
   *  or relayed through fifos (false). Default: $FERRY_TCP_MODE ('handoff' | 'relay'). */
  handoff?: boolean;
}

export interface ListenOptions {
  uri?: string;
  host?: string;
  port?: number;
  /** For `tls://` listens: the certificate ferryd serves. */
  tls?: TlsServerOptions;
  /** `tcp://`: as ServerOptions' `handoff`, for this listen. */
  handoff?: boolean;
}

/** TLS that ferryd terminates for a `tls://` listener. PEM text; the app reads its own files. */
export interface TlsServerOptions {
  /** Certificate chain, leaf first. Default: the one ferryd was started with (--tls-cert). */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Local apps may reach this listener without TLS (cut-through). Default true: the bytes never
   *  leave the host's shared memory. false sends them through TLS on loopback as well. */
  cutThrough?: boolean;
}

/** TLS that ferryd runs for a `tls://` connect, as node:tls's connect options. */
export interface TlsConnectOptions {
  /** CA certificates to trust instead of the system's. */
  ca?: string | Buffer;
  /** Name to verify (and send as SNI). Default: the URI's host. */
  servername?: string;
  /** Refuse a server whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** A client certificate and key. */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** Allow cut-through to a local listener (only if its certificate verifies). Default true. */
  cutThrough?: boolean;
}

/** TLS options as the control protocol carries them (PEM as text; absent keys left out). */
export function tlsWire(o: TlsServerOptions & TlsConnectOptions): TlsOptions {
  const out: TlsOptions = {};
  const text = (v: string | Buffer) => (typeof v === 'string' ? v : v.toString('utf8'));
  if (o.cert !== undefined) out.cert = text(o.cert);
  if (o.key !== undefined) out.key = text(o.key);
  if (o.ca !== undefined) out.ca = text(o.ca);
  if (o.servername !== undefined) out.servername = o.servername;
  if (o.rejectUnauthorized !== undefined) out.rejectUnauthorized = o.rejectUnauthorized;
  if (o.cutThrough !== undefined) out.cutThrough = o.cutThrough;
  return out;
}

const MODES: readonly NotifyMode[] = ['interrupt', 'poll', 'adaptive'];

/** The last $XDG_RUNTIME_DIR joined and its socket path (every connect asks; it rarely changes). */
let lastRuntimeDir = '';
let lastRuntimeSocket = '';

/**
 * The daemon socket: the option, else $FERRY_SOCKET, else under $XDG_RUNTIME_DIR. The environment
 * is read once per loop turn (ferry-env.ts: an app or test may change it between connects); the
 * path join is remembered for the same $XDG_RUNTIME_DIR string.
 */
export function resolveSocketPath(opt?: string): string {
  if (opt) return opt;
  const env = ferryEnv();
  if (env.socket) return env.socket;
  const rt = env.runtimeDir;
  if (!rt) return '/run/ferry/ferryd.sock';
  if (rt !== lastRuntimeDir) {
    lastRuntimeSocket = join(rt, 'ferry', 'ferryd.sock');
    lastRuntimeDir = rt;
  }
  return lastRuntimeSocket;
}

export function resolveMode(opt?: NotifyMode): NotifyMode {
  const m = opt ?? (ferryEnv().mode as NotifyMode | undefined) ?? 'adaptive';
  if (!MODES.includes(m)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `mode must be one of ${MODES.join(', ')}, got '${String(m)}'`);
  }
  return m;
}

const TCP_MODES = ['handoff', 'relay'] as const;
/** The mode when neither the option nor $FERRY_TCP_MODE says (see docs/internals.md, TCP handoff). */
export const DEFAULT_TCP_MODE: (typeof TCP_MODES)[number] = 'relay';

/** Whether a `tcp://` session asks for handoff: the option, else $FERRY_TCP_MODE, else the default. */
export function resolveHandoff(opt: boolean | undefined, uri: string): boolean {
  if (!uri.startsWith('tcp://')) return false;
  if (opt !== undefined) return opt;
  const env = ferryEnv().tcpMode || DEFAULT_TCP_MODE;
  if (!(TCP_MODES as readonly string[]).includes(env)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `FERRY_TCP_MODE must be 'handoff' or 'relay', got '${env}'`);
  }
  return env === 'handoff';
}

export function resolveReattachTimeout(opt?: number): number {
  const env = process.env['FERRY_REATTACH_TIMEOUT_MS'];
  const v = opt ?? (env !== undefined && env !== '' ? Number(env) : Number.POSITIVE_INFINITY);
  if (!(v >= 0)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `reattachTimeoutMs must be >= 0, got '${String(v)}'`);
  }
  return v;
}

/** URI from a string, { uri }, or { host, port } (tcp), as net.connect takes host and port. */
export function resolveUri(target: string | { uri?: string; host?: string; port?: number }): string {
  if (typeof target === 'string') return target;
  if (target.uri) return target.uri;
  if (target.port === undefined)
    throw ferryError('ERR_INVALID_ARG_VALUE', 'need a uri, or a port (and host)');
  const host = target.host ?? '127.0.0.1';
  return `tcp://${host.includes(':') ? `[${host}]` : host}:${target.port}`;
}
