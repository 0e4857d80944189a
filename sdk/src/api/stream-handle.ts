/**
 * A StreamBase handle for a Socket, so that node:http's server parser reads it from C++.
 *
 * node:http feeds a connection's bytes to its parser (llhttp, in C++) in one of two ways. If the
 * socket's `_handle` is a StreamBase (`isStreamBase`), it calls `parser.consume(handle)`: the
 * parser becomes the handle's read listener and every read goes into llhttp without passing
 * through JavaScript streams. Any other socket gets a 'data' listener (`socketOnData`) that hands
 * each chunk to `parser.execute()`: a Buffer per read, the Readable's push and 'data' emission and
 * that listener, on every request (about 5 us per request on the server; BENCHMARKS.md).
 *
 * Node's `JSStream` (`process.binding('js_stream')`, on node's allow-list of bindings; what
 * node's own JSStreamSocket wraps a JS stream in for TLS) is such a handle whose reads are pushed
 * from JavaScript: `readBuffer(view)` copies the bytes into the listener's buffer (the parser's)
 * and emits them there. The Socket hands it views of its rx fifo in place (one copy, no Buffer)
 * while the parser consumes the handle and reading is on; otherwise its bytes go the Readable way
 * as before. Writes never go through the handle: node:http writes to the Socket itself.
 *
 * Where the binding is missing, or `--pending-deprecation` would make `process.binding` warn, or
 * FERRY_HTTP_HANDLE=0, there is no handle and node:http takes its 'data' path.
 */
import { nodeBinding } from './node-binding.js';

/** What the Socket and node:http use of a JSStream. */
export interface StreamHandle {
  readonly isStreamBase: true;
  /** Set by node:http when its parser consumes the handle (never cleared). */
  _consumed?: boolean;
  /** node:http's own flag: readStart()/readStop() called from its pause/resume listeners. */
  reading: boolean;
  readonly bytesRead: number;
  /** Copies `bytes` into the read listener's buffer and emits them to it (synchronously). */
  readBuffer(bytes: Uint8Array): void;
}

interface JsStream extends StreamHandle {
  onreadstart: () => number;
  onreadstop: () => number;
  onshutdown: (req: unknown) => number;
  onwrite: (req: unknown, bufs: unknown) => number;
  onread: (...args: unknown[]) => void;
  isClosing: () => boolean;
}

type JsStreamClass = new () => JsStream;

/** libuv's "operation not supported on socket" (-ENOTSUP on Linux). */
const UV_ENOTSUP = -95;

function jsStreamClass(): JsStreamClass | null {
  if (process.env['FERRY_HTTP_HANDLE'] === '0') return null;
  const cls = nodeBinding('js_stream')?.['JSStream'];
  if (typeof cls !== 'function' || (cls as { prototype?: object }).prototype === undefined) return null;
  if (typeof (cls.prototype as { readBuffer?: unknown }).readBuffer !== 'function') return null;
  return cls as JsStreamClass;
}

// Looked up at the first handle asked for, not when the module loads (every app imports it).
let JSStreamClass: JsStreamClass | null | undefined;

function streamClass(): JsStreamClass | null {
  if (JSStreamClass === undefined) JSStreamClass = jsStreamClass();
  return JSStreamClass;
}

/** Whether Sockets in this process offer node:http a StreamBase handle ('handle') or not ('stream'). */
export function httpInputKind(): 'handle' | 'stream' {
  return streamClass() ? 'handle' : 'stream';
}

/**
 * A handle whose reads `onReadStart` is told to resume (node:http's readStart after a pause);
 * null where the binding cannot be used. The handle is never written to or shut down through:
 * those fail with ENOTSUP rather than reaching C++ callbacks that are not there.
 */
export function makeStreamHandle(onReadStart: () => void): StreamHandle | null {
  const cls = streamClass();
  if (cls === null) return null;
  let h: JsStream;
  try {
    h = new cls();
  } catch {
    return null;
  }
  // A connected socket's handle reads from the start, as a net.Socket's does.
  h.reading = true;
  h.onreadstart = () => {
    onReadStart();
    return 0;
  };
  h.onreadstop = () => 0;
  h.onshutdown = () => UV_ENOTSUP;
  h.onwrite = () => UV_ENOTSUP;
  // Called only for reads no listener took (none are emitted that way) and for read errors the
  // parser passes back (none are emitted: EOF and errors reach node:http through the stream).
  h.onread = () => {};
  h.isClosing = () => false;
  return h;
}
