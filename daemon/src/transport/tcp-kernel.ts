/** The kernel side of TCP: listening sockets and outgoing connections (node:net). */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { type FerryError, ferryError, formatUri, type SessionUri } from '@ferry/sdk/internal';
import { adoptAccepted, DirectRead } from './direct-read.js';
import { tcpError } from './tcp-errors.js';

/** The address to bind for a listener's host: wildcards bind every IPv4 address. */
export function bindHost(host: string): string {
  const h = host.toLowerCase();
  if (h === '*' || h === '0.0.0.0') return '0.0.0.0';
  if (h === 'localhost') return '127.0.0.1';
  return host;
}

/** A kernel address as a session URI; IPv4-mapped IPv6 addresses are shown as IPv4. */
export function tcpUri(
  address: string | undefined,
  port: number | undefined,
  scheme: SessionUri['scheme'] = 'tcp',
): string {
  const host = (address ?? '0.0.0.0').replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
  return formatUri({ scheme, host, port: port ?? 0 });
}

/**
 * Binds a kernel listener; resolves once it listens, rejects with EADDRINUSE, EACCES, ...
 * Accepted tcp:// sockets come paused with a DirectRead (see direct-read.ts); tls:// ones, and all
 * when `direct` is false (handoff: ferryd never reads them), do not.
 */
export function listenTcp(
  uri: SessionUri,
  onConnection: (socket: Socket) => void,
  direct = uri.scheme === 'tcp',
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) =>
      onConnection(direct ? adoptAccepted(sock, true) : sock),
    );
    const onError = (err: Error) => reject(tcpError(err, formatUri(uri)));
    server.once('error', onError);
    server.listen({ host: bindHost(uri.host), port: uri.port, backlog: 511 }, () => {
      server.off('error', onError);
      // Later errors on a listening server (EMFILE on accept) must not crash ferryd.
      server.on('error', () => {});
      resolve(server);
    });
  });
}

/**
 * Opens a TCP connection; rejects with ECONNREFUSED, ETIMEDOUT, EHOSTUNREACH, ... The socket comes
 * paused; a tcp:// one with a DirectRead (see direct-read.ts), a tls:// one without (TLS reads the
 * kernel socket itself).
 */
export function connectTcp(
  uri: SessionUri,
  timeoutMs: number,
  direct = uri.scheme === 'tcp',
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const reader = direct ? new DirectRead() : null;
    const socket = connect({
      host: uri.host,
      port: uri.port,
      allowHalfOpen: true,
      ...(reader ? { onread: reader.onread } : {}),
    });
    reader?.bind(socket);
    socket.pause();
    const timer = setTimeout(() => {
      socket.destroy();
      done(ferryError('ETIMEDOUT', `${formatUri(uri)}: no answer in ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (err: FerryError | null) => {
      clearTimeout(timer);
      socket.off('error', onError);
      socket.off('connect', onConnect);
      if (err) reject(err);
      else resolve(socket);
    };
    const onError = (err: Error) => done(tcpError(err, formatUri(uri)));
    const onConnect = () => {
      // Until the pump takes the socket over, an error must not go unhandled (it would kill ferryd).
      socket.on('error', () => {});
      done(null);
    };
    socket.once('error', onError);
    socket.once('connect', onConnect);
  });
}
