/**
 * ferryd's Prometheus endpoint against real traffic: cut-through, TCP both ways and UDP through the
 * relay, counted exactly; off by default; bound only where told. /metrics is read with a strict
 * parser of the exposition format (testing/exposition.ts), never by regex.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnectRaw } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { createDatagramSocket } from '@ferry/sdk';
import { type Family, parseExposition, sampleValue } from '../testing/exposition.js';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { collect, netConnect, netServer } from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';

async function scrape(url: string): Promise<Map<string, Family>> {
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

function metricsUrl(d: DaemonHandle): string {
  const m = /metrics on (http:\/\/\S+)/.exec(d.output());
  assert.ok(m, `ferryd printed no metrics address: ${d.output()}`);
  return m[1] as string;
}

/** TCP sockets in LISTEN state owned by `pid`, as 'addr:port' in /proc/net/tcp{,6} hex. */
function listeningTcpOf(pid: number): string[] {
  const inodes = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1] as string);
    } catch {}
  }
  const out: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(table, 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && inodes.has(f[9] ?? '')) out.push(f[1] as string);
    }
  }
  return out;
}

describe('metrics are off by default', () => {
  test('ferryd without --metrics prints no endpoint and listens on no TCP port', async () => {
    const d = await startDaemon();
    try {
      assert.doesNotMatch(d.output(), /metrics on/);
      assert.deepEqual(listeningTcpOf(d.proc.pid as number), []);
    } finally {
      await d.stop();
    }
  });

  test('metrics.listen in the configuration file turns it on there', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-metrics-'));
    try {
      const file = join(dir, 'ferryd.json');
      writeFileSync(file, JSON.stringify({ metrics: { listen: '127.0.0.1:0' } }));
      const d = await startDaemon(['--config', file]);
      try {
        const m = await scrape(metricsUrl(d));
        assert.equal(sampleValue(m, 'ferry_sessions', { transport: 'ct' }), 0);
      } finally {
        await d.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a bad address is refused at start with a clear error', async () => {
    await assert.rejects(startDaemon(['--metrics', '9464']), /cannot serve metrics: .*HOST:PORT/);
  });
});

describe('metrics endpoint', () => {
  let d: DaemonHandle;
  let url = '';
  let server: AppHandle;
  let client: AppHandle;
  let ctUri = '';
  let tcpPort = 0;

  before(async () => {
    d = await startDaemon(['--metrics', '127.0.0.1:0']);
    url = metricsUrl(d);
    server = await startApp(d.socket);
    client = await startApp(d.socket);
    const r = await server.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    ctUri = String(r['uri']);
    tcpPort = Number(ctUri.split(':').at(-1));
  });

  after(async () => {
    await client?.kill();
    await server?.kill();
    await d?.stop();
  });

  test('binds only the address given: 127.0.0.1 answers, 127.0.0.2 on the same port does not', async () => {
    const port = Number(new URL(url).port);
    assert.equal(new URL(url).hostname, '127.0.0.1');
    const listening = listeningTcpOf(d.proc.pid as number);
    // 0100007F is 127.0.0.1 in /proc/net/tcp's byte order.
    assert.ok(
      listening.includes(`0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`),
      listening.join(),
    );
    const refused = await new Promise<string>((resolve) => {
      const s = netConnectRaw({ host: '127.0.0.2', port });
      s.once('connect', () => {
        s.destroy();
        resolve('connected');
      });
      s.once('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
    });
    assert.equal(refused, 'ECONNREFUSED');
    assert.equal((await fetch(url.replace('/metrics', '/'))).status, 404);
    assert.equal((await fetch(url, { method: 'POST' })).status, 405);
  });

  test('cut-through bytes are counted exactly from the fifo indices, with sessions and connects', async () => {
    const before = await scrape(url);
    // The SDK attaches on first use: the client has not yet.
    assert.equal(sampleValue(before, 'ferry_apps', { namespace: 'default' }), 1);
    const n = 3 * 1024 * 1024 + 4321; // more than the 1 MiB fifo: the indices go round
    const r = await client.ok({ op: 'connect', tag: 'ct1', uri: ctUri });
    assert.equal(r['transport'], 'ct');
    await client.ok({ op: 'send', tag: 'ct1', bytes: n, seed: 3, chunk: 50_000, end: true });
    const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'ct1');
    assert.equal(end['rxBytes'], n);
    assert.equal(sampleValue(await scrape(url), 'ferry_apps', { namespace: 'default' }), 2);
    let m = before;
    await eventually(
      async () => {
        m = await scrape(url);
        return sampleValue(m, 'ferry_sessions_closed_total', { transport: 'ct', result: 'closed' }) === 2;
      },
      10_000,
      'both ends of the session closed',
    );
    // The client wrote n and read the echo; the server read n and wrote it back.
    assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'ct', direction: 'tx' }), 2 * n);
    assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'ct', direction: 'rx' }), 2 * n);
    assert.equal(sampleValue(m, 'ferry_sessions_opened_total', { transport: 'ct' }), 2);
    assert.equal(sampleValue(m, 'ferry_sessions', { transport: 'ct' }), 0);
    assert.equal(sampleValue(m, 'ferry_connects_total', { transport: 'ct', result: 'ok' }), 1);
    assert.equal(
      sampleValue(m, 'ferry_connect_duration_seconds_count', { transport: 'ct', result: 'ok' }),
      1,
    );
    assert.equal(sampleValue(m, 'ferry_fifos_corrupt_total'), 0);
    // Nothing of it went through ferryd's pumps.
    assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'tcp', direction: 'tx' }), 0);
  });

  test('while a session is open, `ferry show sessions` has its bytes each way and its fifo fill', async () => {
    await client.ok({ op: 'connect', tag: 'ct2', uri: ctUri });
    await client.ok({ op: 'send', tag: 'ct2', bytes: 10_000, seed: 4, chunk: 10_000 });
    await eventually(async () => Number((await client.ok({ op: 'stat', tag: 'ct2' }))['rxBytes']) === 10_000);
    // A connect between two apps that already share a segment is a fast connect: ferryd hears of
    // it from a notice after the apps, so its table may lag the apps' own counters by a moment.
    let ends: Record<string, unknown>[] = [];
    await eventually(
      async () => {
        const rows = (await d.show('sessions')) as Record<string, unknown>[];
        ends = rows.filter((s) => s['transport'] === 'ct');
        return ends.length === 2 && ends.every((s) => s['txBytes'] === 10_000 && s['rxBytes'] === 10_000);
      },
      10_000,
      'ferryd to list both ends with their bytes',
    );
    assert.equal(ends.length, 2);
    for (const s of ends) {
      assert.equal(s['txBytes'], 10_000);
      assert.equal(s['rxBytes'], 10_000);
      assert.equal(s['txFill'], '0/1048576');
      assert.equal(s['stuck'], false);
      assert.equal(s['fifoError'], null);
    }
    await client.ok({ op: 'end', tag: 'ct2' });
    await client.waitFor((e) => e.event === 'close' && e.tag === 'ct2');
  });

  test('TCP: a kernel client of an app listener and an app connecting out, counted exactly', async () => {
    const before = await scrape(url);
    const txBefore = sampleValue(before, 'ferry_bytes_total', { transport: 'tcp', direction: 'tx' });
    const rxBefore = sampleValue(before, 'ferry_bytes_total', { transport: 'tcp', direction: 'rx' });
    // In: a node:net client sends `a` bytes to the app's echo listener through ferryd.
    const a = 700_001;
    const sock = await netConnect(tcpPort);
    const got = collect(sock);
    sock.end(seededBytes(5, a));
    assert.equal((await got).bytes, a);
    // Out: the app connects to a node:net server that sends `b` bytes and closes.
    const b = 250_000;
    const { server: peer, port } = await netServer((s) => s.end(seededBytes(6, b)));
    try {
      await client.ok({ op: 'connect', tag: 'out', uri: `tcp://127.0.0.1:${port}` });
      await client.waitFor((e) => e.event === 'close' && e.tag === 'out');
    } finally {
      peer.close();
    }
    const refused = await client.call({ op: 'connect', tag: 'nobody', uri: 'tcp://127.0.0.1:1' });
    assert.equal(refused['code'], 'ECONNREFUSED');
    let m = before;
    await eventually(
      async () => {
        m = await scrape(url);
        return sampleValue(m, 'ferry_sessions', { transport: 'tcp' }) === 0;
      },
      10_000,
      'the tcp sessions to end',
    );
    assert.equal(
      sampleValue(m, 'ferry_bytes_total', { transport: 'tcp', direction: 'rx' }) - rxBefore,
      a + b,
    );
    assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'tcp', direction: 'tx' }) - txBefore, a);
    assert.equal(sampleValue(m, 'ferry_connects_total', { transport: 'tcp', result: 'ok' }), 1);
    assert.equal(sampleValue(m, 'ferry_connects_total', { transport: 'tcp', result: 'refused' }), 1);
    assert.equal(sampleValue(m, 'ferry_sessions_opened_total', { transport: 'tcp' }), 2);
  });

  test('TCP handed off to the app: bytes from the kernel (TCP_INFO: payload plus SYN and FIN)', async () => {
    const handed = await startApp(d.socket, { FERRY_TCP_MODE: 'handoff' });
    const b = 300_000;
    const a = 12_345;
    // The peer answers b bytes and closes once it has the a bytes the app sends.
    const { server: peer, port } = await netServer((s) => {
      let got = 0;
      s.on('data', (chunk: Buffer) => {
        got += chunk.length;
        if (got === a) s.end(seededBytes(7, b));
      });
      s.on('error', () => {});
    });
    try {
      const r = await handed.ok({ op: 'connect', tag: 'h', uri: `tcp://127.0.0.1:${port}` });
      assert.equal(r['transport'], 'tcp-handoff');
      await handed.ok({ op: 'send', tag: 'h', bytes: a, seed: 8, chunk: 4096 });
      const end = await handed.waitFor((e) => e.event === 'end' && e.tag === 'h');
      assert.equal(end['rxBytes'], b);
      await handed.waitFor((e) => e.event === 'close' && e.tag === 'h');
      let m = await scrape(url);
      await eventually(
        async () => {
          m = await scrape(url);
          return sampleValue(m, 'ferry_sessions', { transport: 'tcp-handoff' }) === 0;
        },
        10_000,
        'the handed session to end',
      );
      // TCP_INFO counts sequence space, not payload: the FIN received adds one to rx; the SYN and
      // the FIN the peer acknowledged add one each to tx.
      const rx = sampleValue(m, 'ferry_bytes_total', { transport: 'tcp-handoff', direction: 'rx' });
      const tx = sampleValue(m, 'ferry_bytes_total', { transport: 'tcp-handoff', direction: 'tx' });
      assert.ok(rx === b || rx === b + 1, `rx ${rx}, payload ${b}`);
      assert.ok(tx >= a && tx <= a + 2, `tx ${tx}, payload ${a}`);
      assert.equal(sampleValue(m, 'ferry_sessions_opened_total', { transport: 'tcp-handoff' }), 1);
      assert.equal(sampleValue(m, 'ferry_connects_total', { transport: 'tcp-handoff', result: 'ok' }), 1);
    } finally {
      peer.close();
      await handed.kill();
    }
  });

  test('UDP through the relay: payload bytes and datagrams each way, counted exactly', async () => {
    const app = createDatagramSocket({ socket: d.socket, name: 'metrics-udp' });
    const peer = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
      await new Promise<void>((resolve, reject) => {
        app.once('error', reject);
        app.bind('udp://127.0.0.1:0', () => resolve());
      });
      const appPort = Number(String(app.address().uri).split(':').at(-1));
      const sizes = [1, 100, 1472, 9000, 0];
      const got: number[] = [];
      app.on('message', (msg: Buffer) => got.push(msg.length));
      for (const [i, size] of sizes.entries()) peer.send(seededBytes(10 + i, size), appPort, '127.0.0.1');
      await eventually(async () => got.length === sizes.length, 10_000, 'datagrams to arrive');
      const back = [7, 65_000];
      const peerGot: number[] = [];
      peer.on('message', (msg) => peerGot.push(msg.length));
      const peerPort = (peer.address() as { port: number }).port;
      for (const size of back) app.send(seededBytes(20, size), peerPort, '127.0.0.1');
      await eventually(async () => peerGot.length === back.length, 10_000, 'datagrams back');
      const m = await scrape(url);
      const sum = (xs: number[]) => xs.reduce((s, x) => s + x, 0);
      assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'udp', direction: 'rx' }), sum(sizes));
      assert.equal(sampleValue(m, 'ferry_bytes_total', { transport: 'udp', direction: 'tx' }), sum(back));
      assert.equal(sampleValue(m, 'ferry_datagrams_total', { direction: 'rx' }), sizes.length);
      assert.equal(sampleValue(m, 'ferry_datagrams_total', { direction: 'tx' }), back.length);
      assert.equal(sampleValue(m, 'ferry_datagram_drops_total'), 0);
      assert.equal(sampleValue(m, 'ferry_sessions', { transport: 'udp' }), 1);
      const relay = ((await d.show('sessions')) as Record<string, unknown>[]).find(
        (s) => s['transport'] === 'udp',
      );
      assert.equal(relay?.['drops'], 0);
      assert.equal(relay?.['daemonBytes'], sum(sizes) + sum(back));
    } finally {
      peer.close();
      await new Promise<void>((resolve) => app.close(() => resolve()));
    }
  });

  test('Node process metrics and memory gauges are there', async () => {
    const m = await scrape(url);
    for (const name of [
      'nodejs_eventloop_lag_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_gc_duration_seconds',
      'process_cpu_seconds_total',
      'ferry_segment_bytes',
      'ferry_fifo_bytes',
    ]) {
      assert.ok(m.has(name), name);
    }
    assert.ok(sampleValue(m, 'ferry_segment_bytes') > 0, 'the apps share segments');
  });
});

describe('ferryd restarts seen by apps', () => {
  test('an app that reattaches after kill -9 is counted by the new ferryd, a fresh app is not', async () => {
    const d1 = await startDaemon();
    const app = await startApp(d1.socket);
    let d2: DaemonHandle | null = null;
    let fresh: AppHandle | null = null;
    try {
      await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      await d1.kill('SIGKILL');
      d2 = await startDaemon(['--metrics', '127.0.0.1:0'], { socket: d1.socket });
      await app.waitFor((e) => e.event === 'server-reattached', 15_000);
      fresh = await startApp(d2.socket);
      await fresh.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const m = await scrape(metricsUrl(d2));
      assert.equal(sampleValue(m, 'ferry_apps', { namespace: 'default' }), 2);
      assert.equal(sampleValue(m, 'ferry_app_reattaches_total'), 1);
      assert.equal(sampleValue(m, 'ferry_attaches_total', { result: 'ok' }), 2);
    } finally {
      await fresh?.kill();
      await app.kill();
      await d2?.stop();
      await d1.stop();
    }
  });
});
