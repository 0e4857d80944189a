/** Cut-through sessions between real app processes through a real ferryd. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let server: AppHandle;
let client: AppHandle;
let uri = '';

before(async () => {
  d = await startDaemon();
  server = await startApp(d.socket);
  client = await startApp(d.socket);
  const r = await server.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  uri = String(r['uri']);
});

after(async () => {
  await client?.kill();
  await server?.kill();
  await d?.stop();
});

describe('cut-through echo', () => {
  test('several MiB in random chunk sizes come back intact, and ferryd moved none of them', async () => {
    const r = await client.ok({ op: 'connect', tag: 'e1', uri });
    assert.equal(r['transport'], 'ct');
    const sessions = (await d.show('sessions')) as {
      transport: string;
      daemonBytes: number;
      state: string;
    }[];
    assert.ok(sessions.length >= 2, 'both ends of the session are in ferryd');
    assert.ok(sessions.every((s) => s.transport === 'ct' && s.daemonBytes === 0));
    const total = 6 * 1024 * 1024 + 12345;
    const sent = await client.ok({ op: 'send', tag: 'e1', bytes: total, seed: 7, chunk: 65_521, end: true });
    const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'e1');
    assert.equal(end['rxBytes'], total);
    assert.equal(end['sha256'], sent['sha256']);
    await client.waitFor((e) => e.event === 'close' && e.tag === 'e1');
  });

  test('many sizes, from 1 byte to more than a fifo, each checksummed', async () => {
    const sizes = [1, 2, 63, 64, 65, 4095, 4096, 4097, 100_000, 262_144, 262_145, 1_000_003];
    for (const [i, size] of sizes.entries()) {
      const tag = `s${i}`;
      await client.ok({ op: 'connect', tag, uri });
      const chunk = 1 + ((size * 7919) % 70_001);
      const sent = await client.ok({ op: 'send', tag, bytes: size, seed: 100 + i, chunk, end: true });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === tag);
      assert.equal(end['rxBytes'], size, `size ${size}`);
      assert.equal(end['sha256'], sent['sha256'], `size ${size}`);
    }
  });
});

describe('refused and half-close', () => {
  test('connect to a port with no listener fails with ECONNREFUSED', async () => {
    const r = await client.call({ op: 'connect', tag: 'nobody', uri: 'tcp://127.0.0.1:1' });
    assert.equal(r['ok'], false);
    assert.equal(r['code'], 'ECONNREFUSED');
  });

  test('a malformed URI fails with ERR_FERRY_BAD_URI', async () => {
    const r = await client.call({ op: 'connect', tag: 'bad', uri: 'tcp://no-port' });
    assert.equal(r['ok'], false);
    assert.equal(r['code'], 'ERR_FERRY_BAD_URI');
  });

  test('client end() gives the server end; the server can still write back', async () => {
    const half = await startApp(d.socket);
    try {
      const l = await half.ok({
        op: 'listen',
        uri: 'tcp://127.0.0.1:0',
        behavior: 'reply-on-end',
        allowHalfOpen: true,
      });
      await client.ok({ op: 'connect', tag: 'h1', uri: l['uri'], allowHalfOpen: true });
      await client.ok({ op: 'send', tag: 'h1', bytes: 5000, seed: 3, chunk: 1000, end: true });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'h1');
      assert.equal(end['rxBytes'], 'got 5000'.length);
      const st = await client.ok({ op: 'stat', tag: 'h1' });
      assert.equal(st['text'], 'got 5000');
    } finally {
      await half.kill();
    }
  });

  test('server end() first: the client sees end and can still send', async () => {
    const srv = await startApp(d.socket);
    try {
      const l = await srv.ok({
        op: 'listen',
        uri: 'tcp://127.0.0.1:0',
        behavior: 'sink',
        allowHalfOpen: true,
      });
      await client.ok({ op: 'connect', tag: 'h2', uri: l['uri'], allowHalfOpen: true });
      const acc = await srv.waitFor((e) => e.event === 'accepted');
      await srv.ok({ op: 'end', tag: acc.tag, data: 'bye' });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'h2');
      assert.equal(end['rxBytes'], 3);
      const sent = await client.ok({ op: 'send', tag: 'h2', bytes: 70_000, seed: 9, chunk: 7000, end: true });
      const srvEnd = await srv.waitFor((e) => e.event === 'end' && e.tag === acc.tag);
      assert.equal(srvEnd['rxBytes'], 70_000);
      assert.equal(srvEnd['sha256'], sent['sha256']);
    } finally {
      await srv.kill();
    }
  });
});

describe('reset', () => {
  test('resetAndDestroy() on one side gives the other ECONNRESET', async () => {
    const srv = await startApp(d.socket);
    try {
      const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'sink' });
      await client.ok({ op: 'connect', tag: 'r1', uri: l['uri'] });
      const acc = await srv.waitFor((e) => e.event === 'accepted');
      await client.ok({ op: 'reset', tag: 'r1' });
      const err = await srv.waitFor((e) => e.event === 'error' && e.tag === acc.tag);
      assert.equal(err['code'], 'ECONNRESET');
    } finally {
      await srv.kill();
    }
  });
});

describe('backpressure', () => {
  test('a slow reader loses nothing, the writer sees write() return false, memory stays bounded', async () => {
    const slow = await startApp(d.socket);
    try {
      const l = await slow.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'slow' });
      await client.ok({ op: 'connect', tag: 'bp', uri: l['uri'], fifoSize: 65_536 });
      const total = 8 * 1024 * 1024;
      const sent = await client.ok(
        { op: 'send', tag: 'bp', bytes: total, seed: 11, chunk: 16_384, end: true },
        60_000,
      );
      assert.ok(Number(sent['falseReturns']) > 0, 'write() returned false while the fifo was full');
      const acc = await slow.waitFor((e) => e.event === 'accepted');
      const end = await slow.waitFor((e) => e.event === 'end' && e.tag === acc.tag, 60_000);
      assert.equal(end['rxBytes'], total);
      assert.equal(end['sha256'], sent['sha256']);
      // The writer waited for 'drain' instead of buffering: what the socket held never grew past
      // its high-water mark plus one chunk, while 8 MiB went through a 64 KiB fifo.
      assert.ok(Number(sent['maxWritableLength']) <= 16_384 + 16_384, `held ${sent['maxWritableLength']} B`);
      const stats = await d.stats();
      assert.ok(Number(stats['rssBytes']) < 200 * 1024 * 1024, 'ferryd is not buffering the stream');
    } finally {
      await slow.kill();
    }
  });
});

describe('notification modes', () => {
  for (const mode of ['interrupt', 'poll', 'adaptive'] as const) {
    test(`${mode}: 10,000 strict 64 B ping-pongs between two processes complete (no lost wakeup)`, async () => {
      const srv = await startApp(d.socket, { FERRY_MODE: mode });
      const cli = await startApp(d.socket, { FERRY_MODE: mode });
      try {
        const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
        const r = await cli.ok({ op: 'pingpong', uri: l['uri'], rounds: 10_000, size: 64 }, 30_000);
        assert.equal(r['rounds'], 10_000);
      } finally {
        await cli.kill();
        await srv.kill();
      }
    });
  }
});

describe('many sessions', () => {
  test('1,000 concurrent sessions between two apps each echo their own bytes', async () => {
    const n = 1000;
    const tags = Array.from({ length: n }, (_, i) => `m${i}`);
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        tags.slice(i, i + 50).map((tag) => client.ok({ op: 'connect', tag, uri, fifoSize: 4096 })),
      );
    }
    const stats = await d.stats();
    assert.ok(Number(stats['sessions']) >= 2 * n, `ferryd holds ${stats['sessions']} sessions`);
    const sent = await Promise.all(
      tags.map((tag, i) =>
        client.ok({ op: 'send', tag, bytes: 1000 + i, seed: 5000 + i, chunk: 512, end: true }),
      ),
    );
    for (const [i, tag] of tags.entries()) {
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === tag, 30_000);
      assert.equal(end['rxBytes'], 1000 + i);
      assert.equal(end['sha256'], sent[i]?.['sha256']);
    }
  });
});

describe('app death', () => {
  for (const victim of ['client', 'server'] as const) {
    test(`kill -9 of the ${victim} mid-transfer: the peer gets ECONNRESET and ferryd returns to baseline`, async () => {
      // Earlier tests' apps may still be being cleaned up: take the baseline once only this file's
      // two long-lived apps are attached and the counts hold still.
      let base: Record<string, unknown> = {};
      let prev = '';
      await eventually(
        async () => {
          base = await d.stats();
          const now = JSON.stringify([base['apps'], base['sessions'], base['segments'], base['fds']]);
          const settled = base['apps'] === 2 && now === prev;
          prev = now;
          return settled;
        },
        10_000,
        'a settled baseline',
      );
      const srv = await startApp(d.socket);
      const cli = await startApp(d.socket);
      const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      await cli.ok({ op: 'connect', tag: 'k', uri: l['uri'] });
      const acc = await srv.waitFor((e) => e.event === 'accepted');
      // Start a long transfer and kill while it runs.
      void cli
        .call({ op: 'send', tag: 'k', bytes: 256 * 1024 * 1024, seed: 1, chunk: 65_536 }, 60_000)
        .catch(() => {});
      await new Promise((r) => setTimeout(r, 150));
      const [dead, alive, tag] = victim === 'client' ? [cli, srv, acc.tag] : [srv, cli, 'k'];
      await dead.kill('SIGKILL');
      const err = await alive.waitFor((e) => e.event === 'error' && e.tag === tag);
      assert.equal(err['code'], 'ECONNRESET');
      await alive.kill('SIGKILL');
      let last: Record<string, unknown> = {};
      const pick = (s: Record<string, unknown>) => ({
        apps: s['apps'],
        sessions: s['sessions'],
        segments: s['segments'],
        fds: s['fds'],
      });
      await eventually(
        async () => {
          last = await d.stats();
          return JSON.stringify(pick(last)) === JSON.stringify(pick(base));
        },
        10_000,
        'ferryd counts back to baseline',
      ).catch((err: Error) => {
        throw new Error(
          `${err.message}: base ${JSON.stringify(pick(base))}, now ${JSON.stringify(pick(last))}`,
        );
      });
    });
  }
});
