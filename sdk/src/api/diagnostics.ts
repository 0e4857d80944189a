/**
 * diagnostics_channel hooks of the SDK, for APM agents and users who observe without patching
 * (docs/observability.md lists the payloads). A publish costs one `hasSubscribers` check when
 * nobody listens. Channels:
 *
 * - `ferry:client:connect`       `{ socket, uri }`: connect() was called.
 * - `ferry:client:connected`     `{ socket, uri, transport, durationMs }`: after the socket's 'connect'.
 * - `ferry:client:connectError`  `{ socket, uri, error, durationMs }`: the connect failed (ferryd's
 *   answer, ETIMEDOUT, or the socket destroyed before connecting).
 * - `ferry:server:accepted`      `{ server, socket }`: before the server's 'connection'.
 * - `ferry:socket:close`         `{ socket, error, transport, bytesRead, bytesWritten }`: a socket
 *   is destroyed (once; `error` is null for a clean close).
 * - tracing channel `ferry:connect` (`tracing:ferry:connect:start|end|asyncStart|asyncEnd|error`),
 *   context `{ socket, uri }`: the connect request to ferryd, from the call to ferryd's answer.
 * - tracing channel `ferry:message:request`, context `{ channel, request }`: a request on a
 *   message channel (@ferry/sdk/messages), until its reply (`result`) or failure (`error`).
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';

export const connectStart = channel('ferry:client:connect');
export const connectOk = channel('ferry:client:connected');
export const connectError = channel('ferry:client:connectError');
export const serverAccepted = channel('ferry:server:accepted');
export const socketClose = channel('ferry:socket:close');
export const connectTrace = tracingChannel<object, { socket: unknown; uri: string }>('ferry:connect');
export const requestTrace = tracingChannel<object, { channel: unknown; request: unknown }>(
  'ferry:message:request',
);

export interface TracedSocket {
  destroyed: boolean;
  errored: Error | null;
  transport: string | undefined;
  once(event: typeof kDestroying, fn: (err: Error | null) => void): unknown;
}

/**
 * Emitted by Socket#_destroy at once: 'close' comes a loop turn later (as net.Socket's does when its
 * handle has closed), by which time ferryd's answer to the connect may already be in.
 */
export const kDestroying: unique symbol = Symbol('ferry.destroying');

function traceActive(tc: typeof connectTrace | typeof requestTrace): boolean {
  return (
    tc.start.hasSubscribers ||
    tc.end.hasSubscribers ||
    tc.asyncStart.hasSubscribers ||
    tc.asyncEnd.hasSubscribers ||
    tc.error.hasSubscribers
  );
}

/** True when anyone listens to a connect's channels (then every connect goes through traceConnect). */
export function connectObserved(): boolean {
  return (
    traceActive(connectTrace) ||
    connectStart.hasSubscribers ||
    connectOk.hasSubscribers ||
    connectError.hasSubscribers
  );
}

/**
 * Runs connect's asynchronous part (`run`: ask ferryd, attach the session) and reports it on the
 * channels above. The returned promise is `run()`'s.
 */
export function traceConnect(socket: TracedSocket, uri: string, run: () => Promise<void>): Promise<void> {
  if (!connectObserved()) return run();
  const tracing = traceActive(connectTrace);
  const start = performance.now();
  if (connectStart.hasSubscribers) connectStart.publish({ socket, uri });
  let settled = false;
  const failed = (error: unknown) => {
    if (settled) return;
    settled = true;
    if (connectError.hasSubscribers) {
      connectError.publish({ socket, uri, error, durationMs: performance.now() - start });
    }
  };
  // A timeout or a destroy() while connecting ends the socket before ferryd answers.
  socket.once(kDestroying, (err) =>
    failed(err ?? Object.assign(new Error('socket destroyed while connecting'), { code: 'ECONNABORTED' })),
  );
  const p = tracing ? connectTrace.tracePromise(run, { socket, uri }) : run();
  p.then(() => {
    if (settled || socket.destroyed) return;
    settled = true;
    if (connectOk.hasSubscribers) {
      connectOk.publish({ socket, uri, transport: socket.transport, durationMs: performance.now() - start });
    }
  }, failed);
  return p;
}

/** Whether a message channel's request is traced now (a caller can then skip making `run`). */
export function requestTraced(): boolean {
  return traceActive(requestTrace);
}

/** A message channel's request, traced when anyone listens. */
export function traceRequest<T>(channelObj: unknown, request: unknown, run: () => Promise<T>): Promise<T> {
  if (!traceActive(requestTrace)) return run();
  return requestTrace.tracePromise(run, { channel: channelObj, request });
}

export function publishAccepted(server: unknown, socket: unknown): void {
  if (serverAccepted.hasSubscribers) serverAccepted.publish({ server, socket });
}

export function publishClose(
  socket: { transport: string | undefined; bytesRead: number; bytesWritten: number },
  error: Error | null,
): void {
  if (!socketClose.hasSubscribers) return;
  socketClose.publish({
    socket,
    error,
    transport: socket.transport,
    bytesRead: socket.bytesRead,
    bytesWritten: socket.bytesWritten,
  });
}
