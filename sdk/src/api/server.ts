/**
 * Server: listen(uri) registers a listener with ferryd; each accepted session is a Socket.
 *
 * Across a ferryd restart the server keeps listening: on 'ferryd-lost' it stops matching accepts
 * (its listener id died with ferryd), and once the attachment is back it registers the same URI
 * again (the bound one, so a port picked with :0 is kept) and emits 'reattached'. If that fails
 * (someone else took the address meanwhile) or the attachment gives up, it emits 'error'.
 */
import { EventEmitter } from 'node:events';
import type { Attachment, HandedFd } from '../app/attachment.js';
import type { PoolAccepted } from '../app/control-messages.js';
import { ListenerRegistration } from '../app/listener-registration.js';
import { acceptSession } from '../app/session-control.js';
import { ferryError } from '../errors.js';
import type { Accepted } from '../proto/ctrl/messages.js';
import { parseUri } from '../proto/uri.js';
import { getAttachment } from './attachments.js';
import { publishAccepted } from './diagnostics.js';
import { acceptHanded } from './handed-socket.js';
import { LentListener } from './lent-listener.js';
import { type ListenOptions, resolveHandoff, resolveUri, type ServerOptions, tlsWire } from './options.js';
import { checkOnread, Socket } from './socket.js';

export class Server extends EventEmitter {
  listening = false;
  /** As net.Server's: connections beyond this many are closed at once and 'drop' is emitted. */
  maxConnections: number | undefined = undefined;
  /** unref() was called: the listener does not keep the process alive. */
  #unrefed = false;
  /** This server holds a reference on its attachment (listening and not unref'd). */
  #holdsRef = false;
  #opts: ServerOptions;
  #att: Attachment | null = null;
  /** The listener with ferryd (registered again after a ferryd restart); null when not listening. */
  #reg: ListenerRegistration | null = null;
  /** Handed sockets accepted here, waiting to be reported to a ferryd that restarted. */
  #relistenWaiters: ((listenerId: number) => void)[] = [];
  #uri = '';
  #connections = new Set<Socket>();
  /**
   * Each tracked socket's 'close' listener, called with the socket as `this`: made once, where a
   * closure and once()'s wrapper per accepted connection were garbage on every accept.
   */
  readonly #untrack = ((server: Server) =>
    function untrack(this: Socket): void {
      server.#connections.delete(this);
      server.#maybeClosed();
    })(this);
  #closing = false;
  /** The kernel socket ferryd lent this listener (handoff mode): the app accepts on it itself. */
  #lent: LentListener | null = null;

  constructor(opts: ServerOptions = {}) {
    super();
    // Checked here: a bad onread found at the first accept would throw inside an event handler.
    if (opts.onread !== undefined) checkOnread(opts.onread);
    this.#opts = opts;
  }

  /**
   * listen(uri[, cb]), listen(options[, cb]) or listen(port[, host][, backlog][, cb]), as
   * net.Server#listen takes them (a string is a URI here, not a unix path; backlog is ignored).
   */
  listen(target: string | ListenOptions | number, cb?: () => void): this;
  listen(port: number, host?: string, backlog?: number, cb?: () => void): this;
  listen(port: number, host?: string, cb?: () => void): this;
  listen(target: string | ListenOptions | number, ...rest: unknown[]): this {
    if (this.listening || this.#att) throw ferryError('ERR_FERRY_SERVER_LISTENING');
    const last = rest[rest.length - 1];
    const cb = typeof last === 'function' ? (last as () => void) : undefined;
    const host = typeof rest[0] === 'string' ? rest[0] : undefined;
    const uri = resolveUri(
      typeof target === 'number' ? { port: target, ...(host !== undefined ? { host } : {}) } : target,
    );
    const tls = (typeof target === 'object' ? target.tls : undefined) ?? this.#opts.tls;
    if (cb) this.once('listening', cb);
    (async () => {
      const att = await getAttachment(this.#opts);
      // TLS and handoff (tcp://: kernel sockets for remote clients) are asked for again when
      // listening anew after a ferryd restart.
      const tlsOpts = tls ? { tls: tlsWire(tls) } : {};
      const handoff = resolveHandoff(
        (typeof target === 'object' ? target.handoff : undefined) ?? this.#opts.handoff,
        uri,
      );
      const reg = await ListenerRegistration.listen(
        att,
        { uri, ...tlsOpts, handoff },
        {
          accepted: (msg, handed) => this.#onAccepted(msg, handed),
          lost: (err) => {
            this.#dropLent();
            this.emit('ferryd-lost', err);
          },
          reattached: () => {
            this.#relistened();
            this.#takeLent();
            this.emit('reattached');
          },
          relistenFailed: (err) => this.#fail(err),
          closed: (err) => this.#fail(err),
        },
      );
      this.#att = att;
      this.#reg = reg;
      this.#uri = reg.uri;
      this.listening = true;
      this.#takeLent();
      this.#syncRef();
      this.emit('listening');
    })().catch((err: Error) => this.emit('error', err));
    return this;
  }

  address(): { address: string; family: string; port: number; uri: string } | null {
    if (!this.listening) return null;
    const u = parseUri(this.#uri);
    return { address: u.host, family: u.host.includes(':') ? 'IPv6' : 'IPv4', port: u.port, uri: this.#uri };
  }

  get connections(): number {
    return this.#connections.size;
  }

  /** Calls back (asynchronously, as net.Server's) with the number of open connections. */
  getConnections(cb: (err: Error | null, count: number) => void): this {
    const n = this.#connections.size;
    process.nextTick(() => cb(null, n));
    return this;
  }

  /**
   * Stops accepting; 'close' follows once every accepted socket has closed, as with net.Server.
   * On a server that is not listening, `cb` gets ERR_SERVER_NOT_RUNNING (after 'close').
   */
  close(cb?: (err?: Error) => void): this {
    const att = this.#att;
    if (!this.listening || !att) {
      // node:net's own error (not a FerryError: nothing of Ferry failed), so code checks match.
      const notRunning = () =>
        Object.assign(new Error('Server is not running.'), { code: 'ERR_SERVER_NOT_RUNNING' });
      if (cb) this.once('close', () => cb(notRunning()));
      if (!this.#closing) process.nextTick(() => this.emit('close'));
      return this;
    }
    if (cb) this.once('close', cb);
    this.listening = false;
    this.#closing = true;
    this.#dropLent();
    void this.#reg?.close();
    this.#reg = null;
    this.#relistened();
    this.#syncRef();
    process.nextTick(() => this.#maybeClosed());
    return this;
  }

  /** The listener keeps the process alive again (the default). */
  ref(): this {
    this.#unrefed = false;
    this.#syncRef();
    return this;
  }

  /** The listener alone does not keep the process alive (its connections still do). */
  unref(): this {
    this.#unrefed = true;
    this.#syncRef();
    return this;
  }

  /** Holds a reference on the attachment exactly while listening and not unref'd. */
  #syncRef(): void {
    const att = this.#att;
    const want = this.listening && !this.#unrefed && att !== null;
    if (want === this.#holdsRef || !att) return;
    this.#holdsRef = want;
    if (want) att.ref();
    else att.unref();
  }

  /**
   * The listener id a handed socket accepted here is reported under to a ferryd that restarted:
   * the new id once this server listens again, 0 when it does not (closed, or listening failed).
   */
  readonly #listenerAfterRestart = (): Promise<number> => {
    if (!this.#reg) return Promise.resolve(0);
    return new Promise((resolve) => this.#relistenWaiters.push(resolve));
  };

  /** Tells those waiting for the listener's new id (0: there is none). */
  #relistened(): void {
    const waiters = this.#relistenWaiters;
    this.#relistenWaiters = [];
    const id = this.#reg?.id ?? 0;
    for (const w of waiters) w(id);
  }

  /** Accepts on the kernel socket ferryd lent the listener, when it lent one (lent-listener.ts). */
  #takeLent(): void {
    const att = this.#att;
    const reg = this.#reg;
    if (!att || !reg || reg.id === 0) return;
    const lent = att.takeLentListener(reg.id);
    if (!lent) return;
    this.#dropLent();
    try {
      this.#lent = new LentListener(
        att,
        reg.id,
        lent.fd,
        lent.window,
        reg.uri,
        this.#opts,
        (sock) => this.#track(sock),
        this.#listenerAfterRestart,
      );
    } catch (err) {
      this.emit('error', err);
    }
  }

  #dropLent(): void {
    this.#lent?.close();
    this.#lent = null;
  }

  #onAccepted(msg: Accepted, handed: HandedFd | null): void {
    const att = this.#att;
    if (!att) return;
    if (handed) {
      this.#track(acceptHanded(att, msg, handed, this.#opts, this.#listenerAfterRestart));
      return;
    }
    const session = acceptSession(att, msg);
    if (!session) return;
    const sock = new Socket({
      allowHalfOpen: this.#opts.allowHalfOpen ?? false,
      ...(this.#opts.onread !== undefined ? { onread: this.#opts.onread } : {}),
    });
    // A fast connect's ends come parsed (fast-pools.ts): no URI is parsed per accept.
    const ends = (msg as Partial<PoolAccepted>).ends;
    sock._attach(att, session, ends?.local ?? msg.localUri, ends?.remote ?? msg.remoteUri, msg.transport);
    this.#track(sock);
  }

  /**
   * A new connection: counted, announced ('connection'), then started. Over maxConnections it is
   * closed at once and 'drop' is emitted instead, as net.Server does (the peer sees its end).
   */
  #track(sock: Socket): void {
    if (this.maxConnections !== undefined && this.#connections.size >= this.maxConnections) {
      sock.on('error', () => {});
      this.emit('drop', {
        localAddress: sock.localAddress,
        localPort: sock.localPort,
        localFamily: sock.localAddress === undefined ? undefined : sock.remoteFamily,
        remoteAddress: sock.remoteAddress,
        remotePort: sock.remotePort,
        remoteFamily: sock.remoteFamily,
      });
      sock.destroy();
      return;
    }
    this.#connections.add(sock);
    // 'close' comes once per socket: one listener of the server's for all of them.
    sock.on('close', this.#untrack);
    const paused = this.#opts.pauseOnConnect === true;
    if (paused) sock.pause();
    publishAccepted(this, sock);
    this.emit('connection', sock);
    sock._start(!paused);
  }

  /** The listener cannot be restored (or its attachment gave up): stop listening and report it. */
  #fail(err: Error): void {
    this.listening = false;
    this.#dropLent();
    this.#reg?.detach();
    this.#reg = null;
    this.#relistened();
    this.#syncRef();
    this.emit('error', err);
  }

  #maybeClosed(): void {
    if (this.#closing && this.#connections.size === 0) {
      this.#closing = false;
      this.emit('close');
    }
  }
}
