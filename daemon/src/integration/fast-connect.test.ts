/**
 * Fast connects (docs/control-protocol.md, "Fast connects"): once two apps share a segment, ferryd
 * lends the pair a pool of fifo pairs and the client connects without a round trip through ferryd.
 * Real ferryd and app processes: bytes checksummed both ways, ferryd seeing and counting the
 * sessions afterwards, a connect while ferryd is stopped, pools revoked by a rule change on SIGHUP
 * (the denied connect is denied), limits counted, exhaustion falling back to ferryd, and the
 * server's death, the client's death and a ferryd restart racing fast connects.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseExposition, sampleValue } from '../testing/exposition.js';
import {
  type AppHandle,
  backToBaseline,
  type DaemonHandle,
  eventually,
  startApp,
  startDaemon,
} from '../testing/harness.js';

const cleanup: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

interface Setup {
  d: DaemonHandle;
  server: AppHandle;
  client: AppHandle;
  uri: string;
  file: string;
}

async function setup(config: Record<string, unknown> = {}, args: string[] = []): Promise<Setup> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-fast-'));
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ferryd.json');
  writeFileSync(file, JSON.stringify(config));
  const d = await startDaemon(['--config', file, ...args]);
  cleanup.push(() => d.stop());
  const server = await startApp(d.socket);
  cleanup.push(() => server.kill());
  const client = await startApp(d.socket);
  cleanup.push(() => client.kill());
  const { uri } = (await server.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' })) as {
    uri: string;
  };
  return { d, server, client, uri, file };
}

let tags = 0;
/** Connects, sends `bytes` seeded bytes and FIN, and checks the echo's checksum. */
async function echoOnce(client: AppHandle, uri: string, bytes = 64 * 1024): Promise<string> {
  const tag = `c${++tags}`;
  const r = await client.ok({ op: 'connect', tag, uri });
  assert.equal(r['transport'], 'ct');
  const sent = await client.ok({ op: 'send', tag, bytes, seed: tags, chunk: 4096, end: true });
  const end = await client.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['rxBytes'], bytes);
  assert.equal(end['sha256'], sent['sha256']);
  await client.waitFor((e) => e.event === 'close' && e.tag === tag);
  return tag;
}

async function fastOf(app: AppHandle): Promise<{ fastTaken: number; fastAccepted: number }> {
  const r = (await app.ok({ op: 'attachment' })) as {
    attachments: { fastTaken: number; fastAccepted: number }[];
  };
  const a = r.attachments[0];
  assert.ok(a);
  return a;
}

async function sessionStats(d: DaemonHandle): Promise<Record<string, number>> {
  return (await d.stats())['session'] as Record<string, number>;
}

describe('fast connects', () => {
  test('after a first connect, connects skip ferryd; bytes are intact and ferryd counts the sessions', async () => {
    const { d, server, client, uri } = await setup({}, ['--metrics', '127.0.0.1:0']);
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    await eventually(async () => (await d.stats())['sessions'] === 0, 10_000, 'the first session freed');
    const base = await d.stats();
    for (let i = 0; i < 5; i++) await echoOnce(client, uri);
    const c = await fastOf(client);
    const s = await fastOf(server);
    assert.equal(c.fastTaken, 5, 'each connect took a pair');
    assert.equal(s.fastAccepted, 5, 'the server accepted each from the event queue');
    // ferryd learns afterwards: each fast connect is a session it counted (then freed).
    await eventually(
      async () => (await sessionStats(d))['fastConnects'] === 5,
      10_000,
      'ferryd counted them',
    );
    await backToBaseline(d, base, 'fast sessions freed');
    // The metrics see them: counted as fast connects and as cut-through sessions, not as requests.
    const url = /metrics on (http:\/\/\S+)/.exec(d.output())?.[1];
    assert.ok(url, 'ferryd printed no metrics address');
    const m = parseExposition(await (await fetch(url)).text());
    assert.equal(sampleValue(m, 'ferry_fast_connects_total', {}), 5);
    assert.equal(sampleValue(m, 'ferry_sessions_opened_total', { transport: 'ct' }), 12);
    assert.equal(sampleValue(m, 'ferry_connects_total', { transport: 'ct', result: 'ok' }), 1);
    const listeners = (await d.show('listeners')) as { accepted: number }[];
    assert.equal(listeners[0]?.accepted, 6);
  });

  test('a fast connect that stays open is in ferry show sessions, both ends, with its bytes', async () => {
    const { d, client, uri } = await setup();
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    const r = await client.ok({ op: 'connect', tag: 'held', uri });
    assert.equal(r['transport'], 'ct');
    assert.equal((await fastOf(client)).fastTaken, 1);
    const local = String(r['local']);
    await client.ok({ op: 'send', tag: 'held', bytes: 5000, seed: 3, chunk: 1000 });
    await eventually(
      async () => {
        type Row = { local: string; remote: string; txBytes: number | null; rxBytes: number | null };
        const rows = (await d.show('sessions')) as Row[];
        const c = rows.find((x) => x.local.endsWith(local));
        const s = rows.find((x) => x.remote.endsWith(local));
        // The server echoes: 5000 bytes each way through the pair, as ferryd reads the fifos.
        return c?.txBytes === 5000 && c.rxBytes === 5000 && s?.txBytes === 5000 && s.rxBytes === 5000;
      },
      10_000,
      'both ends shown with their bytes',
    );
    // Every view counts the same session ends: stats.sessions and each app's sessions in ferry show
    // apps include the two live pooled ends the rows list (the table holds neither).
    let seen = '';
    await eventually(
      async () => {
        const rows = (await d.show('sessions')) as { pooled?: boolean }[];
        const total = (await d.stats())['sessions'];
        const apps = (await d.show('apps')) as { sessions: number }[];
        const byApps = apps.reduce((n, a) => n + a.sessions, 0);
        seen = `rows ${rows.length} (pooled ${rows.filter((x) => x.pooled).length}), stats ${total}, apps ${byApps}`;
        return rows.filter((x) => x.pooled).length === 2 && total === rows.length && byApps === rows.length;
      },
      10_000,
      'the same count in every view',
    ).catch((err: Error) => {
      throw new Error(`${err.message}: ${seen}`);
    });
    await client.ok({ op: 'destroy', tag: 'held' });
  });

  test('pairs are reused in place: many connects on a pool of 2, no growth, no notice, nothing left shown', async () => {
    const { d, client, uri } = await setup({ fastConnectPool: 2 });
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    await eventually(async () => (await d.stats())['sessions'] === 0, 10_000, 'the first session freed');
    const base = await d.stats();
    const ctrl = (x: Record<string, unknown>) => x['ctrl'] as Record<string, number>;
    // One at a time, each let go by both ends before the next (the server's end may close a moment
    // after the client saw its FIN): the same pairs serve every one.
    const pooledRows = async () =>
      ((await d.show('sessions')) as { pooled?: boolean }[]).filter((r) => r.pooled);
    for (let i = 0; i < 20; i++) {
      await echoOnce(client, uri, 4096);
      await eventually(async () => (await pooledRows()).length === 0, 10_000, 'both ends let go');
    }
    assert.equal((await fastOf(client)).fastTaken, 20);
    await eventually(async () => (await sessionStats(d))['fastConnects'] === 20, 10_000, 'counted');
    const now = await d.stats();
    const st = now['session'] as Record<string, number>;
    assert.equal(st['poolsGrown'], 0, 'two pairs were enough');
    assert.equal(st['poolsGranted'], 1);
    assert.equal(ctrl(now)['noticesBatched'], ctrl(base)['noticesBatched'], 'no notice reached ferryd');
    assert.equal(ctrl(now)['badMessages'] ?? 0, ctrl(base)['badMessages'] ?? 0);
    await backToBaseline(d, base, 'nothing held');
  });

  test('a fast connect needs no ferryd: it works while ferryd is stopped (SIGSTOP)', async () => {
    const { d, client, uri } = await setup();
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    d.proc.kill('SIGSTOP');
    try {
      await echoOnce(client, uri);
      await echoOnce(client, uri);
    } finally {
      d.proc.kill('SIGCONT');
    }
    await eventually(async () => (await sessionStats(d))['fastConnects'] === 2, 10_000, 'ferryd learned');
  });

  test('a rule added on SIGHUP revokes the pool: the connect it denies is denied', async () => {
    const { d, client, uri, file } = await setup({ rules: [] });
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    const port = Number(uri.split(':').pop());
    const before = d.output().split('configuration reload').length;
    writeFileSync(file, JSON.stringify({ rules: [{ action: 'deny', service: `tcp://*:${port}` }] }));
    d.proc.kill('SIGHUP');
    await eventually(async () => d.output().split('configuration reload').length > before, 10_000, 'reload');
    // The client may not have read pool-revoke yet: ferryd voided every free pair before it
    // applied nothing else, so the pair it tries is no longer its to take.
    const err = await client.ok({ op: 'connect', tag: 'denied', uri }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'the connect was not denied');
    assert.match(err.message, /ERR_FERRY_DENIED/);
    assert.equal((await fastOf(client)).fastTaken, 0);
    assert.ok(((await sessionStats(d))['poolsRevoked'] ?? 0) >= 1);
  });

  test('maxSessionsPerApp holds: pool pairs count, and the connect past the limit fails', async () => {
    const { d, client, server, uri } = await setup({ maxSessionsPerApp: 6 });
    const first = await client.ok({ op: 'connect', tag: 'first', uri });
    assert.equal(first['transport'], 'ct');
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    await client.ok({ op: 'connect-many', uri, count: 5 });
    assert.equal((await fastOf(client)).fastTaken, 5);
    const err = await client.ok({ op: 'connect', tag: 'over', uri }).then(
      () => null,
      (e: Error) => e,
    );
    assert.ok(err, 'the seventh session was allowed');
    assert.match(err.message, /ERR_FERRY_LIMIT|ECONNREFUSED/);
    const apps = (await d.show('apps')) as { sessions: number }[];
    for (const a of apps) assert.ok(a.sessions <= 6, `an app holds ${a.sessions} sessions`);
    void server;
  });

  test('an exhausted pool falls back to ferryd: every connect of a burst succeeds', async () => {
    const { d, client, uri } = await setup({ fastConnectPool: 2 });
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    await client.ok({ op: 'connect-many', uri, count: 24 });
    const st = (await client.ok({ op: 'many-stat' })) as { open: number; errors: Record<string, number> };
    assert.equal(st.open, 24);
    assert.deepEqual(st.errors, {});
    const taken = (await fastOf(client)).fastTaken;
    assert.ok(taken >= 1 && taken < 24, `fast ${taken} of 24`);
  });

  test("the server's death racing fast connects: the client fails, never hangs; ferryd's counts return", async () => {
    const { d, server, client, uri } = await setup();
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    const base = await d.stats();
    const held = await client.ok({ op: 'connect', tag: 'held', uri });
    assert.equal(held['transport'], 'ct');
    await server.kill();
    // Sent at once: the client may not have heard of the death yet and take a pair.
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      const tag = `race${i}`;
      const r = await client.ok({ op: 'connect', tag, uri }).then(
        () => 'connected',
        (e: Error) => e.message,
      );
      if (r === 'connected') {
        const e = await client.waitFor((x) => (x.event === 'error' || x.event === 'close') && x.tag === tag);
        outcomes.push(`connected then ${e.event}${e['code'] ? ` ${e['code']}` : ''}`);
      } else outcomes.push(r);
    }
    const e = await client.waitFor((x) => x.event === 'error' && x.tag === 'held');
    assert.equal(e['code'], 'ECONNRESET');
    for (const o of outcomes) assert.match(o, /ECONNREFUSED|ECONNRESET|connected then (error|close)/, o);
    const rest = { ...base, sessions: 0 };
    await backToBaseline(d, { ...rest, segments: 0, listeners: 0, fds: base['fds'] }, 'server gone').catch(
      async () => {
        // The client still maps the segment until it lets go; sessions must be gone either way.
        assert.equal((await d.stats())['sessions'], 0);
      },
    );
  });

  test("the client's death with fast sessions open: the server's sockets are reset, ferryd's counts return", async () => {
    const { d, server, client, uri } = await setup();
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    for (let i = 0; i < 3; i++) await client.ok({ op: 'connect', tag: `k${i}`, uri });
    assert.equal((await fastOf(client)).fastTaken, 3);
    await eventually(async () => (await fastOf(server)).fastAccepted === 3, 10_000, 'accepted');
    await client.kill();
    for (let i = 0; i < 3; i++) {
      await server.waitFor(
        (e) => e.event === 'close' && String(e.tag).startsWith('acc-') && e['rxBytes'] === 0,
      );
    }
    await eventually(async () => (await d.stats())['sessions'] === 0, 10_000, 'sessions freed');
  });

  test('ferryd killed with a pool lent: connects fail fast or go on app to app; after a restart they work', async () => {
    const { d, client, uri } = await setup();
    await echoOnce(client, uri);
    await eventually(async () => (await sessionStats(d))['poolsGranted'] === 1, 10_000, 'a pool lent');
    await d.kill('SIGKILL');
    const r = await client.ok({ op: 'connect', tag: 'during', uri }).then(
      () => 'connected',
      (e: Error) => e.message,
    );
    if (r === 'connected') {
      // Taken before the client heard of the death: the server accepted it, app to app.
      const sent = await client.ok({
        op: 'send',
        tag: 'during',
        bytes: 10_000,
        seed: 9,
        chunk: 1000,
        end: true,
      });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'during');
      assert.equal(end['sha256'], sent['sha256']);
    } else {
      assert.match(r, /ERR_FERRY_DAEMON_(UNREACHABLE|LOST)/);
    }
    const d2 = await startDaemon([], { socket: d.socket });
    cleanup.push(() => d2.stop());
    await eventually(
      async () =>
        client.ok({ op: 'connect', tag: `after${++tags}`, uri }).then(
          () => true,
          () => false,
        ),
      15_000,
      'a connect after the restart',
    );
  });
});
