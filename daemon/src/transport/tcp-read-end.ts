/**
 * Whether a kernel socket that node ended with 'end' was reset rather than finished. node 20's
 * libuv (1.46) takes a short read that comes with POLLHUP for end of stream, and an RST raises
 * POLLHUP: an RST that lands behind bytes not yet read is reported as 'end', as if a FIN had come,
 * and its error stays in the kernel. Relayed as a FIN, the app would take a stream cut short for a
 * whole one. The kernel tells the two apart (tcpReadEnd): a FIN reads as end of stream, whatever
 * followed it; an RST without one reads as its error, once.
 */
import type { Socket } from 'node:net';
import { type FerryError, tcpReadEnd } from '@ferry/sdk/internal';
import { tcpError } from './tcp-errors.js';

/** After 'end' on `raw`: the reset's error when no FIN came, else null. */
export function resetBehindEnd(raw: Socket): FerryError | null {
  const fd = (raw as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return null;
  let how: ReturnType<typeof tcpReadEnd>;
  try {
    how = tcpReadEnd(fd);
  } catch {
    // Not a TCP descriptor after all (EBADF, ENOTSOCK): nothing to learn, keep node's word.
    return null;
  }
  if (how === 'fin' || how === 'data' || how === 'open') return null;
  return tcpError({ code: how, syscall: 'read' }, 'tcp session: reset behind the last bytes');
}
