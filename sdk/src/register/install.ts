/**
 * Transparent mode: node:net's connect (net.connect, net.createConnection, new Socket().connect,
 * hence node:http's Agent, undici and fetch, ws, drivers) and net.Server#listen (hence node:http,
 * https, express, fastify) go through Ferry for the addresses the rules name; the rest stays on
 * the kernel. Only two prototype methods are replaced (plus tls.connect, which gets an
 * intercepted socket to run TLS over, and TLSSocket's _init, see below); everything built on
 * them follows.
 *
 * - A matching connect turns the net.Socket into a FerryNetSocket (its prototype changes; it is
 *   still a net.Socket) connected through ferryd: cut-through to a Ferry listener, a kernel TCP
 *   connection made by ferryd otherwise.
 * - A matching listen registers a Ferry listener (ferryd also binds the kernel port, so plain
 *   programs still connect) and emits each session as 'connection' on the same net.Server.
 * - ferryd unreachable: the kernel does the connect or listen, with one warning; or, with
 *   fallback 'fail', the connect or listen fails with ERR_FERRY_DAEMON_UNREACHABLE.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import * as net from 'node:net';
import type * as tlsTypes from 'node:tls';
import type { AttachmentOptions } from '../api/options.js';
import { listenThroughFerry } from '../http/listen.js';
import { connectThroughFerry, FerryNetSocket, innerSocket } from '../http/net-socket.js';
import type { RegisterConfig } from './config.js';

// The CommonJS exports object: the ESM namespace of node:tls is read-only.
const tls = createRequire(import.meta.url)('node:tls') as typeof tlsTypes;

type ConnectArgs = unknown[];
type NetConnectOptions = {
  host?: string | null;
  port?: number | string | null;
  path?: string;
  timeout?: number;
};

/** What a listen() call asks for, when it names a TCP port (null: a path, handle or fd). */
interface ListenTarget {
  host: string | undefined;
  port: number;
  cb: (() => void) | undefined;
  /** The arguments without the callback, for the kernel's listen if it comes to that. */
  rest: unknown[];
}

const kInstalled = Symbol.for('ferry.register.installed');

export interface Installed {
  uninstall(): void;
}

/** Formats a Ferry URI for a listen (0.0.0.0 for the wildcard; port 0 lets ferryd pick). */
function listenUri(host: string | undefined, port: number): string {
  const h = host === undefined || host === '' || host === '::' ? '0.0.0.0' : host;
  return `tcp://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

function connectUri(host: string, port: number): string {
  const h = host.startsWith('[') ? host.slice(1, -1) : host;
  return `tcp://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

function validPort(p: unknown): number | null {
  const n = typeof p === 'string' && p.trim() !== '' ? Number(p) : p;
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 65535 ? n : null;
}

/** listen()'s TCP forms: (port, host?, backlog?, cb?), ({ port, host }, cb?), (cb?) and (). */
export function parseListenArgs(args: unknown[]): ListenTarget | null {
  const last = args[args.length - 1];
  const cb = typeof last === 'function' ? (last as () => void) : undefined;
  const rest = cb ? args.slice(0, -1) : args.slice();
  const first = rest[0];
  if (first === undefined || first === null) return { host: undefined, port: 0, cb, rest };
  if (typeof first === 'object') {
    const o = first as Record<string, unknown>;
    // Truthy, as node tests them: http's agent passes `path: null` for TCP.
    if (o['path'] || o['handle'] || o['_handle'] || (o['fd'] !== undefined && o['fd'] !== null)) {
      return null;
    }
    const port = o['port'] === undefined ? 0 : validPort(o['port']);
    if (port === null) return null;
    const host = typeof o['host'] === 'string' ? o['host'] : undefined;
    return { host, port, cb, rest };
  }
  const port = validPort(first);
  if (port === null) return null; // a pipe path, or a port node will refuse itself
  const host = typeof rest[1] === 'string' ? rest[1] : undefined;
  return { host, port, cb, rest };
}

/** The TCP target of connect()'s arguments, as net normalizes them (null: a path or unusable). */
function connectTarget(args: ConnectArgs): { opts: NetConnectOptions; cb: (() => void) | undefined } {
  // net.connect hands Socket#connect the array it already normalized.
  const normalized = Array.isArray(args[0])
    ? (args[0] as unknown[])
    : (net as unknown as { _normalizeArgs(a: unknown[]): unknown[] })._normalizeArgs(args);
  const opts = (normalized[0] ?? {}) as NetConnectOptions;
  const cb = typeof normalized[1] === 'function' ? (normalized[1] as () => void) : undefined;
  return { opts, cb };
}

export function install(config: RegisterConfig, ferry: AttachmentOptions = {}): Installed {
  const g = globalThis as Record<symbol, unknown>;
  if (g[kInstalled]) return g[kInstalled] as Installed;
  const { rules, fallback } = config;
  const origConnect = net.Socket.prototype.connect;
  const origListen = net.Server.prototype.listen;
  const origTlsConnect = tls.connect;
  let warned = false;

  /** ferryd is away: true (and one warning) when the kernel is to take over. */
  const fallBack = (err: Error & { code?: string }, what: string): boolean => {
    if (err.code !== 'ERR_FERRY_DAEMON_UNREACHABLE' || fallback !== 'kernel') return false;
    if (!warned) {
      warned = true;
      process.emitWarning(
        `ferryd is not reachable (${err.message}); ${what} and later intercepted connections use the kernel. Set FERRY_INTERCEPT_FALLBACK=fail to fail instead.`,
        { code: 'FERRY_INTERCEPT_FALLBACK' },
      );
    }
    return true;
  };

  const connect = function (this: net.Socket, ...args: ConnectArgs): net.Socket {
    // Only plain net.Sockets: a subclass (tlsTypes.TLSSocket, ...) keeps its own handle logic.
    const proto = Object.getPrototypeOf(this);
    if ((proto !== net.Socket.prototype && proto !== FerryNetSocket.prototype) || this.destroyed) {
      return origConnect.apply(this, args as never);
    }
    const { opts, cb } = connectTarget(args);
    const port = validPort(opts.port);
    const host = opts.host ?? 'localhost';
    if (opts.path || port === null || port === 0 || !rules.matchConnect(host, port)) {
      return origConnect.apply(this, args as never);
    }
    if (cb) this.once('connect', cb);
    (this as net.Socket & { _host: string })._host = host;
    return connectThroughFerry(this, connectUri(host, port), ferry, (err) => {
      if (!fallBack(err, `connect to ${host}:${port}`)) return false;
      Object.setPrototypeOf(this, net.Socket.prototype);
      origConnect.call(this, opts as never);
      return true;
    });
  };

  const listen = function (this: net.Server, ...args: unknown[]): net.Server {
    const t = parseListenArgs(args);
    if (!t || this.listening || !rules.matchListen(t.host, t.port))
      return origListen.apply(this, args as never);
    return listenThroughFerry(this, listenUri(t.host, t.port), ferry, t.cb, (err) => {
      if (!fallBack(err, `listen on ${t.host ?? '*'}:${t.port}`)) return false;
      origListen.apply(this, t.rest as never);
      return true;
    });
  };

  // tls.connect makes a TLSSocket over its own TCP handle; for an intercepted address it is
  // given an intercepted net.Socket instead and runs TLS over it (end to end, as on the kernel).
  const tlsConnect = function (this: unknown, ...args: unknown[]): tlsTypes.TLSSocket {
    const first = args[0];
    let o: tlsTypes.ConnectionOptions;
    let cb: (() => void) | undefined;
    if (typeof first === 'object' && first !== null) {
      o = first as tlsTypes.ConnectionOptions;
      cb = typeof args[1] === 'function' ? (args[1] as () => void) : undefined;
    } else {
      const host = typeof args[1] === 'string' ? args[1] : undefined;
      const more = args.find((a, i) => i > 0 && typeof a === 'object' && a !== null) as
        | tlsTypes.ConnectionOptions
        | undefined;
      o = { ...more, port: Number(first), ...(host !== undefined ? { host } : {}) };
      cb = args.find((a) => typeof a === 'function') as (() => void) | undefined;
    }
    const port = validPort(o.port);
    const host = o.host ?? 'localhost';
    if (o.socket || o.path || port === null || port === 0 || !rules.matchConnect(host, port)) {
      return (origTlsConnect as (...a: unknown[]) => tlsTypes.TLSSocket).apply(this, args);
    }
    const socket = net.connect({ host, port });
    const servername = o.servername ?? (net.isIP(host) ? undefined : host);
    const opts: tlsTypes.ConnectionOptions = { ...o, socket, host, ...(servername ? { servername } : {}) };
    return cb ? origTlsConnect(opts, cb) : origTlsConnect(opts);
  };

  // node:tls takes a net.Socket without a kernel handle for one still connecting and holds the
  // TLSSocket's writes until it emits 'connect'. A Ferry socket that is already connected (an
  // accepted one, or STARTTLS over a connected one, as database drivers do) would wait forever.
  const tlsProto = tls.TLSSocket.prototype as unknown as { _init(socket: unknown, wrap: unknown): void };
  const origInit = tlsProto._init;
  tlsProto._init = function (this: tlsTypes.TLSSocket, socket: unknown, wrap: unknown): void {
    origInit.call(this, socket, wrap);
    if (!(socket instanceof FerryNetSocket)) return;
    // The TLSSocket now owns half-close (it copied allowHalfOpen). The raw socket under it must
    // not end its own writing on the peer's FIN: TLS records still being written would fail with
    // EPIPE, where over a kernel socket TLS writes to the handle directly.
    socket.allowHalfOpen = true;
    if (!socket.connecting && innerSocket(socket)) (this as { connecting: boolean }).connecting = false;
  };

  net.Socket.prototype.connect = connect as typeof net.Socket.prototype.connect;
  net.Server.prototype.listen = listen as typeof net.Server.prototype.listen;
  (tls as { connect: typeof tls.connect }).connect = tlsConnect as typeof tls.connect;
  // `import { connect } from 'node:tls'` sees the replacement too.
  syncBuiltinESMExports();
  const installed: Installed = {
    uninstall() {
      net.Socket.prototype.connect = origConnect;
      net.Server.prototype.listen = origListen;
      (tls as { connect: typeof tls.connect }).connect = origTlsConnect;
      tlsProto._init = origInit;
      syncBuiltinESMExports();
      delete g[kInstalled];
    },
  };
  g[kInstalled] = installed;
  return installed;
}
