/** Test harness: a real ferryd and real app processes, with helpers to drive and inspect them. */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DaemonHandle } from '../test-kit/start-daemon.js';

const APP = fileURLToPath(new URL('./scriptable-app.js', import.meta.url));

export { type DaemonHandle, startDaemon } from '../test-kit/start-daemon.js';

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
