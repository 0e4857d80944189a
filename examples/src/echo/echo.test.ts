/** Smoke test: the echo example's server and client, as a user runs them, through a real ferryd. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
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
