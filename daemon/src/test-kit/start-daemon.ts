/**
 * A real ferryd for a test suite: `ferry daemon` in a child process on a socket of its own, so
 * tests of an app that uses @ferry/sdk run against the daemon they will meet in production, and
 * leave nothing behind.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryAdmin } from '../inspect/show-client.js';

const CLI = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

/** How long ferryd may take to say it listens before startDaemon gives up. */
const START_TIMEOUT_MS = 10_000;

export interface DaemonHandle {
  /** The control socket: give it to apps as FERRY_SOCKET (or the `socket` option). */
  socket: string;
  proc: ChildProcess;
  /** Everything ferryd printed so far (stdout and stderr). */
  output(): string;
  /** Sends `signal` (default SIGKILL) and waits for the exit; the socket files stay behind. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** What `ferry show <what>` prints, parsed (sessions, listeners, segments, apps, stats, ...). */
  show(what: string): Promise<unknown>;
  /** `ferry show stats`. */
  stats(): Promise<Record<string, unknown>>;
  /** Stops ferryd (SIGTERM) and removes the directory startDaemon made for its socket. */
  stop(): Promise<void>;
}

export interface StartDaemonOptions {
  /**
   * The socket path. Default: a fresh temporary directory (removed by stop()). Give the path of a
   * ferryd that was killed to start its successor there (a restart: the caller owns the path).
   */
  socket?: string;
  /** Extra environment variables for ferryd (FERRY_LOG_LEVEL, ...). */
  env?: Record<string, string>;
}

/**
 * Starts ferryd and resolves once it listens (10 s at most, else rejects with what it printed).
 * `args` are extra `ferry daemon` flags (`ferry help daemon`). Node flags for ferryd alone can be
 * set in FERRY_TEST_DAEMON_NODE_ARGS (space-separated; --cpu-prof, for instance, which NODE_OPTIONS
 * refuses).
 */
export async function startDaemon(
  args: readonly string[] = [],
  opts: StartDaemonOptions = {},
): Promise<DaemonHandle> {
  const dir = opts.socket ? null : mkdtempSync(join(tmpdir(), 'ferry-test-'));
  const socket = opts.socket ?? join(dir ?? '', 'ferryd.sock');
  const nodeArgs = (process.env['FERRY_TEST_DAEMON_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'daemon', '--socket', socket, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ferryd did not start: ${out}`)), START_TIMEOUT_MS);
      proc.stdout?.on('data', (d: Buffer) => {
        // Kept for the daemon's whole life: output() returns it all.
        out += d.toString();
        if (out.includes('listening on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`ferryd exited with ${code}: ${out}`));
      });
    });
  } catch (err) {
    // Nothing is left running or lying around when the start fails.
    proc.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const kill = (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  };
  return {
    socket,
    proc,
    output: () => out,
    kill,
    show: (what) => queryAdmin(socket, what),
    stats: async () => (await queryAdmin(socket, 'stats')) as Record<string, unknown>,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        await new Promise((r) => proc.once('exit', r));
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    },
  };
}
