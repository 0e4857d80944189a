/** Test helper for the examples: a private ferryd socket and processes started as a user would. */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));

export class ExampleProcs {
  readonly dir: string;
  readonly env: NodeJS.ProcessEnv;
  readonly #procs: ChildProcess[] = [];

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    this.env = { ...process.env, FERRY_SOCKET: join(this.dir, 'ferryd.sock') };
  }

  /** Starts `node ...args` and resolves once its stdout contains `marker` (10 s at most). */
  startAndWait(args: string[], marker: string): Promise<ChildProcess> {
    const p = spawn(process.execPath, args, { env: this.env, stdio: ['ignore', 'pipe', 'inherit'] });
    this.#procs.push(p);
    return new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no '${marker}' in: ${out}`)), 10_000);
      p.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(marker)) {
          clearTimeout(timer);
          resolve(p);
        }
      });
    });
  }

  stopAll(): void {
    for (const p of this.#procs) p.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}
