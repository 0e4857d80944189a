/**
 * Any net.Server (node:http, node:https, a ws server's http server, a raw net server) accepting
 * Ferry sessions: `listenThroughFerry(server, uri)` registers a Ferry listener and emits each
 * accepted session on `server` as a 'connection' with a FerryNetSocket, exactly where the kernel
 * would have delivered a net.Socket. ferryd's `tcp://` listener also binds the kernel port, so
 * plain programs keep reaching the server (through ferryd).
 *
 * net.Server's own methods keep working because the server is given a stand-in handle:
 * `listening` is true, `address()` answers from the Ferry listener, `close()` unlistens and then
 * emits 'close' once the accepted sockets are gone (net.Server's connection count is kept),
 * `getConnections()` counts them, `maxConnections` refuses the ones over the limit.
 */
import type * as httpTypes from 'node:http';
import { createRequire } from 'node:module';
import type * as net from 'node:net';
import type { ServerOptions } from '../api/options.js';
import type { Server as FerryServer } from '../api/server.js';
import type { Socket as FerrySocket } from '../api/socket.js';
import { attachInner, FerryNetSocket, loadSdk, offerHandle } from './net-socket.js';

/** net.Server members its typings leave out. */
type ServerInternals = net.Server & {
  _handle: unknown;
  _connections: number;
  pauseOnConnect?: boolean;
  allowHalfOpen?: boolean;
  noDelay?: boolean;
};

let HttpServerClass: typeof httpTypes.Server | null = null;

/** node:http's Server, loaded on the first connection (the register hook does not load it at start). */
function httpServerClass(): typeof httpTypes.Server {
  HttpServerClass ??= (createRequire(import.meta.url)('node:http') as typeof httpTypes).Server;
  return HttpServerClass;
}

/** The handle net.Server sees while a Ferry listener serves it. */
class FerryListenHandle {
  readonly ferry: FerryServer;
  constructor(ferry: FerryServer) {
    this.ferry = ferry;
  }
  getsockname(out: Record<string, unknown>): number {
    const a = this.ferry.address();
    if (!a) return -9; // EBADF, as a closed handle answers
    out['address'] = a.address;
    out['family'] = a.family;
    out['port'] = a.port;
    return 0;
  }
  close(): void {
    this.ferry.close();
  }
  // A Ferry listener keeps the process alive through its attachment, not a kernel handle.
  ref(): void {}
  unref(): void {}
}

/** The Ferry listener under a net.Server, or null when the kernel serves it. */
export function ferryListenerOf(server: net.Server): FerryServer | null {
  const h = (server as ServerInternals)._handle;
  return h instanceof FerryListenHandle ? h.ferry : null;
}

/**
 * Listens on `uri` (tcp://host:port; port 0 picks one) through Ferry for `server`. 'listening'
 * (and `cb`) follow once ferryd registered the listener; a failure before that is emitted as
 * 'error' on `server` unless `onListenError` takes it (returns true).
 */
export function listenThroughFerry(
  server: net.Server,
  uri: string,
  options: ServerOptions = {},
  cb?: () => void,
  onListenError?: (err: Error & { code?: string }) => boolean,
): net.Server {
  const s = server as ServerInternals;
  if (cb) server.once('listening', cb);
  loadSdk()
    .then((sdk) => serve(s, sdk.createServer({ ...options, allowHalfOpen: true }), uri, onListenError))
    .catch((err: Error) => {
      if (!onListenError?.(err)) server.emit('error', err);
    });
  return server;
}

/** Registers the Ferry listener and hands its sessions to `s` as FerryNetSockets. */
function serve(
  s: ServerInternals,
  ferry: FerryServer,
  uri: string,
  onListenError?: (err: Error & { code?: string }) => boolean,
): void {
  const server: net.Server = s;
  let listening = false;
  ferry.on('connection', (inner: FerrySocket) => {
    if (s.maxConnections !== undefined && s.maxConnections >= 0 && s._connections >= s.maxConnections) {
      inner.destroy();
      server.emit('drop', {
        localAddress: inner.localAddress,
        localPort: inner.localPort,
        remoteAddress: inner.remoteAddress,
        remotePort: inner.remotePort,
        remoteFamily: inner.remoteFamily,
      });
      return;
    }
    const sock = new FerryNetSocket({ allowHalfOpen: Boolean(s.allowHalfOpen) });
    attachInner(sock, inner);
    if (s.pauseOnConnect) sock.pause();
    const shaped = sock as FerryNetSocket & { server: net.Server; _server: net.Server };
    shaped.server = server;
    shaped._server = server;
    s._connections++;
    // A node:http server (not https: a TLSSocket would wrap the handle in C++ and write through
    // it) reads the session from C++ through the inner socket's StreamBase handle.
    if (server instanceof httpServerClass()) offerHandle(sock);
    server.emit('connection', sock);
    // node:tls takes a net.Socket without a kernel handle for one still connecting, and holds the
    // TLSSocket's writes until that socket emits 'connect' (an https server would handshake and
    // then never answer). An accepted socket is connected: tell whoever waits.
    // The TLSSocket also owns half-close then: the raw socket must not end its writing on the
    // peer's FIN (TLS records still being written would fail with EPIPE).
    if (sock.listenerCount('connect') > 0) {
      sock.allowHalfOpen = true;
      sock.emit('connect');
    }
  });
  ferry.on('error', (err: Error & { code?: string }) => {
    if (!listening) {
      if (onListenError?.(err)) return;
    }
    server.emit('error', err);
  });
  ferry.listen(uri, () => {
    listening = true;
    s._handle = new FerryListenHandle(ferry);
    server.emit('listening');
  });
}
