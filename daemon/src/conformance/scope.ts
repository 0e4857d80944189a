/**
 * One scenario run's resources: the servers it listened with and the sockets it opened, all torn
 * down at the end whatever happened, so that one scenario cannot leak into the next.
 */
import { once } from 'node:events';
import type { ServerLike, SocketLike, Target } from './targets.js';
import { type Trace, type WatchOptions, watch, within } from './trace.js';

export interface Conn {
  sock: SocketLike;
  trace: Trace;
}

export class Scope {
  readonly t: Target;
  #servers: ServerLike[] = [];
  #sockets: SocketLike[] = [];

  constructor(t: Target) {
    this.t = t;
  }

  /** Listens with the target's server module and resolves once 'listening' came. */
  async listen(options: object, onConnection: (s: SocketLike) => void): Promise<ServerLike> {
    const server = this.t.server.createServer(options, (s: SocketLike) => {
      this.#sockets.push(s);
      onConnection(s);
    });
    this.#servers.push(server);
    server.listen(this.t.listenArg());
    await once(server, 'listening');
    return server;
  }

  /**
   * Listens and watches every accepted socket from its first moment (`onConnection` runs in the
   * 'connection' handler, before any event of the socket can be missed).
   */
  async serve(
    options: object,
    w: WatchOptions,
    onConnection: (s: SocketLike, trace: Trace) => void = () => {},
  ): Promise<{ server: ServerLike; accepted: Conn[]; nextConn(): Promise<Conn> }> {
    const accepted: Conn[] = [];
    let waiter: ((c: Conn) => void) | null = null;
    const server = await this.listen(options, (sock) => {
      const c = { sock, trace: watch(sock, w) };
      accepted.push(c);
      onConnection(sock, c.trace);
      waiter?.(c);
      waiter = null;
    });
    let taken = 0;
    const nextConn = (): Promise<Conn> => {
      const have = accepted[taken];
      if (have) {
        taken++;
        return Promise.resolve(have);
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no connection accepted')), 4000);
        waiter = (c) => {
          clearTimeout(timer);
          taken++;
          resolve(c);
        };
      });
    };
    return { server, accepted, nextConn };
  }

  /** Connects with the target's client module: connect({ ...address, ...options }). */
  connect(
    server: ServerLike,
    options: object = {},
    w: WatchOptions = {},
  ): { sock: SocketLike; trace: Trace } {
    const sock = this.t.client.connect({ ...this.t.connectOpts(server), ...options });
    this.#sockets.push(sock);
    return { sock, trace: watch(sock, w) };
  }

  /** Keeps `s` for the teardown (sockets and servers a scenario made by hand). */
  own<T extends SocketLike>(s: T): T {
    this.#sockets.push(s);
    return s;
  }

  ownServer<T extends ServerLike>(s: T): T {
    this.#servers.push(s);
    return s;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) {
      s.on('error', () => {});
      if (!s.destroyed) s.destroy();
    }
    await within(
      Promise.all(
        this.#servers.map(
          (srv) =>
            new Promise<void>((resolve) => {
              if (!srv.listening) resolve();
              else srv.close(() => resolve());
            }),
        ),
      ),
      4000,
    );
  }
}
