/** connect() and createServer(): the node:net-shaped entry points. */
import { HandedSocket, takeHandedReply } from './handed-socket.js';
import { type ConnectOptions, resolveHandoff, resolveUri, type ServerOptions } from './options.js';
import { Server } from './server.js';
import { Socket } from './socket.js';
import { connectArgs, startConnect } from './socket-connect.js';

/**
 * connect(uri[, cb]), connect(options[, cb]) or connect(port[, host][, cb]), as net.connect takes
 * them (a string is a URI here, not a unix path). `options.signal` aborts as in net.
 */
export function connect(target: string | ConnectOptions, listener?: () => void): Socket;
export function connect(port: number, host?: string, listener?: () => void): Socket;
export function connect(port: number, listener?: () => void): Socket;
export function connect(...args: unknown[]): Socket {
  const { opts, listener } = connectArgs(args);
  const uri = resolveUri(opts); // a bad address throws here, before a socket exists
  const handoff = resolveHandoff(opts.handoff, uri);
  const sockOpts = {
    allowHalfOpen: opts.allowHalfOpen ?? false,
    ...(opts.onread !== undefined ? { onread: opts.onread } : {}),
    ...(opts.signal !== undefined ? { signal: opts.signal } : {}),
  };
  const sock = handoff ? new HandedSocket(sockOpts) : new Socket(sockOpts);
  if (listener) sock.once('connect', listener);
  startConnect(sock, opts, handoff ? takeHandedReply : null);
  return sock;
}

export const createConnection = connect;

export function createServer(
  optionsOrListener?: ServerOptions | ((socket: Socket) => void),
  listener?: (socket: Socket) => void,
): Server {
  const opts = typeof optionsOrListener === 'object' ? optionsOrListener : {};
  const onConn = typeof optionsOrListener === 'function' ? optionsOrListener : listener;
  const server = new Server(opts);
  if (onConn) server.on('connection', onConn);
  return server;
}
