/** Smoke test: the echo example's server and client, as a user runs them, through a real ferryd. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ExampleProcs, FERRY } from '../testing/example-procs.js';

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const CLIENT = fileURLToPath(new URL('./client.js', import.meta.url));
const procs = new ExampleProcs('ferry-echo-');
const env = procs.env;

before(async () => {
  await procs.startAndWait([FERRY, 'daemon'], 'listening on');
  await procs.startAndWait([SERVER, 'tcp://127.0.0.1:7100'], 'echo server listening');
});

after(() => procs.stopAll());

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

test('the verify client checks a multi-chunk echo by digest and reports the transport', async () => {
  const VERIFY = fileURLToPath(new URL('./verify.js', import.meta.url));
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [
      VERIFY,
      'tcp://127.0.0.1:7100',
      '--bytes',
      String(3 * 1024 * 1024 + 17),
      '--chunk',
      '65536',
      '--progress-file',
      join(procs.dir, 'progress'),
    ],
    { env, timeout: 20_000 },
  );
  const progress = Number(readFileSync(join(procs.dir, 'progress'), 'utf8'));
  assert.ok(progress >= 2 * 1024 * 1024 && progress <= 3 * 1024 * 1024 + 17, `progress ${progress}`);
  const [first = '', last = ''] = stdout.trim().split('\n');
  assert.deepEqual(JSON.parse(first), { connected: true, transport: 'ct', uri: 'tcp://127.0.0.1:7100' });
  const r = JSON.parse(last) as { ok: boolean; bytes: number; sent: number; transport: string };
  assert.equal(r.ok, true);
  assert.equal(r.bytes, 3 * 1024 * 1024 + 17);
  assert.equal(r.sent, r.bytes);
  assert.equal(r.transport, 'ct');
});

test('the verify client reports a refused connect as JSON with its code and exits 1', async () => {
  const VERIFY = fileURLToPath(new URL('./verify.js', import.meta.url));
  await assert.rejects(
    promisify(execFile)(process.execPath, [VERIFY, 'tcp://127.0.0.1:1', '--bytes', '10'], {
      env,
      timeout: 20_000,
    }),
    (err) => {
      const e = err as { code?: number; stdout?: string };
      assert.equal(e.code, 1);
      const r = JSON.parse((e.stdout ?? '').trim()) as { ok: boolean; code: string };
      assert.equal(r.ok, false);
      assert.equal(r.code, 'ECONNREFUSED');
      return true;
    },
  );
});
