/**
 * HandedSocket: the Socket of a `tcp://` session that asked for handoff. When ferryd answers with
 * a kernel socket (transport 'tcp-handoff'), bytes go through a node:net socket over that
 * descriptor, app <-> kernel, with nobody in between; when it answers otherwise (a local listener:
 * cut-through), everything is Socket's own. Either way the app holds one object of one class,
 * with Socket's surface and events.
 *
 * ferryd keeps a duplicate of the kernel socket, so the connection ends on the wire only when both
 * let go: closing tells ferryd (`close`, or `reset`, which makes ferryd send the RST). The kernel
 * socket outlives ferryd: across a restart nothing happens to the bytes, and once the attachment
 * is back each live handed socket is reported to the new ferryd (`adopt`), which takes a duplicate
 * again and gives it a new session id.
 */
import type * as net from 'node:net';
import type { Attachment, HandedFd } from '../app/attachment.js';
import { noticeLentOpen, noticeSession, requestAdopt } from '../app/session-control.js';
import { ferryError } from '../errors.js';
import type { Accepted, ConnectReply } from '../proto/ctrl/messages.js';
import { formatUri, parseUri } from '../proto/uri.js';
import { close, type InetAddress, tcpConnect, tcpConnected, tcpLocalAddress } from '../sys/index.js';
import { type ConnectOptions, resolveHandoff, resolveUri } from './options.js';
import { Socket, type SocketOptions } from './socket.js';
import type { TakeHanded } from './socket-connect.js';
import { wrapTcpFd } from './tcp-handle.js';

export const HANDOFF_TRANSPORT = 'tcp-handoff';

export class HandedSocket extends Socket {
  #inner: net.Socket | null = null;
  #att: Attachment | null = null;
  /** ferryd's id of the session now: 0 while ferryd is away or has not adopted it yet. */
  #sessionId = 0;
  #onread: SocketOptions['onread'];
  #released = false;
  /**
   * An accepted socket: after a ferryd restart, the listener id to report it under once its server
   * listens again (0: none). Null: a connected socket, reported at once.
   */
  #listenerAfterRestart: (() => Promise<number>) | null = null;
  /** Counts ferryd's comebacks: an adopt meant for an earlier one is not sent. */
  #adoptRound = 0;
  /** A connection the app accepted itself (lent listener): what to tell once it lets go. */
  #onRelease: (() => void) | null = null;
  /** resetAndDestroy(): ferryd resets the connection (it holds the last descriptor). */
  #reset = false;
  /** A write made while connecting (the stream holds the rest until its callback), sent where
   *  the session turns out to go: the kernel socket, or Socket's fifos. */
  #early: {
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[];
    cb: (err?: Error | null) => void;
  } | null = null;

  constructor(options: SocketOptions = {}) {
    // onread serves the kernel socket when there is one (see _attachHanded), else Socket's fifos.
    super(options);
    this.#onread = options.onread;
  }

  /**
   * socket.connect() asks for handoff too (a tcp:// address, unless the options say
   * `handoff: false`), as connect() does when it makes a HandedSocket. @internal
   */
  override _handedConnect(opts: ConnectOptions): TakeHanded<Socket> | null {
    return resolveHandoff(opts.handoff ?? true, resolveUri(opts)) ? takeHandedReply : null;
  }

  /** The node:net socket over the handed descriptor (null: not handed). @internal */
  get kernelSocket(): net.Socket | null {
    return this.#inner;
  }

  /** Wraps the kernel socket ferryd handed over (`fd` is ours now). @internal */
  _attachHanded(
    att: Attachment,
    sessionId: number,
    fd: number,
    localUri: string,
    remoteUri: string,
    paused = false,
  ): void {
    const onread = this.#onread;
    // Fifos have no Nagle, and ferryd hands sockets with TCP_NODELAY set: `noDelay` tells node so
    // (no setsockopt here), and setNoDelay(false) turns Nagle back on.
    // (`noDelay` is a net.Socket constructor option that @types/node lists for connect only.)
    const inner = wrapTcpFd(fd, {
      readable: true,
      writable: true,
      allowHalfOpen: true,
      noDelay: true,
      // A server with pauseOnConnect: nothing is read from the kernel until resume(), as net's
      // (net.Server passes the same option to the sockets it accepts).
      ...(paused ? { pauseOnCreate: true } : {}),
      ...(onread ? { onread } : {}),
    } as net.SocketConstructorOpts);
    this._attachKernel(att, sessionId, inner, localUri, remoteUri);
  }

  /**
   * Serves this socket over `inner`, a node:net socket over a kernel TCP connection this app holds:
   * one ferryd handed over (`sessionId`: ferryd's id, it holds a duplicate), or one the app accepted
   * itself on a lent listener (`sessionId` 0: ferryd holds nothing; `onRelease` runs once the app
   * lets go). @internal
   */
  _attachKernel(
    att: Attachment,
    sessionId: number,
    inner: net.Socket,
    localUri: string,
    remoteUri: string,
    onRelease: (() => void) | null = null,
  ): void {
    const onread = this.#onread;
    this.#inner = inner;
    this.#att = att;
    this.#sessionId = sessionId;
    this.#onRelease = onRelease;
    this._setEnds(localUri, remoteUri, HANDOFF_TRANSPORT);
    if (!onread) {
      inner.on('data', (chunk: Buffer) => {
        if (!this.push(chunk)) inner.pause();
      });
    }
    inner.on('end', () => {
      this.push(null);
      // onread mode: nothing sits in the stream's buffer; flowing lets 'end' come at once.
      if (onread && !this.readableFlowing) super.resume();
      // As net at EOF: with nothing buffered, 'end' comes even if nobody reads.
      else if (this.readableLength === 0) this.read(0);
    });
    inner.on('error', (err) => this.destroy(err));
    handedSockets(att).add(this);
  }

  /** A session with fifos after all (cut-through, or ferryd refused handoff). @internal */
  override _attach(...args: Parameters<Socket['_attach']>): void {
    super._attach(...args);
    this.#flushEarly();
  }

  #flushEarly(): void {
    const e = this.#early;
    if (!e) return;
    this.#early = null;
    const inner = this.#inner;
    if (!inner) {
      super._writev(e.chunks, e.cb);
      return;
    }
    // As net: writes made while connecting are handed to the connected socket between 'connect'
    // and 'ready', and their callbacks run then (the kernel socket now holds or queues them).
    inner.cork();
    for (const c of e.chunks) inner.write(c.chunk, c.encoding);
    inner.uncork();
    e.cb();
  }

  /**
   * The connect's reply bound the kernel socket ('connect' was emitted): writes made while
   * connecting go out now, before 'ready'. @internal
   */
  override onWritable(): void {
    if (this.#inner) this.#flushEarly();
    else super.onWritable();
  }

  // ---- ferryd's view of the session ----

  /** A restarted ferryd adopted the socket under a new id. @internal */
  _adopted(sessionId: number): void {
    const att = this.#att;
    if (this.#released) {
      if (att) noticeSession(att, 'close', sessionId);
    } else this.#sessionId = sessionId;
  }

  /** ferryd went away: its id for the session died with it. @internal */
  _ferrydLost(): void {
    this.#sessionId = 0;
  }

  /**
   * A new ferryd is attached: report the socket to it (`adopt`, the descriptor rides along), under
   * its listener's new id for an accepted socket (once the server listens again), so `ferry show`
   * lists it with its listener as before. @internal
   */
  _reportAgain(att: Attachment): void {
    const round = ++this.#adoptRound;
    const listener = this.#listenerAfterRestart ? this.#listenerAfterRestart() : Promise.resolve(0);
    void listener.then((id) => {
      const fd = this._fd;
      if (round !== this.#adoptRound || fd < 0) return;
      requestAdopt(att, fd, id).then(
        (session) => this._adopted(session),
        // Not adopted (limit, or ferryd went again: the next 'reattached' retries): the socket
        // goes on; ferryd just does not show it.
        () => {},
      );
    });
  }

  /** Accepted for a server: `listenerAfterRestart` gives the id to report it under. @internal */
  _setListenerAfterRestart(fn: () => Promise<number>): void {
    this.#listenerAfterRestart = fn;
  }

  /** The descriptor to report to a new ferryd (-1 once closed). @internal */
  get _fd(): number {
    if (this.#released) return -1;
    const fd = (this.#inner as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
    return typeof fd === 'number' ? fd : -1;
  }

  #release(reset: boolean): void {
    if (this.#released) return;
    this.#released = true;
    const att = this.#att;
    if (!att) return;
    handedSockets(att).delete(this);
    const onRelease = this.#onRelease;
    this.#onRelease = null;
    onRelease?.();
    if (this.#sessionId === 0) return;
    // FIN sent and received: the connection is over on the wire, ferryd only drops its duplicate,
    // so the notice waits for the next ring (10 ms at most). Otherwise the wire waits for ferryd's
    // close (FIN, or RST for unread bytes) or reset: ring now.
    const inner = this.#inner;
    const over = !reset && inner !== null && inner.writableFinished && inner.readableEnded;
    noticeSession(att, reset ? 'reset' : 'close', this.#sessionId, over ? 'lazy' : 'soon');
  }

  // ---- Socket's surface over the kernel socket ----

  override get bytesRead(): number {
    return this.#inner ? this.#inner.bytesRead : super.bytesRead;
  }

  /** As net's: bytes handed to the kernel socket plus those still queued (corked, connecting). */
  override get bytesWritten(): number {
    let n = this.#inner ? this.#inner.bytesWritten : super.bytesWritten;
    const queued = this.#inner
      ? (this as unknown as { writableBuffer: { chunk: Buffer | string; encoding: BufferEncoding }[] })
          .writableBuffer
      : (this.#early?.chunks ?? []);
    for (const w of queued) {
      n += typeof w.chunk === 'string' ? Buffer.byteLength(w.chunk, w.encoding) : w.chunk.length;
    }
    return n;
  }

  /**
   * As net's: true until connected and again once destroyed (net's handle is gone then). Not the
   * inner socket's own: that one is destroyed as soon as both its sides ended, a turn before this
   * socket's 'end'.
   */
  override get pending(): boolean {
    return this.#inner ? this.destroyed : super.pending;
  }

  override get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (!this.#inner) return super.readyState;
    if (this.destroyed) return 'closed';
    if (this.readable && this.writable) return 'open';
    if (this.readable) return 'readOnly';
    return this.writable ? 'writeOnly' : 'closed';
  }

  override setNoDelay(noDelay?: boolean): this {
    this.#inner?.setNoDelay(noDelay);
    return this;
  }

  override setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.#inner?.setKeepAlive(enable, initialDelay);
    return this;
  }

  override ref(): this {
    if (this.#inner) this.#inner.ref();
    else super.ref();
    return this;
  }

  override unref(): this {
    if (this.#inner) this.#inner.unref();
    else super.unref();
    return this;
  }

  override pause(): this {
    if (this.#inner && this.#onread) this.#inner.pause();
    return super.pause();
  }

  override resume(): this {
    super.resume();
    if (this.#inner && this.#onread) this.#inner.resume();
    return this;
  }

  /** Destroys the socket with an abort: the peer sees ECONNRESET (an RST), as net's. */
  override resetAndDestroy(): this {
    if (!this.#inner) return super.resetAndDestroy();
    this.#reset = true;
    this.destroy();
    return this;
  }

  override _read(): void {
    const inner = this.#inner;
    if (!inner) {
      super._read();
      return;
    }
    if (!this.#onread && inner.isPaused()) inner.resume();
  }

  // Strings arrive as strings (Socket has decodeStrings false, as net.Socket): pass the encoding on.
  override _write(chunk: Buffer | string, enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (!inner) {
      if (this.connecting && !this.destroyed) this.#early = { chunks: [{ chunk, encoding: enc }], cb };
      else super._write(chunk, enc, cb);
      return;
    }
    inner.write(chunk, enc, cb);
  }

  override _writev(
    chunks: { chunk: Buffer | string; encoding: BufferEncoding }[],
    cb: (err?: Error | null) => void,
  ): void {
    const inner = this.#inner;
    if (!inner) {
      if (this.connecting && !this.destroyed) this.#early = { chunks, cb };
      else super._writev(chunks, cb);
      return;
    }
    inner.cork();
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) {
      const c = chunks[i] as { chunk: Buffer | string; encoding: BufferEncoding };
      inner.write(c.chunk, c.encoding);
    }
    const l = chunks[last] as { chunk: Buffer | string; encoding: BufferEncoding };
    inner.write(l.chunk, l.encoding, cb);
    inner.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (!inner) {
      super._final(cb);
      return;
    }
    // shutdown(SHUT_WR) on the kernel socket: the FIN goes now, whoever else holds it.
    inner.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const inner = this.#inner;
    if (inner) {
      if (this.#reset) inner.resetAndDestroy();
      else inner.destroy();
      this.#release(this.#reset);
    }
    super._destroy(err, cb);
  }
}

/** The live handed sockets of each attachment, reported again to a ferryd that restarted. */
const registries = new WeakMap<Attachment, Set<HandedSocket>>();

function handedSockets(att: Attachment): Set<HandedSocket> {
  let set = registries.get(att);
  if (set) return set;
  const live = new Set<HandedSocket>();
  set = live;
  registries.set(att, live);
  att.on('lost', () => {
    for (const s of live) s._ferrydLost();
  });
  att.on('reattached', () => {
    for (const s of [...live]) s._reportAgain(att);
  });
  return live;
}

/**
 * The connect-reply of a session that asked for handoff: when ferryd handed a kernel socket,
 * binds it to `sock` and returns true (or, when nobody wants it any more, lets it go and returns
 * true); false: no socket came, the reply is an ordinary one.
 */
export function takeHandedReply(
  sock: Socket,
  att: Attachment,
  reply: ConnectReply,
  abandoned: boolean,
): boolean {
  const i = reply.fds.indexOf('socket');
  if (reply.fifos !== null || i < 0) return false;
  const fds = att.takeReplyFds(reply.session);
  const fd = fds[i] ?? -1;
  for (const other of fds) if (other !== fd) close(other);
  if (fd < 0) {
    noticeSession(att, 'reset', reply.session);
    return true;
  }
  if (abandoned || sock.destroyed || !(sock instanceof HandedSocket)) {
    close(fd);
    noticeSession(att, 'reset', reply.session);
    return true;
  }
  sock._attachHanded(att, reply.session, fd, reply.localUri, reply.remoteUri);
  return true;
}

/**
 * A connect on an unconnected socket ferryd lent for `uri` (lent sockets, sdk/src/app/
 * lent-sockets.ts): connected here (on loopback and veth the handshake completes inside connect();
 * elsewhere this waits for it, while the socket is not destroyed), bound to `sock`, and ferryd told
 * afterwards (`fast-open`). A failed connect gives the socket back (`close`) and rejects with the
 * failure's POSIX code.
 */
async function connectLent(sock: Socket, att: Attachment, uri: string): Promise<boolean> {
  if (!(sock instanceof HandedSocket)) return false;
  const lent = att.lentSockets.take(uri);
  if (!lent) return false;
  const target = parseUri(lent.remoteUri);
  let local: InetAddress;
  try {
    let connected = tcpConnect(lent.fd, target.host, target.port);
    for (let wait = 1; !connected; wait = Math.min(wait * 2, 50)) {
      await new Promise((r) => setTimeout(r, wait));
      if (sock.destroyed)
        throw ferryError('ERR_FERRY_SESSION_STATE', 'the socket was destroyed while connecting');
      connected = tcpConnected(lent.fd, target.host, target.port);
    }
    local = tcpLocalAddress(lent.fd);
  } catch (err) {
    close(lent.fd);
    noticeSession(att, 'close', lent.session);
    throw err;
  }
  sock._attachHanded(
    att,
    lent.session,
    lent.fd,
    formatUri({ scheme: 'tcp', host: local.address, port: local.port }),
    lent.remoteUri,
  );
  noticeLentOpen(att, lent.session);
  return true;
}
takeHandedReply.fromLent = connectLent;

/** An inbound connection ferryd handed over (`accepted` with a kernel socket): its Socket. */
export function acceptHanded(
  att: Attachment,
  msg: Accepted,
  handed: HandedFd,
  opts: { allowHalfOpen?: boolean; onread?: SocketOptions['onread']; pauseOnConnect?: boolean },
  listenerAfterRestart: (() => Promise<number>) | null = null,
): HandedSocket {
  handed.taken = true;
  const sock = new HandedSocket({
    allowHalfOpen: opts.allowHalfOpen ?? false,
    ...(opts.onread !== undefined ? { onread: opts.onread } : {}),
  });
  if (listenerAfterRestart) sock._setListenerAfterRestart(listenerAfterRestart);
  sock._attachHanded(att, msg.session, handed.fd, msg.localUri, msg.remoteUri, opts.pauseOnConnect === true);
  return sock;
}
