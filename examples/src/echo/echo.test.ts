/** Smoke test: the echo example's server and client, as a user runs them, through a real ferryd. */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const FERRY = fileURLToPath(new URL('../../../daemon/bin/ferry.js', import.meta.url));
const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ferry-echo-'));
const env = { ...process.env, FERRY_SOCKET: join(dir, 'ferryd.sock') };
const procs: ChildProcess[] = [];

function startAndWait(args: string[], marker: string): Promise<ChildProcess> {
  const p = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'inherit'] });
  procs.push(p);
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

before(async () => {
  await startAndWait([FERRY, 'daemon'], 'listening on');
  await startAndWait([SERVER, 'tcp://127.0.0.1:7100'], 'echo server listening');
});

after(() => {
  for (const p of procs) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

test('the echo client gets its text back over a cut-through session', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLIENT, 'tcp://127.0.0.1:7100', 'ferry', 'says', 'hi'],
    {
      env,
      timeout: 10_000,
    },
  );
  assert.match(stdout, /over 'ct'/);
  assert.match(stdout, /echoed: ferry says hi/);
});
