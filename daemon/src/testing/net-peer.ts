/** Plain node:net peers for TCP tests: clients and servers that checksum what they receive. */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tcpReadEnd } from '@ferry/sdk/internal';

export interface Received {
  bytes: number;
  sha256: string;
  text: string;
  /** 'end' (FIN), or the error code that ended the stream. */
  how: string;
}

/**
 * How a stream node:net ended with 'end' really ended: 'end' for a FIN, else the error of the RST
 * the kernel still holds. node 20's libuv reports an RST that lands behind bytes not yet read as
 * 'end' (sdk/src/sys/tcp-socket.ts, tcpReadEnd): a client slow to read its echo saw 'end' where
 * ferryd had reset.
 */
function endedHow(sock: Socket): string {
  const fd = fdOf(sock);
  if (fd < 0) return 'end';
  const how = tcpReadEnd(fd);
  return how === 'fin' || how === 'data' || how === 'open' ? 'end' : how;
}

/** The descriptor under a node:net socket, or -1 (closed, or not on a descriptor). */
export function fdOf(sock: Socket): number {
  const fd = (sock as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : -1;
}

/**
 * Whether this network namespace has an IPv4 TCP connection from `localPort` to `remotePort` in any
 * state but CLOSE (/proc/net/tcp): a socket reset (or closed) leaves the table at once, so this
 * says when a process's socket saw an RST without asking that process.
 */
export function tcpConnectionListed(localPort: number, remotePort: number): boolean {
  return tcpRxQueue(localPort, remotePort) !== null;
}

/**
 * Bytes the kernel holds unread for the IPv4 loopback TCP connection localPort -> remotePort, in
 * whichever process owns it (/proc/net/tcp's rx_queue: received and not yet read), or null when no
 * such connection is listed.
 */
export function tcpRxQueue(localPort: number, remotePort: number): number | null {
  const hex = (port: number) => `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, , queues] = line.trim().split(/\s+/);
    if (local?.endsWith(hex(localPort)) && remote?.endsWith(hex(remotePort)))
      return Number.parseInt(queues?.split(':')[1] ?? '0', 16);
  }
  return null;
}

/** Collects what a socket receives until FIN, an error or close. */
export function collect(sock: Socket, opts: { slowMs?: number } = {}): Promise<Received> {
  const hash = createHash('sha256');
  let bytes = 0;
  let text = '';
  return new Promise((resolve) => {
    let settled = false;
    const done = (how: string) => {
      if (settled) return;
      settled = true;
      resolve({ bytes, sha256: hash.digest('hex'), text, how });
    };
    sock.on('data', (d: Buffer) => {
      bytes += d.length;
      hash.update(d);
      if (text.length < 256) text += d.toString('latin1');
      if (opts.slowMs) {
        sock.pause();
        setTimeout(() => sock.resume(), opts.slowMs);
      }
    });
    sock.once('end', () => done(endedHow(sock)));
    sock.once('error', (err: Error & { code?: string }) => done(err.code ?? 'error'));
    sock.once('close', () => done('close'));
  });
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** A node:net client connected to 127.0.0.1:port. */
export function netConnect(port: number, allowHalfOpen = false): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, allowHalfOpen });
    s.once('connect', () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

/** The connections of each server netServer made that are still open (see closeServer). */
const serverConns = new WeakMap<Server, Set<Socket>>();

/** A node:net server on 127.0.0.1 (kernel-picked port); each connection goes to `onConn`. */
export async function netServer(
  onConn: (s: Socket) => void,
  allowHalfOpen = false,
): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen }, onConn);
  const conns = new Set<Socket>();
  serverConns.set(server, conns);
  server.on('connection', (s: Socket) => {
    conns.add(s);
    s.once('close', () => conns.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

/**
 * Closes `server` once its connections have ended. A netServer connection still open after
 * `graceMs` is destroyed: in a test's finally after a failed wait the peer may never let go, and
 * server.close() would then hold the file until run-tests' 300 s timeout, which hid the failure
 * (tcp.test "a remote that resets behind bytes...": 'test timed out after 300000ms', no error).
 */
export function closeServer(server: Server, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const s of serverConns.get(server) ?? []) s.destroy();
    }, graceMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** True when `bin` can be run (found on PATH). */
export function hasBinary(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Runs a program with `input` on stdin; resolves with its stdout once it exits (bounded). */
export function runWithInput(
  cmd: string,
  args: string[],
  input: Buffer | null,
  timeoutMs: number,
): { done: Promise<{ code: number | null; stdout: Buffer; stderr: string }>; kill: () => void } {
  const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  let err = '';
  p.stdout.on('data', (d: Buffer) => out.push(d));
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  p.stdin.on('error', () => {});
  if (input) p.stdin.end(input);
  const done = new Promise<{ code: number | null; stdout: Buffer; stderr: string }>((resolve, reject) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`${cmd} ${args.join(' ')} did not finish in ${timeoutMs} ms: ${err}`));
    }, timeoutMs);
    p.once('exit', (code) => {
      clearTimeout(timer);
      // stdout may still hold bytes after exit: wait for it to close.
      p.stdout.once('close', () => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
      if (p.stdout.closed) resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
  return {
    done,
    kill: () => {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    },
  };
}

/**
 * A TCP port on 127.0.0.1 that never answers a SYN: a python3 listener with a backlog of 0 whose
 * accept queue is filled and never drained, so the kernel drops further SYNs (a connect there
 * times out, as to a host that is down). Null when python3 is not there.
 */
export async function blackholePort(): Promise<{ port: number; stop: () => void } | null> {
  if (!hasBinary('python3')) return null;
  const script = [
    'import socket, time',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]; fill = []',
    'for i in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    "    try: c.connect(('127.0.0.1', port))",
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'time.sleep(60)',
  ].join('\n');
  const p = spawn('python3', ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('python3 blackhole did not start')), 10_000);
    p.stdout.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(Number(d.toString().trim()));
    });
  });
  return { port, stop: () => p.kill('SIGKILL') };
}

/** Socket descriptors this process holds (a socket whose handle node dropped stays counted). */
export function socketFds(): number {
  let n = 0;
  for (const f of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${f}`).startsWith('socket:')) n++;
    } catch {
      // The directory's own descriptor, gone by now.
    }
  }
  return n;
}

/** A connected kernel TCP pair on 127.0.0.1, both ends half-open capable. */
export async function tcpPair(): Promise<{ server: Server; client: Socket; accepted: Socket }> {
  let accepted: Socket | undefined;
  const server = createServer({ allowHalfOpen: true }, (s) => {
    accepted = s;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const client = connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((resolve) => client.once('connect', resolve));
  while (!accepted) await new Promise((r) => setImmediate(r));
  return { server, client, accepted };
}
