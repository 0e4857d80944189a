/**
 * Runs the unmodified programs of apps/ (and npm CLIs such as autocannon) as a user would: plain,
 * or with NODE_OPTIONS='--import @ferry/sdk/register' and FERRY_INTERCEPT.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/** The repository root: `--import @ferry/sdk/register` resolves from here, as from an app's dir. */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const app = (name: string) => fileURLToPath(new URL(`./apps/${name}.js`, import.meta.url));
export const AUTOCANNON = fileURLToPath(
  new URL('../../../node_modules/autocannon/autocannon.js', import.meta.url),
);

export interface RunOptions {
  /** Under the hook, with these FERRY_INTERCEPT addresses; plain (kernel only) when absent. */
  intercept?: string;
  env?: Record<string, string>;
}

export interface Proc {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout contains `marker` (15 s at most). */
  waitFor(marker: string): Promise<void>;
  /** Resolves with the exit code (60 s at most, then the process is killed). */
  exited(): Promise<number | null>;
  kill(): void;
}

export function runNode(args: string[], opts: RunOptions = {}): Proc {
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  delete env['NODE_OPTIONS'];
  delete env['FERRY_INTERCEPT'];
  if (opts.intercept !== undefined) {
    env['NODE_OPTIONS'] = '--import @ferry/sdk/register';
    env['FERRY_INTERCEPT'] = opts.intercept;
  }
  const proc = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => {
    proc.once('exit', (code) => resolve(code));
  });
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitFor: (marker) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (out.includes(marker)) {
            clearInterval(iv);
            clearTimeout(timer);
            proc.off('exit', onExit);
            resolve();
          }
        };
        const onExit = () => {
          clearInterval(iv);
          clearTimeout(timer);
          reject(new Error(`exited before '${marker}': ${out}\n${err}`));
        };
        const timer = setTimeout(() => {
          clearInterval(iv);
          reject(new Error(`no '${marker}' within 15 s: ${out}\n${err}`));
        }, 15_000);
        const iv = setInterval(check, 20);
        proc.once('exit', onExit);
        check();
      }),
    exited: () => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
      return exit.finally(() => clearTimeout(timer));
    },
    kill: () => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    },
  };
}

/** A port the kernel just handed out and nobody holds now. */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const a = s.address();
  await new Promise((r) => s.close(r));
  return typeof a === 'object' && a ? a.port : 0;
}

/** The last line of `text` that parses as JSON. */
export function lastJson(text: string): unknown {
  const lines = text.trim().split('\n').reverse();
  for (const l of lines) {
    try {
      return JSON.parse(l);
    } catch {}
  }
  throw new Error(`no JSON line in: ${text}`);
}
