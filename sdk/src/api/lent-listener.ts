/**
 * A lent listener (handoff mode, FEATURE.LENT_LISTENER): ferryd lent this app the kernel socket of
 * its `tcp://` listener, so the app accepts connections itself, at the kernel's speed, with no
 * message from ferryd per connection. ferryd still decided what it could before lending: the
 * namespace, the address bound, that the listener's connections need no decision of its own per
 * connection (inbound connections to a kernel listener are not subject to rules); the one limit
 * that applies per connection, maxSessionsPerApp, is kept exactly with a window: the app holds at
 * most `window` connections from the listener open at once and resets any beyond (as ferryd resets
 * a connection it accepts for an app at its limit), and ferryd counts the window against the limit.
 *
 * What ferryd learns afterwards: `accepts` notices with absolute figures (window applied, open,
 * accepted in all, refused), at most one per NOTICE_MS unless the window runs short. It holds no
 * duplicate of these connections: the app's close is the connection's end, and `ferry show` lists
 * the listener's figures, not each connection (docs/internals.md, TCP handoff).
 *
 * Across a ferryd restart: ferryd's descriptor of the listening socket dies with it, and the app
 * closes its own on 'lost' (the socket is gone then: connections waiting in its backlog are reset,
 * as when ferryd's own listener dies); the Server listens again once the attachment is back, and
 * ferryd lends the new socket. Connections already accepted are kernel sockets the app holds: they
 * go on, and are reported to the new ferryd (`adopt`) as handed ones are.
 */
import * as net from 'node:net';
import type { Attachment } from '../app/attachment.js';
import { noticeAccepts } from '../app/session-control.js';
import { formatUri, parseUri } from '../proto/uri.js';
import { close } from '../sys/index.js';
import { HandedSocket } from './handed-socket.js';
import type { SocketOptions } from './socket.js';

/** Longest wait before ferryd hears what changed (the figures are absolute: one notice says all). */
export const NOTICE_MS = 10;

export interface LentOptions {
  allowHalfOpen?: boolean | undefined;
  onread?: SocketOptions['onread'] | undefined;
  pauseOnConnect?: boolean | undefined;
}

/** What node's TCP server handle gives its connection callback (internal, stable across node 14-22). */
interface ClientHandle {
  close?: () => void;
}

/** An address as node gives it, IPv4-mapped IPv6 shown as IPv4 (as ferryd shows it). */
function unmapped(address: string): string {
  return address.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/, '');
}

export class LentListener {
  readonly #att: Attachment;
  /** ferryd's id of the listener this socket belongs to. */
  readonly listenerId: number;
  readonly #server: net.Server;
  readonly #opts: LentOptions;
  readonly #onSocket: (sock: HandedSocket) => void;
  readonly #listenerAfterRestart: () => Promise<number>;
  /** The bound host when it is one address (accepted sockets' local address without a syscall). */
  readonly #boundHost: string | null;
  readonly #boundPort: number;
  #window: number;
  #open = 0;
  #total = 0;
  #refused = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Connections accepted beyond the window, unread, waiting for ferryd's answer. */
  #parked: net.Socket[] = [];
  /** open + waiting as the last notice said: a window below it means ferryd had no more room. */
  #askedFor = 0;
  /**
   * Notices sent with connections waiting that ferryd has not answered yet (it answers each, in
   * order). Only the answer to the last one covers every connection held: an earlier answer gives
   * less than was asked since, which is no sign of the limit.
   */
  #unanswered = 0;

  /**
   * Opens `fd` (the lent listening socket; ours from now on, closed by close()) and accepts on it.
   * `onSocket` gets each accepted connection as a HandedSocket.
   */
  constructor(
    att: Attachment,
    listenerId: number,
    fd: number,
    window: number,
    boundUri: string,
    opts: LentOptions,
    onSocket: (sock: HandedSocket) => void,
    listenerAfterRestart: () => Promise<number>,
  ) {
    this.#att = att;
    this.listenerId = listenerId;
    this.#window = window;
    this.#opts = opts;
    this.#onSocket = onSocket;
    this.#listenerAfterRestart = listenerAfterRestart;
    const bound = parseUri(boundUri);
    this.#boundHost = net.isIPv4(bound.host) && bound.host !== '0.0.0.0' ? bound.host : null;
    this.#boundPort = bound.port;
    const server = net.createServer();
    this.#server = server;
    server.on('error', () => {});
    // What keeps the process alive is the Ferry Server's (its attachment reference while
    // listening, and unref() on it), not this handle's.
    server.unref();
    try {
      // listen({ fd }) makes the server's TCP handle at once (the 'listening' event comes later).
      server.listen({ fd });
    } catch (err) {
      close(fd);
      throw err;
    }
    const handle = (server as unknown as { _handle?: { onconnection?: unknown } })._handle;
    if (!handle || typeof handle.onconnection !== 'function') {
      server.close();
      throw new Error('node:net gave the lent listener no TCP handle');
    }
    // Each connection straight from the handle: node:net's own callback would make a Socket we
    // would then wrap anyway, and count connections we count here.
    handle.onconnection = (err: number, client: ClientHandle | undefined) => this.#onConnection(err, client);
    att.on('listener-lent', this.#onWindow);
  }

  /** Connections the app holds from this listener now. */
  get open(): number {
    return this.#open;
  }

  get window(): number {
    return this.#window;
  }

  #onConnection(err: number, client: ClientHandle | undefined): void {
    // An accept error (EMFILE...) is the server's to retry: libuv does on the next wake.
    if (err || !client || this.#closed) {
      client?.close?.();
      return;
    }
    // Unread until admitted (pauseOnCreate): a connection beyond the window waits for ferryd.
    const inner = new net.Socket({
      handle: client,
      readable: true,
      writable: true,
      allowHalfOpen: true,
      pauseOnCreate: true,
      ...(this.#opts.onread ? { onread: this.#opts.onread } : {}),
    } as net.SocketConstructorOpts);
    if (this.#open >= this.#window) {
      // The window is full: ask ferryd for room (it answers every notice with waiting connections);
      // what its answer does not cover is reset then (the app is at maxSessionsPerApp).
      inner.on('error', () => {});
      this.#parked.push(inner);
      this.#report(true);
      return;
    }
    this.#admit(inner);
    this.#report(this.#window - this.#open < this.#window / 4);
  }

  #admit(inner: net.Socket): void {
    const remoteAddress = inner.remoteAddress;
    const remotePort = inner.remotePort;
    if (remoteAddress === undefined || remotePort === undefined) {
      // Gone before we looked (getpeername: ENOTCONN): nothing to serve.
      inner.destroy();
      return;
    }
    const opts = this.#opts;
    const localHost = this.#boundHost ?? inner.localAddress ?? '0.0.0.0';
    const localPort = this.#boundHost ? this.#boundPort : (inner.localPort ?? 0);
    this.#open++;
    this.#total++;
    const sock = new HandedSocket({
      allowHalfOpen: opts.allowHalfOpen ?? false,
      ...(opts.onread !== undefined ? { onread: opts.onread } : {}),
    });
    sock._setListenerAfterRestart(this.#listenerAfterRestart);
    sock._attachKernel(
      this.#att,
      0,
      inner,
      formatUri({ scheme: 'tcp', host: unmapped(localHost), port: localPort }),
      formatUri({ scheme: 'tcp', host: unmapped(remoteAddress), port: remotePort }),
      () => {
        this.#open--;
        this.#report(false);
      },
    );
    // As net's server: read at once, unless the server pauses its connections.
    if (opts.pauseOnConnect !== true) inner.resume();
    this.#onSocket(sock);
  }

  /** ferryd moved the window (a `listener-lent` without fd for this listener), or answered a call
   *  for room: waiting connections it covers are admitted, the others reset (the limit). */
  readonly #onWindow = (listener: number, window: number, withFd: boolean): void => {
    if (listener !== this.listenerId || withFd || this.#closed) return;
    this.#window = window;
    if (this.#unanswered > 0) this.#unanswered--;
    const asked = this.#askedFor;
    while (this.#parked.length > 0 && this.#open < this.#window) {
      this.#admit(this.#parked.shift() as net.Socket);
    }
    if (this.#parked.length > 0 && this.#unanswered > 0) {
      // A later notice asked for these: its answer decides. Nothing to say before it comes (a
      // notice now would ask again for what is asked already, and be answered again).
      return;
    }
    if (this.#parked.length > 0 && window < asked) {
      for (const inner of this.#parked.splice(0)) {
        this.#refused++;
        inner.resetAndDestroy();
      }
    }
    // Say at once which window applies now (ferryd counts the larger of the two until then).
    this.#report(true);
  };

  /** Tells ferryd the figures: now when `urgent` (the window runs short), else within NOTICE_MS. */
  #report(urgent: boolean): void {
    if (this.#closed) return;
    if (urgent) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = null;
      this.#send('soon');
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#send('soon');
    }, NOTICE_MS);
    this.#timer.unref();
  }

  #send(ring: 'soon' | 'lazy'): void {
    this.#askedFor = this.#open + this.#parked.length;
    if (this.#parked.length > 0) this.#unanswered++;
    noticeAccepts(
      this.#att,
      {
        listener: this.listenerId,
        window: this.#window,
        open: this.#open,
        waiting: this.#parked.length,
        total: this.#total,
        refused: this.#refused,
      },
      ring,
    );
  }

  /**
   * Stops accepting and closes this app's descriptor of the listening socket (ferryd closes its own
   * when the listener goes: the socket ends then). Accepted connections go on.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#att.off('listener-lent', this.#onWindow);
    this.#server.close();
    for (const inner of this.#parked.splice(0)) inner.resetAndDestroy();
  }
}
