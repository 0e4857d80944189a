/**
 * Kernel reads straight into memory the reader chooses (node's `onread` socket option), so that a
 * TCP pump can receive into the app's fifo instead of into a fresh 64 KiB buffer per read that it
 * then copies.
 *
 * How node drives `onread: { buffer: fn, callback }` (lib/net.js, internal/stream_base_commons.js,
 * node 20): `buffer()` is called once when the socket gets its handle, then after every read that
 * returned data; the Uint8Array it returns is where the next read lands (anything else keeps the
 * previous buffer). `callback(n, buf)` runs synchronously right after each read, before any other
 * JS; 'data' is never emitted; EOF still ends the Readable ('end', then 'close'), errors still
 * destroy it; pause()/resume() stop and start the kernel reads. So a buffer stays exposed to the
 * kernel until the read after next: a reader must never return memory it may lose before then.
 *
 * A socket is created with a DirectRead before the pump exists (connect and accept happen before
 * the fifo is placed) and is kept paused until a sink attaches.
 */
import { type Server, Socket } from 'node:net';

export interface ReadSink {
  /** Where the next kernel read lands: never empty (libuv would read 0 bytes, i.e. EOF). */
  nextBuffer(): Uint8Array;
  /** The kernel read `n` bytes into `buf` (the last nextBuffer()). */
  onRead(n: number, buf: Uint8Array): void;
}

/**
 * Reads that land somewhere the reader does not own for long: the callback copies what it keeps
 * before returning. One buffer serves every socket, since a read and its callback run back to back.
 */
export const SCRATCH_BYTES = 64 * 1024;
const scratch = new Uint8Array(SCRATCH_BYTES);

export function scratchBuffer(): Uint8Array {
  return scratch;
}

/** The routing between one socket's `onread` and the sink that attaches later. */
export class DirectRead {
  #sink: ReadSink | null = null;
  #socket: Socket | null = null;
  readonly onread = {
    buffer: (): Uint8Array => this.#sink?.nextBuffer() ?? scratch,
    callback: (n: number, buf: Uint8Array): boolean => {
      if (this.#sink) {
        this.#sink.onRead(n, buf);
        return true;
      }
      // The socket stays paused until a sink attaches, so this cannot happen; should it, losing
      // bytes silently would be worse than failing the connection.
      this.#socket?.destroy(new Error('tcp read before the session was set up'));
      return false;
    },
  };

  /** The sink that takes every read from now on. */
  attach(sink: ReadSink): void {
    this.#sink = sink;
  }

  bind(socket: Socket): void {
    this.#socket = socket;
    directReads.set(socket, this);
  }
}

const directReads = new WeakMap<Socket, DirectRead>();

/** The DirectRead a socket was created with, if any. */
export function directReadOf(socket: Socket): DirectRead | undefined {
  return directReads.get(socket);
}

/**
 * Node release lines on which re-creating an accepted socket (adoptAccepted) was verified: it
 * relies on net.Socket internals (`_handle`, `_server`, the `pauseOnCreate` option) that node does
 * not promise to keep. Elsewhere accepted sockets take the copying path (a 64 KiB read, then a copy
 * into the fifo), which only costs speed. Outgoing connects use the public `onread` option and are
 * not affected. Add a line here after the TCP tests pass on it.
 */
export const DIRECT_ACCEPT_NODE_MAJORS: readonly number[] = [20];

export interface DirectAcceptSupport {
  on: boolean;
  /** Why not, for ferryd's log; empty when on. */
  why: string;
}

/**
 * Whether accepted sockets get a DirectRead here: the node line is one of the verified ones and the
 * internals are where adoptAccepted expects them. FERRY_DIRECT_ACCEPT=off turns it off, =on skips
 * the version check (the internals are still checked).
 */
export function directAcceptSupport(
  env: NodeJS.ProcessEnv = process.env,
  nodeVersion: string = process.versions.node,
): DirectAcceptSupport {
  const setting = env['FERRY_DIRECT_ACCEPT'];
  if (setting === 'off') return { on: false, why: 'FERRY_DIRECT_ACCEPT=off' };
  const major = Number(nodeVersion.split('.')[0]);
  if (setting !== 'on' && !DIRECT_ACCEPT_NODE_MAJORS.includes(major)) {
    return {
      on: false,
      why: `node ${nodeVersion} is not a verified line (${DIRECT_ACCEPT_NODE_MAJORS.join(', ')}; FERRY_DIRECT_ACCEPT=on tries anyway)`,
    };
  }
  const probe = new Socket() as Socket & SocketInternals;
  const internals = '_handle' in probe && '_server' in probe;
  probe.destroy();
  if (!internals) return { on: false, why: `node ${nodeVersion}'s net.Socket has no _handle/_server` };
  return { on: true, why: '' };
}

let support: DirectAcceptSupport | null = null;

/** directAcceptSupport() for this process, decided once. */
export function directAccept(): DirectAcceptSupport {
  support ??= directAcceptSupport();
  return support;
}

/** The parts of net.Socket this module relies on that @types/node does not declare. */
interface SocketInternals {
  _handle?: object | null;
  _server?: Server | null;
}

/**
 * An accepted socket (net.Server gives no `onread`), re-created over the same kernel handle with a
 * DirectRead. `accepted` must still be paused (pauseOnConnect) so no read has happened through it.
 * The old Socket object is dropped without being destroyed (that would close the shared handle):
 * the handle now reports to the new one. The server counted the connection on the old one; the new
 * one inherits `_server`, so its close is what takes the count down again (server.close() waits
 * for that).
 */
export function adoptAccepted(accepted: Socket, allowHalfOpen: boolean): Socket {
  const old = accepted as Socket & SocketInternals;
  const handle = old._handle;
  if (!directAccept().on || !handle || accepted.destroyed || !accepted.isPaused()) return accepted;
  const reader = new DirectRead();
  const socket = new Socket({
    handle,
    allowHalfOpen,
    readable: true,
    writable: true,
    pauseOnCreate: true,
    onread: reader.onread,
  } as ConstructorParameters<typeof Socket>[0]);
  (socket as Socket & SocketInternals)._server = old._server ?? null;
  old._server = null;
  old._handle = null;
  reader.bind(socket);
  return socket;
}
