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
import { makeTestCerts, type TestCerts } from '@ferry/daemon/testing';
import { connect } from '@ferry/sdk';
import { ExampleProcs, FERRY } from '../testing/example-procs.js';

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url));
const procs = new ExampleProcs('ferry-http-');
const { dir, env } = procs;
const run = promisify(execFile);
const has = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const hasCurl = has('curl');
let base = '';
let port = 0;
/** The same server listening in handoff mode: ferryd hands it each kernel connection. */
let handoffBase = '';
let handoffPort = 0;
let certs: TestCerts | null = null;
let tlsPort = 0;

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
  handoffPort = await freePort();
  // The env is copied when the process is spawned: only this server asks for handoff.
  env['FERRY_TCP_MODE'] = 'handoff';
  await procs.startAndWait([SERVER, `tcp://127.0.0.1:${handoffPort}`], 'http server listening');
  delete env['FERRY_TCP_MODE'];
  handoffBase = `http://127.0.0.1:${handoffPort}`;
  // The same server on tls://: ferryd terminates TLS with a certificate made for this run.
  if (has('openssl')) {
    certs = makeTestCerts();
    tlsPort = await freePort();
    await procs.startAndWait(
      [SERVER, `tls://127.0.0.1:${tlsPort}`, '--cert', certs.certFile, '--key', certs.keyFile],
      'http server listening',
    );
  }
});

after(() => {
  procs.stopAll();
  certs?.remove();
});

function skipWithoutCurl(t: { skip: (m: string) => void }): boolean {
  if (hasCurl) return false;
  if (process.env['CI']) assert.fail('curl is missing (.ci/run installs it)');
  t.skip('curl is not installed');
  return true;
}

/** Both modes of tcp://: ferryd relays the server's connections, or hands them to it. */
const MODES = [
  ['relay', () => base],
  ['handoff', () => handoffBase],
] as const;

test('the handoff server’s listener hands kernel connections over (ferry show listeners)', async () => {
  const out = await run(process.execPath, [FERRY, 'show', 'listeners', '--json'], { env });
  const listeners = JSON.parse(out.stdout) as { uri: string; transports: string[] }[];
  const byPort = (p: number) => listeners.find((l) => l.uri.endsWith(`:${p}`))?.transports;
  assert.deepEqual(byPort(port), ['ct', 'tcp']);
  assert.deepEqual(byPort(handoffPort), ['ct', 'tcp-handoff']);
});

for (const [mode, baseOf] of MODES) {
  test(`curl (${mode}): GET, a large body, keep-alive across requests, and a 404`, async (t) => {
    if (skipWithoutCurl(t)) return;
    const base = baseOf();
    const hello = await run('curl', ['-sS', '-m', '10', `${base}/`]);
    assert.equal(hello.stdout, 'hello from ferry\n');
    const big = await run('curl', ['-sS', '-m', '20', `${base}/bytes/3000000`], { maxBuffer: 8 << 20 });
    assert.equal(big.stdout.length, 3_000_000);
    const two = await run('curl', ['-sS', '-v', '-m', '10', `${base}/`, `${base}/nope`]);
    assert.match(two.stderr, /Re-using existing connection/);
    assert.match(two.stderr, /HTTP\/1\.1 404/);
  });

  test(`curl (${mode}): a POSTed body comes back intact`, async (t) => {
    if (skipWithoutCurl(t)) return;
    const base = baseOf();
    const body = randomBytes(2_000_003);
    const file = join(dir, `body-${mode}.bin`);
    writeFileSync(file, body);
    const out = await run('curl', ['-sS', '-m', '20', '--data-binary', `@${file}`, `${base}/echo`], {
      encoding: 'buffer',
      maxBuffer: 8 << 20,
    });
    const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
    assert.equal(out.stdout.length, body.length);
    assert.equal(sha(out.stdout), sha(body));
  });
}

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

test('curl --cacert: HTTPS through ferryd’s TLS, certificate verified, bodies intact', async (t) => {
  if (skipWithoutCurl(t)) return;
  if (!certs) {
    if (process.env['CI']) assert.fail('openssl is missing (.ci/run installs it)');
    t.skip('openssl is not installed (needed to make a test certificate)');
    return;
  }
  const url = `https://localhost:${tlsPort}`;
  const hello = await run('curl', ['-sS', '-v', '-m', '10', '--cacert', certs.caFile, `${url}/`]);
  assert.equal(hello.stdout, 'hello from ferry\n');
  assert.match(hello.stderr, /SSL certificate verify ok/);
  const big = await run('curl', ['-sS', '-m', '20', '--cacert', certs.caFile, `${url}/bytes/3000000`], {
    maxBuffer: 8 << 20,
  });
  assert.equal(big.stdout, 'x'.repeat(3_000_000));
  // Without the CA, curl refuses the certificate (exit 60): verification is real.
  const refused = await run('curl', ['-sS', '-m', '10', `${url}/`]).then(
    () => 0,
    (err: { code?: number }) => err.code ?? -1,
  );
  assert.equal(refused, 60);
});

for (const [mode, baseOf] of MODES) {
  test(`wrk (${mode}): a bounded run against the HTTP example, no socket errors and no non-2xx answers`, async (t) => {
    const base = baseOf();
    if (!has('wrk')) {
      if (process.env['CI']) assert.fail('wrk is missing (.ci/run installs it)');
      t.skip('wrk is not installed');
      return;
    }
    const out = await run('wrk', ['-t1', '-c8', '-d3s', '--timeout', '5s', `${base}/`], { timeout: 30_000 });
    const requests = Number(/(\d+) requests in/.exec(out.stdout)?.[1] ?? 0);
    assert.ok(requests > 0, out.stdout);
    assert.doesNotMatch(out.stdout, /Socket errors/, out.stdout);
    assert.doesNotMatch(out.stdout, /Non-2xx or 3xx responses/, out.stdout);
  });
}
