/**
 * What ferryd's layers report for observability, as diagnostics channels: a publisher costs one
 * `hasSubscribers` check when nobody listens (metrics off), and the layers need no reference to
 * the metrics code. Channel names start with `ferryd:` (the SDK's are `ferry:`). Messages carry
 * the publishing object so that a subscriber serves only its own daemon (tests run several in
 * one process).
 */
import { channel } from 'node:diagnostics_channel';
import { FerryError } from '@ferry/sdk/internal';

/** `{ owner, session }`: a session end was put in the table (its fifos, if any, are placed). */
export const sessionOpened = channel('ferryd:session:opened');
/** `{ owner, session }`: a session end leaves the table; its fifos are still mapped. */
export const sessionFreed = channel('ferryd:session:freed');
/** `ConnectDone`: a connect request was answered. */
export const connectDone = channel('ferryd:connect:done');

export interface ConnectDone {
  owner: unknown;
  /** The URI's scheme as asked ('tcp', 'tls', ...), bounded to known values by subscribers. */
  scheme: string;
  /** The transport that took the session ('ct', 'tcp', 'tls'), or null when the connect failed. */
  transport: string | null;
  /** The error code of a failed connect, or null. */
  code: string | null;
  seconds: number;
}

/**
 * Runs a connect (`run` may throw or return a promise) and publishes its outcome and duration.
 * Returns what `run` returns; the error, if any, goes on to the caller unchanged.
 */
export function observeConnect<T extends { transport: string; st: number }>(
  owner: unknown,
  uri: string,
  run: () => T | Promise<T>,
): T | Promise<T> {
  if (!connectDone.hasSubscribers) return run();
  const start = performance.now();
  const scheme = uri.slice(0, Math.max(0, uri.indexOf('://')));
  const done = (transport: string | null, err: unknown) => {
    const code = err === null ? null : err instanceof FerryError ? err.code : 'ERR_FERRY_SYS';
    const seconds = (performance.now() - start) / 1000;
    connectDone.publish({ owner, scheme, transport, code, seconds } satisfies ConnectDone);
  };
  let r: T | Promise<T>;
  try {
    r = run();
  } catch (err) {
    done(null, err);
    throw err;
  }
  if (!(r instanceof Promise)) {
    done(r.transport, null);
    return r;
  }
  return r.then(
    (v) => {
      done(v.transport, null);
      return v;
    },
    (err: unknown) => {
      done(null, err);
      throw err;
    },
  );
}
