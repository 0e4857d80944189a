/**
 * A node:net socket over a connected kernel TCP descriptor that ferryd handed over (handoff mode).
 *
 * `new net.Socket({ fd })` asks libuv what the descriptor is (uv_guess_handle: fstat, getsockopt
 * SO_TYPE, getsockname) before it makes a TCP handle of it. A handed descriptor is a TCP socket by
 * construction (ferryd made or accepted it, or the app did with the socket ferryd lent it), so the
 * handle is made directly as TCP and opened on the descriptor: no guess, three system calls fewer
 * per connection. The TCP handle constructor is node's own (`process.binding('tcp_wrap')`, on
 * node's allow-list of bindings); where it is not there, or `--pending-deprecation` would make its
 * use warn, the descriptor goes through `{ fd }` as before.
 */
import * as net from 'node:net';
import { sysError } from '../sys/sys-error.js';
import { nodeBinding } from './node-binding.js';

interface TcpHandle {
  open(fd: number): number;
  close(cb?: () => void): void;
}
type TcpHandleClass = new (type: number) => TcpHandle;

function tcpHandleClass(): { TCP: TcpHandleClass; SOCKET: number } | null {
  if (process.env['FERRY_TCP_WRAP'] === 'fd') return null;
  const binding = nodeBinding('tcp_wrap') as { TCP?: unknown; constants?: { SOCKET?: unknown } } | null;
  if (typeof binding?.TCP !== 'function' || typeof binding.constants?.SOCKET !== 'number') return null;
  return { TCP: binding.TCP as TcpHandleClass, SOCKET: binding.constants.SOCKET };
}

// Looked up at the first handed descriptor, not when the module loads: every app imports this
// module, few are handed TCP descriptors, and process.binding is not free (nor wanted by all).
let direct: { TCP: TcpHandleClass; SOCKET: number } | null | undefined;

function directTcp(): { TCP: TcpHandleClass; SOCKET: number } | null {
  if (direct === undefined) direct = tcpHandleClass();
  return direct;
}

/** How handed descriptors are opened in this process: 'handle' (direct TCP handle) or 'fd'. */
export function tcpWrapKind(): 'handle' | 'fd' {
  return directTcp() ? 'handle' : 'fd';
}

/**
 * A net.Socket over `fd`, a connected TCP socket this process owns (closed with the Socket).
 * `opts` are net.Socket's constructor options (readable, allowHalfOpen, onread, pauseOnCreate...).
 * Throws as net.Socket({ fd }) does when the descriptor cannot be opened (EBADF, EEXIST).
 */
export function wrapTcpFd(fd: number, opts: net.SocketConstructorOpts): net.Socket {
  const tcp = directTcp();
  if (!tcp) return new net.Socket({ ...opts, fd });
  const handle = new tcp.TCP(tcp.SOCKET);
  const err = handle.open(fd);
  if (err !== 0) {
    handle.close();
    // libuv's errors are minus errno on Linux.
    throw sysError('open', -err, `descriptor ${fd} as a TCP handle`);
  }
  return new net.Socket({ ...opts, handle } as net.SocketConstructorOpts);
}
