import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { FATAL_EXIT_CODE } from './fatal.js';

test('an uncaught exception in a running ferryd ends the process instead of hanging it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-fatal-'));
  const daemonUrl = new URL('./daemon.js', import.meta.url).href;
  const fatalUrl = new URL('./fatal.js', import.meta.url).href;
  const script = `
    const { Daemon } = await import(${JSON.stringify(daemonUrl)});
    const { defaultConfig } = await import('${new URL('./config.js', import.meta.url).href}');
    const { exitOnFatal } = await import(${JSON.stringify(fatalUrl)});
    const config = { ...defaultConfig(), socket: ${JSON.stringify(join(dir, 'f.sock'))} };
    const daemon = new Daemon(config).start();
    exitOnFatal(() => daemon.stop(), (l) => process.stderr.write(l));
    setTimeout(() => { throw new Error('injected'); }, 100);
  `;
  const p = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  p.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`ferryd hung after the exception: ${err}`)), 10_000);
      p.once('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.equal(code, FATAL_EXIT_CODE, err);
    assert.match(err, /fatal: Error: injected/);
  } finally {
    p.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
