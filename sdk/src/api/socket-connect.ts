/**
 * Connecting a Socket: the argument forms net.connect and net.Socket#connect take, and the
 * request to ferryd that gives the socket its session.
 */
import type { AppSession, SessionOwner } from '../app/app-session.js';
import type { Attachment } from '../app/attachment.js';
import { claimConnected, requestConnect } from '../app/session-control.js';
import { ferryError } from '../errors.js';
import type { ConnectReply } from '../proto/ctrl/messages.js';
import type { SessionUri } from '../proto/uri.js';
import { getAttachment, readyAttachment } from './attachments.js';
import { connectObserved, type TracedSocket, traceConnect } from './diagnostics.js';
import { type ConnectOptions, resolveUri, tlsWire } from './options.js';

/**
 * (uri[, cb]), (options[, cb]) or (port[, host][, cb]), as net.connect takes them (a string is a
 * URI here, not a unix path).
 */
export function connectArgs(args: readonly unknown[]): { opts: ConnectOptions; listener?: () => void } {
  const [target, second, third] = args;
  let opts: ConnectOptions;
  if (typeof target === 'number')
    opts = { port: target, ...(typeof second === 'string' ? { host: second } : {}) };
  else if (typeof target === 'string') opts = { uri: target };
  else if (target !== null && typeof target === 'object') opts = target as ConnectOptions;
  else throw ferryError('ERR_INVALID_ARG_TYPE', 'connect takes a URI, options, or a port');
  const listener = [second, third].find((a) => typeof a === 'function') as (() => void) | undefined;
  return listener ? { opts, listener } : { opts };
}

/**
 * What connecting needs of a Socket. Named here rather than imported: socket.ts imports this
 * module (Socket#connect), so this one does not import socket.ts.
 */
export interface Connectable extends SessionOwner, TracedSocket {
  connecting: boolean;
  readonly destroyed: boolean;
  setTimeout(ms: number): unknown;
  destroy(err?: Error): unknown;
  emit(event: string, ...args: unknown[]): boolean;
  _attach(
    att: Attachment,
    session: AppSession,
    localUri: string | SessionUri,
    remoteUri: string | SessionUri,
    transport: string,
  ): void;
  _start(): void;
}

/**
 * Binds a reply that handed a kernel socket (handoff) to `sock`; false: an ordinary reply.
 * `fromLent`: connects `sock` on a socket ferryd lent for `uri`, without asking ferryd; resolves
 * true once connected and bound, false when none is lent; rejects with the connect's failure.
 */
export type TakeHanded<S> = ((
  sock: S,
  att: Attachment,
  reply: ConnectReply,
  abandoned: boolean,
) => boolean) & {
  fromLent?: (sock: S, att: Attachment, uri: string) => Promise<boolean>;
};

/**
 * Asks ferryd for a session to `opts`' address and attaches it to `sock`; 'connect' then 'ready',
 * or 'error' (ETIMEDOUT after `connectTimeout`, 10 s by default). `takeHanded` (a HandedSocket's
 * connect) asks for handoff and binds a handed kernel socket.
 */
export function startConnect<S extends Connectable>(
  sock: S,
  opts: ConnectOptions,
  takeHanded: TakeHanded<S> | null = null,
): void {
  const uri = resolveUri(opts);
  sock.connecting = true;
  if (opts.timeout !== undefined) sock.setTimeout(opts.timeout);
  // A fast connect (a pair ferryd lent for this URI, taken without asking it) is possible with the
  // default fifo sizes and no TLS options, as the pool's pairs were lent for. When the attachment is
  // up and holds pairs for the URI, the session comes within this turn: no timer (one is armed if
  // the take fails after all).
  const mayFast = takeHanded === null && !opts.tls && !opts.rxFifoSize && !opts.txFifoSize;
  const ready = mayFast ? readyAttachment(opts) : null;
  const onHand = ready !== null && ready.pools.available(uri) > 0;
  if (onHand && !connectObserved()) {
    // A warm client's connect, unobserved: the take and the events come in a microtask, as after
    // the await in connectAsked (so 'connect' never comes before connect() has returned), without
    // its async function, promises, timer closures or trace: those were a sixth of what a fast
    // connect allocated (BENCHMARKS.md, conn9).
    queueMicrotask(() => {
      try {
        if (!sock.destroyed && takeFast(sock, ready, uri)) return;
      } catch (err) {
        sock.connecting = false;
        if (!sock.destroyed) sock.destroy(err as Error);
        return;
      }
      connectAsked(sock, opts, uri, takeHanded, ready, mayFast, false);
    });
    return;
  }
  connectAsked(sock, opts, uri, takeHanded, ready, mayFast, !onHand);
}

/**
 * Connects `sock` on a pair `att` holds for `uri`, without asking ferryd; false: none on hand.
 * Exported for its test.
 */
export function takeFast(sock: Connectable, att: Attachment, uri: string): boolean {
  const fast = att.pools.take(uri);
  if (!fast) return false;
  sock._attach(att, fast.session, fast.local, fast.remote, 'ct');
  sock.emit('connect');
  sock.onWritable();
  sock.emit('ready');
  sock._start();
  // take() posted the open with its ring deferred to the end of the loop turn; the first bytes are
  // in the fifo now, so a sleeping server is rung at once (only if it still sleeps). Deferred, a
  // server on the other vCPU started on a turn's connects only after the client's whole turn
  // (session 8's quiet run: client 69% busy, server 63%). Where the two share a loaded vCPU the
  // early ring costs more wakes than it saves (BENCHMARKS.md, conn10).
  fast.session.segment.ringPendingNow();
  return true;
}

/**
 * startConnect's way through the attachment's promise: a fast connect after all when a pair is on
 * hand by then, else a lent socket (handoff) or a request to ferryd. `armNow`: the connect timer
 * starts at once (else only once no pair was on hand).
 */
function connectAsked<S extends Connectable>(
  sock: S,
  opts: ConnectOptions,
  uri: string,
  takeHanded: TakeHanded<S> | null,
  ready: Attachment | null,
  mayFast: boolean,
  armNow: boolean,
): void {
  const timeoutMs = opts.connectTimeout ?? 10_000;
  let timedOut = false;
  let timer: NodeJS.Timeout | null = null;
  const arm = () => {
    timer = setTimeout(() => {
      timedOut = true;
      sock.destroy(ferryError('ETIMEDOUT', `connect to ${uri} timed out after ${timeoutMs} ms`));
    }, timeoutMs);
  };
  if (armNow) arm();
  traceConnect(sock, uri, async () => {
    // Awaited either way, so 'connect' never comes before connect() has returned.
    const att = await (ready ?? getAttachment(opts));
    if (mayFast && !sock.destroyed && !timedOut && takeFast(sock, att, uri)) {
      if (timer) clearTimeout(timer);
      return;
    }
    if (!timer && !sock.destroyed) arm();
    // A handoff connect on a socket ferryd lent for this URI: the kernel's connect, no round trip.
    if (takeHanded?.fromLent && !sock.destroyed && !timedOut && att.lentSockets.available(uri) > 0) {
      if (await takeHanded.fromLent(sock, att, uri)) {
        if (timer) clearTimeout(timer);
        if (sock.destroyed || timedOut) return;
        sock.emit('connect');
        sock.onWritable();
        sock.emit('ready');
        return;
      }
    }
    const reply = await requestConnect(att, {
      uri,
      rxFifoSize: opts.rxFifoSize ?? 0,
      txFifoSize: opts.txFifoSize ?? 0,
      ...(opts.tls ? { tls: tlsWire(opts.tls) } : {}),
      handoff: takeHanded !== null,
    });
    if (timer) clearTimeout(timer);
    if (takeHanded?.(sock, att, reply, timedOut)) {
      if (sock.destroyed || timedOut) return;
      sock.emit('connect');
      // As below: writes made while connecting go out between 'connect' and 'ready'.
      sock.onWritable();
      sock.emit('ready');
      return;
    }
    // The segment was pinned when the reply arrived: a segment-del (the listener's app died) that
    // came in the same burst cannot have unmapped it, and its session-reset was kept for us.
    const { session, reset } = claimConnected(att, reply, () => timedOut || sock.destroyed);
    if (!session) return;
    sock._attach(att, session, reply.localUri, reply.remoteUri, reply.transport);
    sock.emit('connect');
    // As net: writes made while connecting go out between 'connect' and 'ready'; reading starts
    // after 'ready', so no 'data' comes before it.
    if (!reset) sock.onWritable();
    sock.emit('ready');
    if (reset) sock.onFailure(reset);
    else sock._start();
  }).catch((err: Error) => {
    if (timer) clearTimeout(timer);
    sock.connecting = false;
    if (!sock.destroyed) sock.destroy(err);
  });
}
