/**
 * RST to a kernel TCP socket's remote, and the socket closed, whatever state its shutdown is in.
 *
 * libuv refuses a reset (uv_tcp_close_reset: EINVAL) while a shutdown it was asked for is still
 * pending: from end(), once every write completed, until the FIN is handed to the kernel (the next
 * writable turn; later while the send buffer stays full because the remote does not read). node
 * 20's destroy then emits 'error' (reset EINVAL) and drops the handle without closing it: the
 * descriptor stays open for good and 'close' never comes. So in that window the socket is closed
 * instead: its FIN is on the way already, and bytes left unread still make the kernel send RST.
 */
import type { Socket } from 'node:net';

export function resetSocket(raw: Socket): void {
  if (raw.destroyed) return;
  if (shutdownPending(raw)) raw.destroy();
  else raw.resetAndDestroy();
}

/**
 * end() was called and every write completed, so node asked libuv to shut down, and 'finish'
 * (which waits for that shutdown) has not come. With writes still queued, the shutdown is not
 * asked for yet and a reset works.
 */
function shutdownPending(s: Socket): boolean {
  return s.writableEnded && !s.writableFinished && s.writableLength === 0;
}
