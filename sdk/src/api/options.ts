/** Public options of the socket API, their defaults and the FERRY_* variables behind them. */
import { join } from 'node:path';
import { ferryError } from '../errors.js';
import type { NotifyMode } from '../proto/ctrl/messages.js';

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

export interface ConnectOptions extends AttachmentOptions {
  uri?: string;
  host?: string;
  port?: number;
  /** Fifo sizes in bytes for this session (rounded up to a power of two by ferryd). */
  rxFifoSize?: number;
  txFifoSize?: number;
  /** Connect timeout in ms (ETIMEDOUT). Default 10000. */
  timeout?: number;
  allowHalfOpen?: boolean;
}

export interface ServerOptions extends AttachmentOptions {
  allowHalfOpen?: boolean;
}

export interface ListenOptions {
  uri?: string;
  host?: string;
  port?: number;
}

const MODES: readonly NotifyMode[] = ['interrupt', 'poll', 'adaptive'];

export function resolveSocketPath(opt?: string): string {
  if (opt) return opt;
  const env = process.env['FERRY_SOCKET'];
  if (env) return env;
  const rt = process.env['XDG_RUNTIME_DIR'];
  return rt ? join(rt, 'ferry', 'ferryd.sock') : '/run/ferry/ferryd.sock';
}

export function resolveMode(opt?: NotifyMode): NotifyMode {
  const m = opt ?? (process.env['FERRY_MODE'] as NotifyMode | undefined) ?? 'adaptive';
  if (!MODES.includes(m)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `mode must be one of ${MODES.join(', ')}, got '${String(m)}'`);
  }
  return m;
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
