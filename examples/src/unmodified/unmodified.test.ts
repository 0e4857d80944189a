/**
 * Transparent mode with unmodified programs: each pair runs once plainly (kernel TCP) and once
 * under NODE_OPTIONS='--import @ferry/sdk/register'; what the programs report must be the same,
 * and ferryd's counters prove the hooked run went app to app by cut-through (sessions accepted by
 * a Ferry listener with no kernel TCP connection or accept by ferryd), while `show sessions`
 * lists the open ones as 'ct'.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type DaemonHandle, makeTestCerts, startDaemon, type TestCerts } from '@ferry/daemon/testing';
import { hasBinary } from '../testing/has-binary.js';
import { AUTOCANNON, app, freePort, lastJson, type Proc, runNode } from './procs.js';

let daemon: DaemonHandle;
let certs: TestCerts | null = null;
const running: Proc[] = [];
const run = promisify(execFile);

type Counters = { connects: number; accepted: number; tcpConnects: number; tcpAccepts: number };

before(async () => {
  daemon = await startDaemon();
  if (hasBinary('openssl')) certs = makeTestCerts();
});

after(async () => {
  for (const p of running) p.kill();
  await daemon.stop();
  certs?.remove();
});

/** The test certificates, or a skip (a failure in CI) without openssl. */
function needCerts(t: { skip: (m: string) => void }): TestCerts | null {
  if (certs) return certs;
  if (process.env['CI']) assert.fail('openssl is missing (.ci/run installs it)');
  t.skip('openssl is not installed (needed to make a test certificate)');
  return null;
}

/**
 * Runs a server/client pair plainly, then under the hook (FERRY_INTERCEPT naming the server's
 * address); returns what the client printed both times and what ferryd did in the hooked run.
 */
async function pair(server: (port: number) => string[], client: (port: number) => string[]) {
  const port = await freePort();
  const once = async (intercept?: string) => {
    const s = start(server(port), intercept);
    await s.waitFor('listening');
    const c = start(client(port), intercept);
    assert.equal(await c.exited(), 0, c.stderr());
    await stop(s);
    return lastJson(c.stdout());
  };
  const plain = await once();
  const c0 = await counters();
  const hooked = await once(`127.0.0.1:${port}`);
  return { plain, hooked, ferryd: delta(c0, await counters()) };
}

function start(args: string[], intercept?: string): Proc {
  const p = runNode(args, {
    ...(intercept !== undefined ? { intercept } : {}),
    env: { FERRY_SOCKET: daemon.socket },
  });
  running.push(p);
  return p;
}

async function counters(): Promise<Counters> {
  return (await daemon.stats())['session'] as Counters;
}

/** What ferryd did between two counter snapshots. */
function delta(a: Counters, b: Counters) {
  return {
    cutThrough: b.accepted - a.accepted - (b.tcpAccepts - a.tcpAccepts),
    tcpConnects: b.tcpConnects - a.tcpConnects,
    tcpAccepts: b.tcpAccepts - a.tcpAccepts,
  };
}

async function stop(p: Proc): Promise<void> {
  p.kill();
  await p.exited();
}

test('node:net echo pair (new net.Socket().connect()): same observations, cut-through', async () => {
  const port = await freePort();
  const once = async (intercept?: string) => {
    const server = start([app('net-echo-server'), String(port)], intercept);
    await server.waitFor('listening');
    const client = start([app('net-echo-client'), String(port), '3000000'], intercept);
    assert.equal(await client.exited(), 0, client.stderr());
    await stop(server);
    return lastJson(client.stdout());
  };
  const plain = await once();
  const c0 = await counters();
  const hooked = await once(`127.0.0.1:${port}`);
  const d = delta(c0, await counters());
  assert.deepEqual(hooked, plain);
  assert.deepEqual(plain, {
    events: ['connect', 'end', 'finish', 'close false'],
    received: 3_000_000,
    intact: true,
    isNetSocket: true,
    remoteAtConnect: `127.0.0.1:${port} IPv4`,
    remoteAtClose: `127.0.0.1:${port}`,
    local: 'gone',
  });
  assert.deepEqual(d, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

for (const framework of ['fastify', 'express']) {
  test(`${framework} server and a fetch client: same answers, cut-through, curl still reaches it`, async () => {
    const port = await freePort();
    const once = async (intercept?: string) => {
      const server = start([app(`${framework}-server`), String(port)], intercept);
      await server.waitFor('listening');
      const client = start([app('fetch-client'), `http://127.0.0.1:${port}`], intercept);
      await client.waitFor('done');
      // The client holds its keep-alive connections open until stdin closes.
      const sessions = (await daemon.show('sessions')) as {
        transport: string;
        local: string;
        remote: string;
      }[];
      const mine = sessions.filter((s) => s.local.endsWith(`:${port}`) || s.remote.endsWith(`:${port}`));
      let curl: string | null = null;
      if (intercept !== undefined && hasBinary('curl')) {
        curl = (await run('curl', ['-sS', '-m', '10', `http://127.0.0.1:${port}/hello`])).stdout;
      }
      client.proc.stdin?.end();
      assert.equal(await client.exited(), 0, client.stderr());
      await stop(server);
      return { result: lastJson(client.stdout().replace(/\ndone\s*$/, '')), mine, curl };
    };
    const plain = await once();
    assert.deepEqual(plain.mine, [], 'the plain run does not touch ferryd');
    const c0 = await counters();
    const hooked = await once(`127.0.0.1:${port}`);
    const d = delta(c0, await counters());
    assert.deepEqual(hooked.result, plain.result);
    const results = plain.result as { status: number; length: number }[];
    assert.equal(results.length, 24);
    assert.deepEqual(
      results.slice(0, 4).map((r) => [r.status, r.length]),
      [
        [200, 17],
        [200, 100_000],
        [200, 1_000_000],
        [404, results[3]?.length],
      ],
    );
    // Open sessions while the client waited: cut-through ones, both ends listed, none via TCP.
    assert.ok(hooked.mine.length >= 2, JSON.stringify(hooked.mine));
    assert.ok(
      hooked.mine.every((s) => s.transport === 'ct'),
      JSON.stringify(hooked.mine),
    );
    // curl is a plain program: ferryd's kernel listener on the same port serves it.
    if (hooked.curl !== null) {
      assert.equal(hooked.curl, '{"hello":"world"}');
      assert.equal(d.tcpAccepts, 1);
    } else if (process.env['CI']) {
      assert.fail('curl is missing (.ci/run installs it)');
    }
    assert.ok(d.cutThrough >= 1, JSON.stringify(d));
    assert.equal(d.tcpConnects, 0);
  });
}

test('ws server and client: same messages, cut-through', async () => {
  const port = await freePort();
  const once = async (intercept?: string) => {
    const server = start([app('ws-server'), String(port)], intercept);
    await server.waitFor('listening');
    const client = start([app('ws-client'), `ws://127.0.0.1:${port}/`], intercept);
    assert.equal(await client.exited(), 0, client.stderr());
    await stop(server);
    return lastJson(client.stdout());
  };
  const plain = await once();
  const c0 = await counters();
  const hooked = await once(`127.0.0.1:${port}`);
  const d = delta(c0, await counters());
  assert.deepEqual(hooked, plain);
  assert.equal((plain as { code: number }).code, 1000);
  assert.equal((plain as { got: unknown[] }).got.length, 14);
  assert.deepEqual(d, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

test('autocannon (its connections intercepted too) against fastify: same counts, cut-through', async () => {
  const port = await freePort();
  const once = async (intercept?: string) => {
    const server = start([app('fastify-server'), String(port)], intercept);
    await server.waitFor('listening');
    const ac = start([AUTOCANNON, '-c', '4', '-a', '400', '-j', `http://127.0.0.1:${port}/hello`], intercept);
    assert.equal(await ac.exited(), 0, ac.stderr());
    await stop(server);
    const r = lastJson(ac.stdout()) as Record<string, unknown>;
    return {
      total: (r['requests'] as { total: number }).total,
      ok: r['2xx'],
      non2xx: r['non2xx'],
      errors: r['errors'],
      timeouts: r['timeouts'],
    };
  };
  const plain = await once();
  const c0 = await counters();
  const hooked = await once(`127.0.0.1:${port}`);
  const d = delta(c0, await counters());
  assert.deepEqual(plain, { total: 400, ok: 400, non2xx: 0, errors: 0, timeouts: 0 });
  assert.deepEqual(hooked, plain);
  assert.deepEqual(d, { cutThrough: 4, tcpConnects: 0, tcpAccepts: 0 });
});

test('ferryd absent: the kernel takes over with one warning; FERRY_INTERCEPT_FALLBACK=fail fails instead', async () => {
  const port = await freePort();
  const env = { FERRY_SOCKET: `${daemon.socket}.absent` };
  const server = runNode([app('net-echo-server'), String(port)], { intercept: `127.0.0.1:${port}`, env });
  running.push(server);
  await server.waitFor('listening');
  const client = runNode([app('net-echo-client'), String(port), '100000'], { intercept: '127.0.0.1:*', env });
  running.push(client);
  assert.equal(await client.exited(), 0, client.stderr());
  assert.equal((lastJson(client.stdout()) as { intact: boolean }).intact, true);
  for (const p of [server, client]) {
    assert.equal(p.stderr().match(/Warning: ferryd is not reachable/g)?.length, 1, p.stderr());
  }
  await stop(server);

  const failing = runNode([app('net-echo-server'), String(port)], {
    intercept: `127.0.0.1:${port}`,
    env: { ...env, FERRY_INTERCEPT_FALLBACK: 'fail' },
  });
  running.push(failing);
  assert.notEqual(await failing.exited(), 0);
  assert.match(failing.stderr(), /ERR_FERRY_DAEMON_UNREACHABLE/);
});

test('node:http server and a node:http client (global agent, keep-alive): same answers, cut-through', async () => {
  const r = await pair(
    (port) => [app('http-server'), String(port)],
    (port) => [app('http-client'), `http://127.0.0.1:${port}`],
  );
  assert.deepEqual(r.hooked, r.plain);
  const results = r.plain as { status: number; length: number }[];
  assert.deepEqual(
    results.map((x) => [x.status, x.length]),
    [[200, 17], [200, 500_000], [200, 700_000], ...Array.from({ length: 8 }, () => [200, 17])],
  );
  assert.equal(r.ferryd.tcpConnects + r.ferryd.tcpAccepts, 0);
  assert.ok(r.ferryd.cutThrough >= 1 && r.ferryd.cutThrough <= 8, JSON.stringify(r.ferryd));
});

test('a database driver (ioredis, unmodified) against a RESP server: same replies, cut-through', async () => {
  const r = await pair(
    (port) => [app('fake-redis'), String(port)],
    (port) => [app('redis-client'), String(port)],
  );
  assert.deepEqual(r.hooked, r.plain);
  assert.deepEqual(r.plain, {
    pong: 'PONG',
    greeting: 'hello',
    bigIntact: true,
    lastIncr: 200,
    unknown: "ERR unknown command 'FLUSHALL'",
  });
  assert.deepEqual(r.ferryd, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

test('node:https server and client: TLS end to end over a cut-through session', async (t) => {
  const c = needCerts(t);
  if (!c) return;
  const r = await pair(
    (port) => [app('https-server'), String(port), c.certFile, c.keyFile],
    (port) => [app('https-client'), `https://localhost:${port}`, c.caFile],
  );
  assert.deepEqual(r.hooked, r.plain);
  assert.deepEqual(
    r.plain,
    [
      'GET /a 0 bytes, tls TLSv1.3 authorized true',
      'POST /b 300000 bytes, tls TLSv1.3 authorized true',
      'GET /c 0 bytes, tls TLSv1.3 authorized true',
    ].map((x) => `200 ${x}`),
  );
  assert.deepEqual(r.ferryd, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

test('STARTTLS (plain connect, then TLS on the same socket, both sides): same bytes, cut-through', async (t) => {
  const c = needCerts(t);
  if (!c) return;
  const r = await pair(
    (port) => [app('starttls-server'), String(port), c.certFile, c.keyFile],
    (port) => [app('starttls-client'), String(port), c.caFile],
  );
  assert.deepEqual(r.hooked, r.plain);
  assert.equal((r.plain as { length: number }).length, 200_000);
  assert.equal((r.plain as { authorized: boolean }).authorized, true);
  assert.deepEqual(r.ferryd, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

test('a worker thread’s fetch is intercepted too (node runs --import in each worker)', async () => {
  const r = await pair(
    (port) => [app('http-server'), String(port)],
    (port) => [app('worker-fetch'), `http://127.0.0.1:${port}/hello`],
  );
  assert.deepEqual(r.hooked, r.plain);
  assert.deepEqual(r.plain, { status: 200, body: '{"hello":"world"}' });
  assert.deepEqual(r.ferryd, { cutThrough: 1, tcpConnects: 0, tcpAccepts: 0 });
});

test('ferryd under the same NODE_OPTIONS and FERRY_INTERCEPT=*:* leaves its own sockets alone', async () => {
  const hookedDaemon = await startDaemon([], {
    env: { NODE_OPTIONS: '--import @ferry/sdk/register', FERRY_INTERCEPT: '*:*' },
  });
  try {
    const port = await freePort();
    const env = { FERRY_SOCKET: hookedDaemon.socket };
    const server = runNode([app('net-echo-server'), String(port)], { intercept: `127.0.0.1:${port}`, env });
    running.push(server);
    await server.waitFor('listening');
    // A plain client reaches the hooked server through this ferryd's kernel listener.
    const client = runNode([app('net-echo-client'), String(port), '200000'], { env });
    running.push(client);
    assert.equal(await client.exited(), 0, client.stderr());
    assert.equal((lastJson(client.stdout()) as { intact: boolean }).intact, true);
    const s = (await hookedDaemon.stats())['session'] as Counters;
    assert.equal(s.tcpAccepts, 1);
    assert.doesNotMatch(hookedDaemon.output(), /FERRY_INTERCEPT/);
    await stop(server);
  } finally {
    await hookedDaemon.stop();
  }
});
