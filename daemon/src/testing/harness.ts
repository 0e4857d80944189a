/** Test harness: a real ferryd and real app processes, with helpers to drive and inspect them. */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { queryAdmin } from '../inspect/show-client.js';

const CLI = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
const APP = fileURLToPath(new URL('./scriptable-app.js', import.meta.url));

export interface DaemonHandle {
  socket: string;
  proc: ChildProcess;
  /** Everything ferryd printed so far. */
  output(): string;
  /** Sends `signal` (default SIGKILL) and waits for the exit; the socket files stay behind. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  show(what: string): Promise<unknown>;
  stats(): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

/**
 * Starts ferryd on a fresh socket, or on `opts.socket` (a restart: the caller owns that path);
 * `args` are extra `ferry daemon` flags, `opts.env` extra environment variables.
 */
export async function startDaemon(
  args: readonly string[] = [],
  opts: { socket?: string; env?: Record<string, string> } = {},
): Promise<DaemonHandle> {
  const dir = opts.socket ? null : mkdtempSync(join(tmpdir(), 'ferry-test-'));
  const socket = opts.socket ?? join(dir ?? '', 'ferryd.sock');
  // FERRY_TEST_DAEMON_NODE_ARGS: node flags for ferryd only (--cpu-prof is refused in NODE_OPTIONS).
  const nodeArgs = (process.env['FERRY_TEST_DAEMON_NODE_ARGS'] ?? '').split(' ').filter(Boolean);
  const proc = spawn(process.execPath, [...nodeArgs, CLI, 'daemon', '--socket', socket, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...opts.env },
  });
  let out = '';
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ferryd did not start: ${out}`)), 10_000);
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

export type AppEvent = Record<string, unknown> & { event: string; tag?: string };

export class AppHandle {
  readonly proc: ChildProcess;
  readonly events: AppEvent[] = [];
  #seq = 0;
  #replies = new Map<number, (r: Record<string, unknown>) => void>();
  #waiters: { pred: (e: AppEvent) => boolean; resolve: (e: AppEvent) => void }[] = [];

  /** Resolves when the process has exited (killed or not). */
  readonly exited: Promise<void>;

  /** `script`: the app to fork (default: scriptable-app.js; udp-app.js for datagram tests). */
  constructor(socket: string, env: Record<string, string> = {}, script = APP) {
    this.proc = fork(script, [], { env: { ...process.env, FERRY_SOCKET: socket, ...env }, stdio: 'inherit' });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', () => {
        // Calls in flight will never be answered: say so now rather than at their timeout.
        for (const r of this.#replies.values()) r({ ok: false, code: 'APP_EXITED', message: 'app exited' });
        this.#replies.clear();
        resolve();
      });
    });
    this.proc.on('message', (m: Record<string, unknown>) => {
      if (typeof m['reply'] === 'number') {
        this.#replies.get(m['reply'])?.(m);
        this.#replies.delete(m['reply']);
        return;
      }
      const e = m as AppEvent;
      this.events.push(e);
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(e)) return true;
        w.resolve(e);
        return false;
      });
    });
  }

  async ready(): Promise<void> {
    await this.waitFor((e) => e.event === 'ready');
  }

  /** Sends a command and resolves with the reply (ok or not). */
  call(cmd: Record<string, unknown>, timeoutMs = 20_000): Promise<Record<string, unknown>> {
    const seq = ++this.#seq;
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
      return Promise.resolve({ ok: false, code: 'APP_EXITED', message: 'app exited' });
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(cmd)}`)), timeoutMs);
      this.#replies.set(seq, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.proc.send({ seq, cmd });
    });
  }

  /** Like call(), but rejects unless the reply is ok. */
  async ok(cmd: Record<string, unknown>, timeoutMs?: number): Promise<Record<string, unknown>> {
    const r = await this.call(cmd, timeoutMs);
    if (!r['ok']) throw new Error(`${JSON.stringify(cmd)} failed: ${r['code']} ${r['message']}`);
    return r;
  }

  waitFor(pred: (e: AppEvent) => boolean, timeoutMs = 20_000): Promise<AppEvent> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`timed out waiting for an event; saw ${JSON.stringify(this.events.slice(-5))}`)),
        timeoutMs,
      );
      this.#waiters.push({
        pred,
        resolve: (e) => {
          clearTimeout(timer);
          resolve(e);
        },
      });
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once('exit', () => resolve());
      this.proc.kill(signal);
    });
  }
}

export async function startApp(
  socket: string,
  env?: Record<string, string>,
  script?: string,
): Promise<AppHandle> {
  const app = new AppHandle(socket, env, script);
  await app.ready();
  return app;
}

/** Polls `check` until it returns true or the time runs out (bounded). */
export async function eventually(
  check: () => Promise<boolean>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Waits for ferryd's counts (sessions, segments, listeners, fds) to come back to `base`, a stats()
 * snapshot; on timeout the error names each count's baseline and last value.
 */
export async function backToBaseline(
  daemon: DaemonHandle,
  base: Record<string, unknown>,
  what: string,
): Promise<void> {
  const keys = ['sessions', 'segments', 'listeners', 'fds'];
  let last: Record<string, unknown> = {};
  try {
    await eventually(
      async () => {
        last = await daemon.stats();
        return keys.every((k) => last[k] === base[k]);
      },
      10_000,
      what,
    );
  } catch (err) {
    const diff = keys.map((k) => `${k} ${base[k]} -> ${last[k]}`).join(', ');
    throw new Error(`${(err as Error).message} (${diff})`);
  }
}
