/**
 * A genuine `net.Socket` whose bytes travel over a Ferry session.
 *
 * Code built on node:net (node:http's Agent and server, undici, ws, database drivers) reaches into
 * the socket it is given: `setTimeout` and `timeout`, `setKeepAlive`, `instanceof net.Socket`,
 * `_server` bookkeeping. Rather than imitate all of that, this is a net.Socket subclass that keeps
 * net.Socket's own logic (timeouts, half-close, 'end' handling, server connection counts) and
 * replaces only what touches the kernel handle: reads, writes, shutdown, destroy, addresses and
 * ref/unref go to an inner SDK `Socket`. `_handle` stays null, so net.Socket's own code takes its
 * handle-less paths, which are the ones it uses before a connect completes.
 *
 * No `#private` members: plain net.Sockets that `connect` turns into FerryNetSockets (by changing
 * their prototype) never ran this constructor, and would fail a private brand check.
 *
 * Known differences from a kernel socket: `onread` given to the net.Socket constructor is not
 * honoured (bytes come as 'data'); `setNoDelay`/`setKeepAlive` are stored, with nothing to tune;
 * what the peer sends after our FIN is dropped rather than answered with a reset (closeLingering).
 */
import * as net from 'node:net';
import type * as sdkApi from '../api/connect.js';
import type { ConnectOptions } from '../api/options.js';
import type { Socket as FerrySocket } from '../api/socket.js';

const kInner = Symbol('ferry.inner');
const kRefed = Symbol('ferry.refed');
const kHadError = Symbol('ferry.hadError');
/** A write handed to the inner socket and not yet called back. */
const kWriting = Symbol('ferry.writing');
/** resetAndDestroy() asked for an abort. */
const kReset = Symbol('ferry.reset');

/** net.Socket's own `_handle` value (null here: the socket has no kernel handle). */
const kHandle = Symbol('ferry.handle');
/** Whether the inner socket's StreamBase handle is offered to node:http's server parser (below). */
const kOffer = Symbol('ferry.offer');

/** The SDK socket of a connect still in progress (destroyed with the outer socket). */
const kConnectingInner = Symbol('ferry.connectingInner');

/** How long a closed socket waits for the peer's FIN before resetting (Linux's tcp_fin_timeout). */
const LINGER_MS = 60_000;

type Chunk = { chunk: Buffer | string; encoding: BufferEncoding };
type WriteCb = (err?: Error | null) => void;
type Address = { address?: string | undefined; port?: number | undefined; family?: string | undefined };
/** net.Socket members its typings leave out or mark read-only. */
type NetInternals = { _unrefTimer(): void; connecting: boolean };

/** What a net.Socket turned Ferry carries: its inner SDK socket once connected. */
interface FerryFields {
  [kInner]?: FerrySocket | null;
  [kRefed]?: boolean;
  [kConnectingInner]?: FerrySocket | null;
  [kHandle]?: unknown;
  [kOffer]?: boolean;
  [kHadError]?: boolean;
  [kWriting]?: boolean;
  [kReset]?: boolean;
}

/** A node-style error for a socket used before or after its connection (net's codes). */
function socketError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export class FerryNetSocket extends net.Socket {
  override _read(_n: number): void {
    const inner = (this as FerryFields)[kInner];
    // Not connected yet: the 'data' wiring made at attach starts the flow.
    if (inner?.isPaused()) inner.resume();
  }

  override _write(chunk: Buffer | string, encoding: BufferEncoding, cb: WriteCb): void {
    writeGeneric(this, false, chunk, encoding, cb);
  }

  override _writev(chunks: Chunk[], cb: WriteCb): void {
    writeGeneric(this, true, chunks, 'buffer' as BufferEncoding, cb);
  }

  override _final(cb: WriteCb): void {
    if (this.connecting) {
      this.once('connect', () => this._final(cb));
      return;
    }
    const inner = (this as FerryFields)[kInner];
    if (!inner || inner.destroyed) {
      cb();
      return;
    }
    let done = false;
    const finish = (err?: Error | null) => {
      if (done) return;
      done = true;
      inner.off('finish', onFinish);
      inner.off('close', onClose);
      cb(err);
    };
    const onFinish = () => finish();
    const onClose = () => finish();
    inner.once('finish', onFinish);
    inner.once('close', onClose);
    inner.end();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const f = this as FerryFields;
    f[kConnectingInner]?.destroy();
    f[kConnectingInner] = null;
    const inner = f[kInner];
    if (inner && !inner.destroyed) {
      // As the kernel closes: a FIN when everything received was read and nothing is being
      // written, a reset otherwise (unread data, a write cut short, resetAndDestroy()). Once our
      // FIN went out, unread bytes (a TLS close_notify nobody reads) no longer reset: a reset
      // could overtake the data still in the peer's fifo, which the kernel's RST, sent after
      // data the peer has mostly read by then, rarely does.
      const unread = this.readableLength > 0 || inner.readableLength > 0;
      if (f[kReset] || f[kWriting] || (unread && !this.writableFinished)) inner.resetAndDestroy();
      else closeLingering(inner);
    }
    f[kHadError] = err !== null && err !== undefined;
    // The offered handle is the inner socket's, closed with it: net.Socket must not close it.
    f[kOffer] = false;
    // net.Socket's handle-less destroy: clears the timeout, calls back, emits 'close' and lowers
    // the server's connection count.
    net.Socket.prototype._destroy.call(this, err, cb);
  }

  // net.Socket's handle-less close carries no hadError; a kernel socket's does.
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'close' && args.length === 0)
      return super.emit('close', (this as FerryFields)[kHadError] === true);
    return super.emit(event, ...args);
  }

  // As net.Socket: the peer's address is cached once read while connected, so it is still there
  // after close only if something read it before; the local address goes with the connection.
  _getpeername(): Address {
    const f = this as FerryNetSocket & FerryFields & { _peername?: Address };
    const inner = f[kInner];
    if (!inner || this.destroyed || this.connecting || inner.remoteAddress === undefined)
      return f._peername ?? {};
    f._peername ??= { address: inner.remoteAddress, port: inner.remotePort, family: inner.remoteFamily };
    return f._peername;
  }

  _getsockname(): Address {
    const inner = (this as FerryFields)[kInner];
    if (!inner || this.destroyed || inner.localAddress === undefined) return {};
    const address = inner.localAddress;
    return { address, port: inner.localPort, family: address.includes(':') ? 'IPv6' : 'IPv4' };
  }

  override ref(): this {
    (this as FerryFields)[kRefed] = true;
    (this as FerryFields)[kInner]?.ref();
    return this;
  }

  override unref(): this {
    (this as FerryFields)[kRefed] = false;
    (this as FerryFields)[kInner]?.unref();
    return this;
  }

  override resetAndDestroy(): this {
    if (this.connecting) {
      this.once('connect', () => this.resetAndDestroy());
      return this;
    }
    (this as FerryFields)[kReset] = true;
    this.destroy();
    return this;
  }
}

function writeGeneric(
  sock: FerryNetSocket,
  writev: boolean,
  data: Chunk[] | Buffer | string,
  encoding: BufferEncoding,
  cb: WriteCb,
): void {
  if (sock.connecting) {
    // As net.Socket does: the Writable holds later writes while this one waits for 'connect'.
    const onClose = () =>
      cb(
        socketError(
          'ERR_SOCKET_CLOSED_BEFORE_CONNECTION',
          'Socket closed before the connection was established',
        ),
      );
    sock.once('close', onClose);
    sock.once('connect', () => {
      sock.off('close', onClose);
      // Through the prototype: a socket that fell back to the kernel meanwhile writes there.
      if (writev) sock._writev(data as Chunk[], cb);
      else sock._write(data as Buffer | string, encoding, cb);
    });
    return;
  }
  const f = sock as FerryFields;
  const inner = f[kInner];
  if (!inner || inner.destroyed) {
    cb(socketError('ERR_SOCKET_CLOSED', 'Socket is closed'));
    return;
  }
  (sock as unknown as NetInternals)._unrefTimer();
  // The inner socket is written only from here, one write at a time (the outer Writable waits
  // for each callback), so its own Writable queue is bypassed: one stream layer, not two.
  if (writev) {
    // Strings go through as they are: the inner socket encodes them straight into the fifo.
    const list = (data as Chunk[]).map((c) => ({ chunk: c.chunk, encoding: c.encoding }));
    f[kWriting] = true;
    inner._writev(list, (err) => {
      f[kWriting] = false;
      cb(err);
    });
  } else {
    f[kWriting] = true;
    inner._write(data as Buffer | string, encoding, (err) => {
      f[kWriting] = false;
      cb(err);
    });
  }
}

// Accessors that net.Socket reads from its handle (TypeScript sees them as plain properties, so
// they are defined here rather than as overriding getters).
Object.defineProperties(FerryNetSocket.prototype, {
  bytesRead: {
    configurable: true,
    get(this: FerryNetSocket & FerryFields) {
      return this[kInner]?.bytesRead ?? 0;
    },
  },
  _bytesDispatched: {
    configurable: true,
    get(this: FerryNetSocket & FerryFields) {
      return this[kInner]?.bytesWritten ?? 0;
    },
  },
  pending: {
    configurable: true,
    get(this: FerryNetSocket & FerryFields) {
      return this.connecting || !this[kInner];
    },
  },
  bufferSize: {
    configurable: true,
    get(this: FerryNetSocket & FerryFields) {
      return this[kInner] ? this.writableLength : undefined;
    },
  },
});

/**
 * A kernel socket's close() after everything was read: FIN now; the connection then waits for the
 * peer's FIN (a clean end), dropping what the peer still sends (the kernel would answer it with
 * RST; dropping loses nothing the app wanted and cannot cut the peer's reading short), and
 * resets after LINGER_MS. The app already let go of the socket; this only ends it politely.
 */
function closeLingering(inner: FerrySocket): void {
  inner.removeAllListeners('data');
  inner.removeAllListeners('end');
  inner.removeAllListeners('error');
  inner.on('error', () => {});
  inner.on('data', () => {});
  const timer = setTimeout(() => inner.resetAndDestroy(), LINGER_MS);
  timer.unref();
  inner.once('close', () => clearTimeout(timer));
  inner.unref();
  inner.resume();
  if (!inner.writableEnded) inner.end();
}

/** True when `sock` is a net.Socket carried by Ferry. */
export function isFerryNetSocket(sock: unknown): sock is FerryNetSocket {
  return sock instanceof FerryNetSocket;
}

/** The SDK socket under a Ferry-carried net.Socket (its `transport` says 'ct' for cut-through). */
export function innerSocket(sock: net.Socket): FerrySocket | null {
  return (sock as net.Socket & FerryFields)[kInner] ?? null;
}

/**
 * Wires an established SDK socket under `outer`: bytes flow between them, errors cross over.
 * The inner socket is half-open capable; the outer one decides (allowHalfOpen) when to end.
 */
export function attachInner(outer: FerryNetSocket, inner: FerrySocket): void {
  const f = outer as FerryNetSocket & FerryFields;
  f[kInner] = inner;
  inner.on('data', (chunk: Buffer) => {
    // Received bytes restart an idle timeout (setTimeout), as net does on every read.
    (outer as unknown as NetInternals)._unrefTimer();
    if (!outer.push(chunk)) inner.pause();
  });
  inner.on('end', () => outer.push(null));
  inner.on('error', (err: Error) => outer.destroy(err));
  if (f[kRefed] === false) inner.unref();
}

/**
 * `_handle` of a FerryNetSocket. net.Socket keeps null there (no kernel handle: its handle-less
 * paths). A socket served to a node:http server (offerHandle) shows the inner socket's StreamBase
 * handle instead, so that node:http's parser consumes it and reads skip both sockets' streams
 * (api/stream-handle.ts); only until the parser lets go of it (an upgrade, a 'data' listener, the
 * end): from then on the socket is handle-less again, so that a TLSSocket made on it after an
 * upgrade or a CONNECT wraps it as a JS stream, as it would without the offer.
 */
Object.defineProperty(FerryNetSocket.prototype, '_handle', {
  configurable: true,
  get(this: FerryNetSocket & FerryFields): unknown {
    // The inner socket shows its handle only to node:http's parser (which it finds on this socket,
    // set just before node:http looks) and only until that parser lets go of it.
    if (this[kOffer] === true) {
      const h = this[kInner]?._handle;
      if (h) return h;
    }
    return this[kHandle] ?? null;
  },
  set(this: FerryFields, v: unknown) {
    this[kHandle] = v;
  },
});

/**
 * Offers node:http (the server `outer` is about to be given to) the inner socket's StreamBase
 * handle. Call after attachInner, before 'connection'.
 */
export function offerHandle(outer: FerryNetSocket): void {
  const f = outer as FerryNetSocket & FerryFields;
  const inner = f[kInner];
  if (!inner) return;
  inner._setParserHolder(outer);
  f[kOffer] = true;
}

let sdkApiLoad: Promise<typeof sdkApi> | null = null;

/**
 * The SDK's socket API, loaded on first use: `--import @ferry/sdk/register` then costs a process
 * that intercepts nothing no native module (koffi) and no attachment code at start.
 */
export function loadSdk(): Promise<typeof sdkApi> {
  sdkApiLoad ??= import('../api/connect.js');
  return sdkApiLoad;
}

/**
 * Makes `sock` (a net.Socket, possibly a plain one that `connect` was called on) connect through
 * Ferry to `uri`. net.Socket's connect contract is kept: 'connect' then 'ready', writes made
 * meanwhile wait, errors destroy the socket. `onError` sees a failure before the session exists
 * and may take the socket over (the kernel fallback) by returning true.
 */
export function connectThroughFerry(
  sock: net.Socket,
  uri: string,
  opts: ConnectOptions,
  onError?: (err: Error & { code?: string }) => boolean,
): FerryNetSocket {
  if (Object.getPrototypeOf(sock) !== FerryNetSocket.prototype)
    Object.setPrototypeOf(sock, FerryNetSocket.prototype);
  const outer = sock as FerryNetSocket;
  (outer as unknown as NetInternals).connecting = true;
  const onConnectError = (err: Error & { code?: string }) => {
    (outer as FerryNetSocket & FerryFields)[kConnectingInner] = null;
    if (outer.destroyed) return;
    (outer as unknown as NetInternals).connecting = false;
    if (onError?.(err)) return;
    outer.destroy(err);
  };
  loadSdk()
    .then((sdk) => {
      if (outer.destroyed) return;
      const inner = sdk.connect({ ...opts, uri, allowHalfOpen: true });
      (outer as FerryNetSocket & FerryFields)[kConnectingInner] = inner;
      inner.once('error', onConnectError);
      inner.once('connect', () => {
        inner.off('error', onConnectError);
        (outer as FerryNetSocket & FerryFields)[kConnectingInner] = null;
        if (outer.destroyed) {
          inner.destroy();
          return;
        }
        attachInner(outer, inner);
        (outer as unknown as NetInternals).connecting = false;
        outer.emit('connect');
        outer.emit('ready');
      });
    })
    .catch(onConnectError);
  return outer;
}
