/** The HTTP example through a real ferryd: curl (a plain TCP program) and an SDK client. */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { connect } from '@ferry/sdk';
import { ExampleProcs, FERRY } from '../testing/example-procs.js';

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const procs = new ExampleProcs('ferry-http-');
const { dir, env } = procs;
const run = promisify(execFile);
const hasCurl = spawnSync('sh', ['-c', 'command -v curl'], { stdio: 'ignore' }).status === 0;
let base = '';
let port = 0;

/** A port the kernel just handed out and nobody holds now. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise((r) => s.close(r));
  return typeof addr === 'object' && addr ? addr.port : 0;
}

before(async () => {
  await procs.startAndWait([FERRY, 'daemon'], 'listening on');
  port = await freePort();
  await procs.startAndWait([SERVER, `tcp://127.0.0.1:${port}`], 'http server listening');
  base = `http://127.0.0.1:${port}`;
});

after(() => {
  procs.stopAll();
});

function skipWithoutCurl(t: { skip: (m: string) => void }): boolean {
  if (hasCurl) return false;
  if (process.env['CI']) assert.fail('curl is missing (.ci/run installs it)');
  t.skip('curl is not installed');
  return true;
}

test('curl: GET, a large body, keep-alive across requests, and a 404', async (t) => {
  if (skipWithoutCurl(t)) return;
  const hello = await run('curl', ['-sS', '-m', '10', `${base}/`]);
  assert.equal(hello.stdout, 'hello from ferry\n');
  const big = await run('curl', ['-sS', '-m', '20', `${base}/bytes/3000000`], { maxBuffer: 8 << 20 });
  assert.equal(big.stdout.length, 3_000_000);
  const two = await run('curl', ['-sS', '-v', '-m', '10', `${base}/`, `${base}/nope`]);
  assert.match(two.stderr, /Re-using existing connection/);
  assert.match(two.stderr, /HTTP\/1\.1 404/);
});

test('curl: a POSTed body comes back intact', async (t) => {
  if (skipWithoutCurl(t)) return;
  const body = randomBytes(2_000_003);
  const file = join(dir, 'body.bin');
  writeFileSync(file, body);
  const out = await run('curl', ['-sS', '-m', '20', '--data-binary', `@${file}`, `${base}/echo`], {
    encoding: 'buffer',
    maxBuffer: 8 << 20,
  });
  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
  assert.equal(out.stdout.length, body.length);
  assert.equal(sha(out.stdout), sha(body));
});

test('an SDK client on the same ferryd gets the same answers over cut-through', async () => {
  const s = connect({ uri: `tcp://127.0.0.1:${port}`, socket: String(env['FERRY_SOCKET']) });
  s.end('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  let text = '';
  s.setEncoding('latin1');
  for await (const c of s) text += c;
  assert.equal(s.transport, 'ct');
  assert.match(text, /^HTTP\/1\.1 200 OK/);
  assert.match(text, /hello from ferry/);
});
