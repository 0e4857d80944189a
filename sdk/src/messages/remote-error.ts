/**
 * Errors thrown by a request handler, as they cross the channel: the handler's side sends name,
 * message and code (the stack only when the server allows it); the caller's side rejects with
 * ERR_FERRY_REMOTE carrying them. The body is checked as hostile input.
 */
import { FerryError } from '../errors.js';

/** What the peer said about the error its handler threw. */
export interface RemoteErrorInfo {
  name: string;
  message: string;
  /** The thrown error's `code`, when it was a string or a number. */
  code?: string | number;
  /** Only when the peer's server was created with exposeStack: true. */
  stack?: string;
}

/** Longest name, message or code kept from the peer; longer text is cut. */
const MAX_TEXT = 16 * 1024;
const MAX_STACK = 64 * 1024;

/** ERR_FERRY_REMOTE: the request's handler on the other side failed with `remote`. */
export class RemoteError extends FerryError {
  readonly remote: RemoteErrorInfo;

  constructor(remote: RemoteErrorInfo) {
    super('ERR_FERRY_REMOTE', `${remote.name}: ${remote.message}`);
    this.remote = remote;
  }
}

/** The ERROR frame's body for something a handler threw. */
export function errorBody(thrown: unknown, exposeStack: boolean): RemoteErrorInfo {
  if (thrown instanceof Error) {
    const out: RemoteErrorInfo = { name: thrown.name, message: thrown.message };
    const code = (thrown as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') out.code = code;
    if (exposeStack && typeof thrown.stack === 'string') out.stack = thrown.stack;
    return out;
  }
  return { name: 'Error', message: typeof thrown === 'string' ? thrown : String(thrown) };
}

/** The caller's error for an ERROR frame's decoded body (anything a peer may send). */
export function remoteError(body: unknown): RemoteError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const info: RemoteErrorInfo = {
    name: text(b['name'], MAX_TEXT) ?? 'Error',
    message: text(b['message'], MAX_TEXT) ?? '(no message)',
  };
  const code = b['code'];
  if (typeof code === 'number' && Number.isFinite(code)) info.code = code;
  else if (typeof code === 'string') info.code = code.slice(0, MAX_TEXT);
  const stack = text(b['stack'], MAX_STACK);
  if (stack !== undefined) info.stack = stack;
  return new RemoteError(info);
}

function text(v: unknown, max: number): string | undefined {
  return typeof v === 'string' ? v.slice(0, max) : undefined;
}
