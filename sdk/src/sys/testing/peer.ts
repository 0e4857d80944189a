// Test helpers for sys/: fork fd-peer.js with one end of a socketpair, poll with a deadline, count fds.

import { type ChildProcess, fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { close } from '../fd.js';
import { socketpair, type UnixSocketType } from '../unix-socket.js';

const PEER_SCRIPT = fileURLToPath(new URL('./fd-peer.js', import.meta.url));
const EXIT_CHECK = fileURLToPath(new URL('./exit-check.js', import.meta.url));

export interface Peer {
  child: ChildProcess;
  /** Our end of the socketpair (non-blocking); the child has the other as fd 4. */
  fd: number;
  exited: Promise<number | null>;
  /** Closes our end (the child sees EOF); idempotent. */
  closeFd(): void;
  /** Kills the child if it is still running and closes our end; idempotent. */
  dispose(): void;
}

export function spawnPeer(args: string[], type: UnixSocketType = 'seqpacket'): Peer {
  const [ours, theirs] = socketpair(type, { nonblock: true });
  const child = fork(PEER_SCRIPT, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc', theirs] });
  close(theirs);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let open = true;
  return {
    child,
    fd: ours,
    exited,
    closeFd() {
      if (open) close(ours);
      open = false;
    },
    dispose() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      this.closeFd();
    },
  };
}

/** Calls fn every millisecond or so until it returns a value other than undefined, or times out. */
export async function until<T>(fn: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < timeoutMs; i++) {
    const r = fn();
    if (r !== undefined) return r;
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

/** Open descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Runs exit-check.js in a child; resolves with its stdout and exit code, or kills it after limitMs. */
export async function runExitCheck(
  mode: string,
  limitMs = 5000,
): Promise<{ out: string; code: number | null }> {
  const child = spawn(process.execPath, [EXIT_CHECK, mode], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  try {
    const [code] = (await once(child, 'exit')) as [number | null];
    return { out, code };
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}
