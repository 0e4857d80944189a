/** node:net errors as Ferry errors, so apps see the POSIX code through the wire status table. */
import { type FerryError, ferryError, isErrorCode } from '@ferry/sdk/internal';

/**
 * Maps an error from node:net (or dns) to the code an app sees. Codes the status table lacks go to
 * their nearest POSIX meaning (ENETUNREACH and resolver failures to EHOSTUNREACH, EPIPE to
 * ECONNRESET: for a stream whose remote is gone, both mean "reset"), keeping Node's code in the text.
 */
export function tcpError(err: unknown, what: string): FerryError {
  const e = err as { code?: unknown; message?: unknown; syscall?: unknown };
  const code = typeof e.code === 'string' ? e.code : '';
  const syscall = typeof e.syscall === 'string' ? e.syscall : undefined;
  const opts = syscall ? { syscall } : {};
  switch (code) {
    case 'EPIPE':
      return ferryError('ECONNRESET', `${what}: the remote is gone (EPIPE)`, opts);
    case 'ENETUNREACH':
      return ferryError('EHOSTUNREACH', `${what}: network unreachable (ENETUNREACH)`, opts);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
      return ferryError('EHOSTUNREACH', `${what}: cannot resolve the host (${code})`, opts);
  }
  if (code && isErrorCode(code)) return ferryError(code, what, opts);
  const msg = typeof e.message === 'string' ? e.message : String(err);
  return ferryError('ERR_FERRY_SYS', `${what}: ${msg}`, opts);
}
