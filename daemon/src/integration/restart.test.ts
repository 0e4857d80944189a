/**
 * ferryd killed (-9) and restarted on the same socket while apps are busy: cut-through sessions in
 * flight finish intact, apps notice at once and reattach, servers are reachable again under the
 * same URI, connects during the outage fail fast, sessions ferryd carried (TCP) end with
 * ECONNRESET.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { type Server as NetServer, connect as netConnect, createServer as netServer } from 'node:net';
import { after, before, test } from 'node:test';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { seededBytes } from '../testing/seeded.js';

let d1: DaemonHandle;
let d2: DaemonHandle | null = null;
let server: AppHandle;
let client: AppHandle;
let net: NetServer;
let netPort = 0;
let uri = '';
const apps: AppHandle[] = [];

before(async () => {
  d1 = await startDaemon();
  server = await startApp(d1.socket);
  client = await startApp(d1.socket);
  apps.push(server, client);
  uri = String((await server.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' }))['uri']);
  // A plain TCP server, reached by the client app through ferryd (ferryd carries that session).
  net = netServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => net.listen(0, '127.0.0.1', r));
  const a = net.address();
  netPort = typeof a === 'object' && a ? a.port : 0;
});

after(async () => {
  for (const a of apps) await a.kill();
  await new Promise((r) => net.close(r));
  await d2?.stop();
  await d1?.stop();
});

function sha(parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

test('kill -9 of ferryd mid-transfer, restart on the same socket: everything the issue promises', async () => {
  const slow = await startApp(d1.socket);
  apps.push(slow);
  const slowUri = String(
    (await slow.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'slow' }))['uri'],
  );

  // 1. Sessions in flight: an echo session (bytes both ways) and a stream into a slow reader that
  //    is still running when ferryd dies.
  await client.ok({ op: 'connect', tag: 'echo', uri });
  await client.ok({ op: 'connect', tag: 'stream', uri: slowUri, fifoSize: 65_536 });
  await client.ok({ op: 'connect', tag: 'tcp-out', uri: `tcp://127.0.0.1:${netPort}` });
  const remote = netConnect(Number(new URL(uri).port), '127.0.0.1');
  const remoteDone = new Promise<string>((resolve) => {
    remote.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
    remote.on('close', () => resolve('close'));
  });
  await new Promise<void>((r) => remote.once('connect', () => r()));
  const tcpIn = await server.waitFor((e) => e.event === 'accepted' && e['transport'] === 'tcp');

  const first = seededBytes(1, 3 * 1024 * 1024 + 17);
  await client.ok({ op: 'send', tag: 'echo', bytes: first.length, seed: 1, chunk: 65_536 });
  const streamBytes = 6 * 1024 * 1024;
  let streamSent = false;
  const stream = client
    .ok({ op: 'send', tag: 'stream', bytes: streamBytes, seed: 3, chunk: 16_384, end: true }, 60_000)
    .then((r) => {
      streamSent = true;
      return r;
    });
  const acc = await slow.waitFor((e) => e.event === 'accepted');
  await new Promise((r) => setTimeout(r, 200));

  await d1.kill('SIGKILL');
  assert.equal(streamSent, false, 'ferryd died while the stream was still being written');

  // 2. Every app notices at once (the control wake pipe hangs up).
  for (const a of [server, client, slow]) {
    await a.waitFor((e) => e.event === 'ferryd-lost', 2000);
  }
  await server.waitFor((e) => e.event === 'server-ferryd-lost', 2000);

  // 3. Sessions ferryd carried end with ECONNRESET, both the one the app opened and the accepted one.
  const outErr = await client.waitFor((e) => e.event === 'error' && e.tag === 'tcp-out', 5000);
  assert.equal(outErr['code'], 'ECONNRESET');
  const inErr = await server.waitFor((e) => e.event === 'error' && e.tag === tcpIn.tag, 5000);
  assert.equal(inErr['code'], 'ECONNRESET');
  const how = await remoteDone;
  assert.ok(['close', 'ECONNRESET', 'EPIPE'].includes(how), `remote end saw ${how}`);

  // 4. Connects while ferryd is away fail fast with a clear code.
  const t0 = Date.now();
  const refused = await client.call({ op: 'connect', tag: 'during', uri });
  assert.equal(refused['ok'], false);
  assert.equal(refused['code'], 'ERR_FERRY_DAEMON_UNREACHABLE');
  assert.ok(Date.now() - t0 < 2000, `failed in ${Date.now() - t0} ms`);

  // 5. The cut-through sessions kept moving: the rest of the echo goes through with no ferryd.
  const second = seededBytes(2, 2 * 1024 * 1024 + 5);
  await client.ok({ op: 'send', tag: 'echo', bytes: second.length, seed: 2, chunk: 65_521, end: true });
  const echoEnd = await client.waitFor((e) => e.event === 'end' && e.tag === 'echo', 30_000);
  assert.equal(echoEnd['rxBytes'], first.length + second.length);
  assert.equal(echoEnd['sha256'], sha([first, second]));

  // 6. ferryd comes back on the same path (the socket file of the dead one is still there).
  assert.ok(existsSync(d1.socket), 'kill -9 left the socket file behind');
  d2 = await startDaemon([], { socket: d1.socket });
  for (const a of [server, client, slow]) await a.waitFor((e) => e.event === 'reattached', 10_000);
  const re = await server.waitFor((e) => e.event === 'server-reattached', 10_000);
  assert.equal(re['uri'], uri, 'the server listens on the same URI again');

  // The stream that was in flight through the whole outage arrives intact.
  const sent = await stream;
  const streamEnd = await slow.waitFor((e) => e.event === 'end' && e.tag === acc.tag, 60_000);
  assert.equal(streamEnd['rxBytes'], streamBytes);
  assert.equal(streamEnd['sha256'], sent['sha256']);

  // 7. A new client reaches the re-registered listener through the new ferryd.
  const fresh = await startApp(d2.socket);
  apps.push(fresh);
  await fresh.ok({ op: 'connect', tag: 'new', uri });
  const again = await fresh.ok({ op: 'send', tag: 'new', bytes: 500_000, seed: 9, chunk: 8192, end: true });
  const newEnd = await fresh.waitFor((e) => e.event === 'end' && e.tag === 'new');
  assert.equal(newEnd['sha256'], again['sha256']);
  // And so does the old client, reattached.
  await client.ok({ op: 'connect', tag: 'after', uri });
  const s2 = await client.ok({ op: 'send', tag: 'after', bytes: 100_000, seed: 10, chunk: 4096, end: true });
  const afterEnd = await client.waitFor((e) => e.event === 'end' && e.tag === 'after');
  assert.equal(afterEnd['sha256'], s2['sha256']);
  // TCP through the new ferryd works too.
  await client.ok({ op: 'connect', tag: 'tcp-2', uri: `tcp://127.0.0.1:${netPort}` });
  const s3 = await client.ok({ op: 'send', tag: 'tcp-2', bytes: 50_000, seed: 11, chunk: 4096, end: true });
  const tcpEnd = await client.waitFor((e) => e.event === 'end' && e.tag === 'tcp-2');
  assert.equal(tcpEnd['sha256'], s3['sha256']);

  // Every segment of the dead ferryd was unmapped once its last session closed.
  for (const a of [client, server, slow]) {
    await eventually(
      async () => {
        const st = (await a.ok({ op: 'attachment' }))['attachments'] as {
          orphanSegments: number;
          reattaches: number;
        }[];
        return st.length === 1 && st[0]?.orphanSegments === 0 && st[0]?.reattaches === 1;
      },
      10_000,
      'orphan segments released',
    );
  }

  // 8. The new ferryd knows exactly the apps and listeners that came back.
  const d = d2;
  await eventually(async () => Number((await d.stats())['apps']) === 4, 10_000, 'four apps attached');
  const listeners = (await d.show('listeners')) as unknown[];
  assert.equal(listeners.length, 2, 'the echo and slow servers re-registered, nothing else');
});

test('a server whose ferryd is gone for a while (stopped with SIGTERM) keeps retrying with backoff and is reachable again once ferryd is back', async () => {
  const d = d2;
  assert.ok(d, 'the first test restarted ferryd');
  const a = await startApp(d.socket);
  apps.push(a);
  const b = await startApp(d.socket);
  apps.push(b);
  const l = await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  await d.kill('SIGTERM');
  await a.waitFor((e) => e.event === 'server-ferryd-lost', 2000);
  // Longer than several backoff steps: the app keeps trying until ferryd is back.
  await new Promise((r) => setTimeout(r, 1500));
  d2 = await startDaemon([], { socket: d.socket });
  await a.waitFor((e) => e.event === 'server-reattached', 10_000);
  await b.ok({ op: 'connect', tag: 'x', uri: l['uri'] });
  const s = await b.ok({ op: 'send', tag: 'x', bytes: 10_000, seed: 4, chunk: 1000, end: true });
  const end = await b.waitFor((e) => e.event === 'end' && e.tag === 'x');
  assert.equal(end['sha256'], s['sha256']);
});

test('a peer app that dies while ferryd is away: the survivor gets ECONNRESET, not a hang', async () => {
  const d = d2;
  assert.ok(d);
  const srv = await startApp(d.socket);
  apps.push(srv);
  const cli = await startApp(d.socket);
  apps.push(cli);
  const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'hold' });
  await cli.ok({ op: 'connect', tag: 'orphan', uri: l['uri'] });
  await srv.waitFor((e) => e.event === 'accepted');
  await d.kill('SIGKILL');
  await cli.waitFor((e) => e.event === 'ferryd-lost', 2000);
  await srv.kill('SIGKILL');
  const err = await cli.waitFor((e) => e.event === 'error' && e.tag === 'orphan', 5000);
  assert.equal(err['code'], 'ECONNRESET');
  d2 = await startDaemon([], { socket: d.socket });
});

test('with a reattach timeout, an app gives up: its server reports ERR_FERRY_DAEMON_LOST', async () => {
  const d = d2;
  assert.ok(d);
  const a = await startApp(d.socket, { FERRY_REATTACH_TIMEOUT_MS: '300' });
  apps.push(a);
  await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  await d.kill('SIGKILL');
  const closed = await a.waitFor((e) => e.event === 'ferryd-closed', 5000);
  assert.equal(closed['code'], 'ERR_FERRY_DAEMON_LOST');
  const err = await a.waitFor((e) => e.event === 'server-error', 5000);
  assert.equal(err['code'], 'ERR_FERRY_DAEMON_LOST');
  d2 = await startDaemon([], { socket: d.socket });
  // A later connect attaches afresh.
  const b = await startApp(d2.socket);
  apps.push(b);
  const l = await b.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  await a.ok({ op: 'connect', tag: 'fresh', uri: l['uri'] });
});

test('ferryd stopped with SIGTERM (docker stop / restart) leaves cut-through sessions in flight alone', async () => {
  const d = d2;
  assert.ok(d);
  const srv = await startApp(d.socket);
  apps.push(srv);
  const cli = await startApp(d.socket);
  apps.push(cli);
  const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  await cli.ok({ op: 'connect', tag: 'graceful', uri: l['uri'] });
  const first = seededBytes(5, 1_000_003);
  await cli.ok({ op: 'send', tag: 'graceful', bytes: first.length, seed: 5, chunk: 65_536 });
  await d.kill('SIGTERM');
  await cli.waitFor((e) => e.event === 'ferryd-lost', 2000);
  const second = seededBytes(6, 700_001);
  await cli.ok({ op: 'send', tag: 'graceful', bytes: second.length, seed: 6, chunk: 65_536, end: true });
  const end = await cli.waitFor((e) => e.event === 'end' || e.event === 'error', 30_000);
  assert.equal(end.event, 'end', JSON.stringify(end));
  assert.equal(end['rxBytes'], first.length + second.length);
  assert.equal(end['sha256'], sha([first, second]));
  d2 = await startDaemon([], { socket: d.socket });
});

test('a server whose address was taken while ferryd was away reports EADDRINUSE instead of listening', async () => {
  const d = d2;
  assert.ok(d);
  const a = await startApp(d.socket);
  apps.push(a);
  const l = await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  // Frozen, A cannot reattach before B takes its address on the new ferryd.
  a.proc.kill('SIGSTOP');
  try {
    await d.kill('SIGKILL');
    d2 = await startDaemon([], { socket: d.socket });
    const b = await startApp(d2.socket);
    apps.push(b);
    await b.ok({ op: 'listen', uri: l['uri'], behavior: 'sink' });
  } finally {
    a.proc.kill('SIGCONT');
  }
  await a.waitFor((e) => e.event === 'reattached', 10_000);
  const err = await a.waitFor((e) => e.event === 'server-error', 10_000);
  assert.equal(err['code'], 'EADDRINUSE');
});
