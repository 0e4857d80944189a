/** connect() and createServer(): the node:net-shaped entry points. */
import { AppSession } from '../app/app-session.js';
import { ferryError } from '../errors.js';
import type { ConnectReply } from '../proto/ctrl/messages.js';
import { getAttachment } from './attachments.js';
import { traceConnect } from './diagnostics.js';
import { HandedSocket, takeHandedReply } from './handed-socket.js';
import { type ConnectOptions, resolveHandoff, resolveUri, type ServerOptions, tlsWire } from './options.js';
import { Server } from './server.js';
import { Socket } from './socket.js';

export function connect(target: string | ConnectOptions, listener?: () => void): Socket {
  const opts: ConnectOptions = typeof target === 'string' ? { uri: target } : target;
  const uri = resolveUri(opts);
  const handoff = resolveHandoff(opts.handoff, uri);
  const sockOpts = {
    allowHalfOpen: opts.allowHalfOpen ?? false,
    ...(opts.onread !== undefined ? { onread: opts.onread } : {}),
  };
  const sock = handoff ? new HandedSocket(sockOpts) : new Socket(sockOpts);
  if (listener) sock.once('connect', listener);
  sock.connecting = true;
  const timeoutMs = opts.timeout ?? 10_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    sock.destroy(ferryError('ETIMEDOUT', `connect to ${uri} timed out after ${timeoutMs} ms`));
  }, timeoutMs);
  traceConnect(sock, uri, async () => {
    const att = await getAttachment(opts);
    const reply = (await att.request({
      t: 'connect',
      id: 0,
      uri,
      rxFifoSize: opts.rxFifoSize ?? 0,
      txFifoSize: opts.txFifoSize ?? 0,
      ...(opts.tls ? { tls: tlsWire(opts.tls) } : {}),
      ...(handoff ? { handoff: true } : {}),
    })) as ConnectReply;
    clearTimeout(timer);
    if (takeHandedReply(sock, att, reply, timedOut)) {
      if (sock.destroyed || timedOut) return;
      sock.emit('connect');
      sock.emit('ready');
      return;
    }
    // The segment was pinned when the reply arrived: a segment-del (the listener's app died) that
    // came in the same burst cannot have unmapped it, and its session-reset was kept for us.
    const { seg, reset } = att.claimSession(reply.session);
    if (!reply.fifos || !seg) {
      att.notify({ t: 'reset', id: 0, session: reply.session });
      if (seg) att.releaseSegmentIfUnused(seg);
      throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'connect reply names no usable segment');
    }
    if (timedOut || sock.destroyed) {
      if (!seg.orphaned) att.notify({ t: 'reset', id: 0, session: reply.session });
      att.releaseSegmentIfUnused(seg);
      return;
    }
    const session = new AppSession(reply.session, seg, reply.fifos, reply.transport);
    sock._attach(att, session, reply.localUri, reply.remoteUri, reply.transport);
    sock.emit('connect');
    sock.emit('ready');
    if (reset) sock.onFailure(reset);
  }).catch((err: Error) => {
    clearTimeout(timer);
    sock.connecting = false;
    if (!sock.destroyed) sock.destroy(err);
  });
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
