/**
 * ferryd's socket -> fifo path with kernel reads straight into the app's fifo (DirectRead), driven
 * through tiny fifos so the ring wraps and fills all the time: every read then races the fifo's
 * end, a full fifo, the scratch fallback, FIN and resets.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  type AppHandle,
  backToBaseline,
  type DaemonHandle,
  eventually,
  startApp,
  startDaemon,
} from '../testing/harness.js';
import { closeServer, collect, netConnect, netServer, sha256 } from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';

const MiB = 1024 * 1024;
const TINY = 4096;

let dir: string;
let d: DaemonHandle;
let app: AppHandle;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-direct-'));
  const file = join(dir, 'ferryd.json');
  // Accepted sessions get the default size: make it the smallest too.
  writeFileSync(file, JSON.stringify({ minFifoSizeBytes: TINY, defaultFifoSizeBytes: TINY }));
  d = await startDaemon(['--config', file]);
  app = await startApp(d.socket);
});

after(async () => {
  await app?.kill();
  await d?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const portOf = (uri: unknown) => Number(String(uri).split(':').pop());

async function tcpSessions(daemon: DaemonHandle = d): Promise<{ daemonBytes: number }[]> {
  const rows = (await daemon.show('sessions')) as { transport: string; daemonBytes: number }[];
  return rows.filter((s) => s.transport === 'tcp');
}

/** A session of `app` that is over, so the baseline holds what persists (its pair segment). */
async function warm(): Promise<void> {
  const { server, port } = await netServer((s) => s.end('warm'));
  try {
    await app.ok({ op: 'connect', tag: 'warm', uri: `tcp://127.0.0.1:${port}`, fifoSize: TINY });
    await app.waitFor((e) => e.event === 'close' && e.tag === 'warm');
    await eventually(async () => (await tcpSessions()).length === 0, 10_000, 'the warm-up session freed');
  } finally {
    await closeServer(server);
  }
}

describe('tiny fifos: checksummed MiBs both ways', () => {
  test('a node:net client through an accepted session (SDK echo listener)', async () => {
    const echo = await startApp(d.socket);
    try {
      const l = await echo.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const sock = await netConnect(portOf(l['uri']));
      const got = collect(sock);
      const data = seededBytes(51, 6 * MiB + 333);
      sock.end(data);
      const r = await got;
      assert.equal(r.how, 'end');
      assert.equal(r.bytes, data.length);
      assert.equal(r.sha256, sha256(data));
    } finally {
      await echo.kill();
    }
  });

  test('an SDK client (connected session) through a node:net echo server', async () => {
    const { server, port } = await netServer((s) => {
      s.on('data', (b: Buffer) => {
        if (!s.write(b)) {
          s.pause();
          s.once('drain', () => s.resume());
        }
      });
      s.on('end', () => s.end());
    });
    try {
      await app.ok({ op: 'connect', tag: 'c1', uri: `tcp://127.0.0.1:${port}`, fifoSize: TINY });
      const sent = await app.ok(
        { op: 'send', tag: 'c1', bytes: 6 * MiB + 4097, seed: 52, chunk: 10_007, end: true },
        60_000,
      );
      const end = await app.waitFor((e) => e.event === 'end' && e.tag === 'c1', 60_000);
      assert.equal(end['rxBytes'], 6 * MiB + 4097);
      assert.equal(end['sha256'], sent['sha256']);
    } finally {
      await closeServer(server);
    }
  });

  test('16 node:net clients at once through accepted sessions: each gets its own bytes back', async () => {
    // Sessions whose fifos are full at the same time share ferryd's scratch read buffer.
    const echo = await startApp(d.socket);
    try {
      const l = await echo.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const runs = Array.from({ length: 16 }, async (_, i) => {
        const sock = await netConnect(portOf(l['uri']));
        const got = collect(sock);
        const data = seededBytes(60 + i, 512 * 1024 + i * 4099);
        sock.end(data);
        const r = await got;
        assert.equal(r.how, 'end', `client ${i}`);
        assert.equal(r.bytes, data.length, `client ${i}`);
        assert.equal(r.sha256, sha256(data), `client ${i}`);
      });
      await Promise.all(runs);
    } finally {
      await echo.kill();
    }
  });

  test('two ferryd: SDK app on A to an SDK echo app on B, tiny fifos on both ends', async () => {
    const d2 = await startDaemon(['--config', join(dir, 'ferryd.json')]);
    const far = await startApp(d2.socket);
    try {
      const l = await far.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      await app.ok({ op: 'connect', tag: 'ab', uri: l['uri'], fifoSize: TINY });
      const sent = await app.ok(
        { op: 'send', tag: 'ab', bytes: 4 * MiB + 1, seed: 53, chunk: 65_536, end: true },
        60_000,
      );
      const end = await app.waitFor((e) => e.event === 'end' && e.tag === 'ab', 60_000);
      assert.equal(end['rxBytes'], 4 * MiB + 1);
      assert.equal(end['sha256'], sent['sha256']);
      // ferryd B counted what it moved into and out of its fifos.
      await eventually(async () => (await tcpSessions(d2)).length === 0, 10_000, 'B freed the session');
    } finally {
      await far.kill();
      await d2.stop();
    }
  });
});

describe('tiny fifos: backpressure, FIN and resets', () => {
  test('a slow SDK reader on a connected session: no loss, ferryd memory stays bounded', async () => {
    const total = 8 * MiB;
    const data = seededBytes(54, total);
    const { server, port } = await netServer((s) => s.end(data));
    try {
      const rss0 = Number((await d.stats())['rssBytes']);
      await app.ok({
        op: 'connect',
        tag: 'slow',
        uri: `tcp://127.0.0.1:${port}`,
        fifoSize: TINY,
        behavior: 'slow',
      });
      const end = await app.waitFor((e) => e.event === 'end' && e.tag === 'slow', 90_000);
      assert.equal(end['rxBytes'], total);
      assert.equal(end['sha256'], sha256(data));
      const rss1 = Number((await d.stats())['rssBytes']);
      assert.ok(rss1 - rss0 < 32 * MiB, `ferryd grew by ${((rss1 - rss0) / MiB).toFixed(1)} MiB`);
    } finally {
      await closeServer(server);
    }
  });

  test('FIN right after a burst, both directions: every byte, then end', async () => {
    // The remote writes a burst and its FIN at once: the FIN reaches ferryd while the burst still
    // waits for room in the fifo.
    const data = seededBytes(55, 3 * MiB + 5);
    const { server, port } = await netServer((s) => s.end(data));
    const sink = await startApp(d.socket);
    try {
      await app.ok({ op: 'connect', tag: 'burst', uri: `tcp://127.0.0.1:${port}`, fifoSize: TINY });
      const end = await app.waitFor((e) => e.event === 'end' && e.tag === 'burst', 60_000);
      assert.equal(end['rxBytes'], data.length);
      assert.equal(end['sha256'], sha256(data));

      const l = await sink.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'sink' });
      const sock = await netConnect(portOf(l['uri']));
      const back = collect(sock);
      sock.end(data);
      const acc = await sink.waitFor((e) => e.event === 'accepted');
      const got = await sink.waitFor((e) => e.event === 'end' && e.tag === acc.tag, 60_000);
      assert.equal(got['rxBytes'], data.length);
      assert.equal(got['sha256'], sha256(data));
      // The app ends its side in turn (no half-open): the client sees a FIN, not a reset.
      assert.equal((await back).how, 'end');
    } finally {
      await sink.kill();
      await closeServer(server);
    }
  });

  test('a remote that resets mid-read: ECONNRESET, a prefix of the stream, ferryd back to baseline', async () => {
    await warm();
    const base = await d.stats();
    const data = seededBytes(56, 4 * MiB);
    const { server, port } = await netServer((s) => {
      // Part of the stream, then RST while the SDK app (slow, tiny fifo) is still reading.
      s.write(data.subarray(0, 2 * MiB), () => setTimeout(() => s.resetAndDestroy(), 20));
    });
    try {
      await app.ok({
        op: 'connect',
        tag: 'rst',
        uri: `tcp://127.0.0.1:${port}`,
        fifoSize: TINY,
        behavior: 'slow',
      });
      const err = await app.waitFor((e) => e.event === 'error' && e.tag === 'rst', 30_000);
      assert.equal(err['code'], 'ECONNRESET');
      const st = await app.waitFor((e) => e.event === 'close' && e.tag === 'rst');
      assert.ok(Number(st['rxBytes']) <= 2 * MiB, `${st['rxBytes']} B read of the 2 MiB sent`);
      await backToBaseline(d, base, 'ferryd counts back to baseline');
    } finally {
      await closeServer(server);
    }
  });

  test('a remote that vanishes mid-read (killed, its kernel sends RST): ECONNRESET, baseline', async () => {
    await warm();
    const base = await d.stats();
    const child = spawnFirehose();
    try {
      const port = await child.port;
      await app.ok({ op: 'connect', tag: 'gone', uri: `tcp://127.0.0.1:${port}`, fifoSize: TINY });
      // Bytes the remote never reads: its kernel answers the process's death with RST, not FIN.
      await app.ok({ op: 'send', tag: 'gone', bytes: 1000, seed: 57, chunk: 1000 });
      await eventually(
        async () => (await tcpSessions()).some((s) => s.daemonBytes > 1 * MiB),
        20_000,
        'traffic from the remote',
      );
      child.proc.kill('SIGKILL');
      const err = await app.waitFor((e) => e.event === 'error' && e.tag === 'gone', 30_000);
      assert.equal(err['code'], 'ECONNRESET');
      await backToBaseline(d, base, 'ferryd counts back to baseline');
    } finally {
      child.proc.kill('SIGKILL');
    }
  });

  test('a node:net client that resets mid-write to a slow SDK listener: the app sees ECONNRESET', async () => {
    const slow = await startApp(d.socket);
    try {
      const l = await slow.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'slow' });
      const sock = await netConnect(portOf(l['uri']));
      sock.on('error', () => {});
      sock.write(seededBytes(58, 2 * MiB));
      const acc = await slow.waitFor((e) => e.event === 'accepted');
      await eventually(
        async () => Number((await slow.ok({ op: 'stat', tag: acc.tag }))['rxBytes']) > 64 * 1024,
        20_000,
        'the app to read some',
      );
      sock.resetAndDestroy();
      const err = await slow.waitFor((e) => e.event === 'error' && e.tag === acc.tag, 30_000);
      assert.equal(err['code'], 'ECONNRESET');
    } finally {
      await slow.kill();
    }
  });
});

/**
 * A node:net server in its own process that writes endlessly to whoever connects and never reads
 * (pauseOnConnect: not even into node's buffer), so the test can kill it with bytes unread in its
 * kernel, which then sends RST, deterministically.
 */
function spawnFirehose(): { proc: ChildProcess; port: Promise<number> } {
  const script = `const b = Buffer.alloc(65536, 7);
const s = require('net').createServer({ pauseOnConnect: true }, (c) => {
  c.on('error', () => {});
  const pump = () => { while (c.write(b)); };
  c.on('drain', pump);
  pump();
});
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('firehose did not start')), 10_000);
    proc.stdout?.once('data', (b: Buffer) => {
      clearTimeout(timer);
      resolve(Number(b.toString().trim()));
    });
  });
  return { proc, port };
}
