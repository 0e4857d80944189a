/**
 * Handoff mode beyond the TCP suite (tcp-handoff.test.ts runs that one): handed sessions live
 * through a ferryd kill -9 and a SIGTERM with checksummed bytes in flight both ways and show up in
 * the new ferryd (the SDK reports them back), a rule added on SIGHUP resets the handed connections
 * it now denies, and ferryd's duplicates are released (fd counts). Where ferryd must see each
 * inbound connection (`ferry show sessions`), its listeners accept (`tcpHandoffListeners:
 * "accept"`); lent listeners (the default: the app accepts itself) have their own tests below.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as ferry from '@ferry/sdk';
import { HandedSocket } from '@ferry/sdk/internal';
import { backToBaseline, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { closeServer, collect, netConnect, netServer } from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';

const HANDOFF = { FERRY_TCP_MODE: 'handoff' };
const MiB = 1024 * 1024;

interface Row {
  id: number;
  app: number;
  transport: string;
  remote: string;
  listener: number | null;
  daemonBytes: number;
  kernel: { tcpState?: string; bytesReceived?: number; bytesAcked?: number } | null;
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
});

/** ferryd arguments for a configuration file holding `config` (removed after the tests). */
function configArgs(config: Record<string, unknown>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-handoff-'));
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'ferryd.json');
  writeFileSync(file, JSON.stringify(config));
  return ['--config', file];
}

/** ferryd accepts each inbound connection and hands it over: it shows each (no lent listeners). */
const ACCEPTING = () => configArgs({ tcpHandoffListeners: 'accept' });

async function handed(d: DaemonHandle): Promise<Row[]> {
  return ((await d.show('sessions')) as Row[]).filter((s) => s.transport === 'tcp-handoff');
}

function shaOf(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Writes `data` in chunks, waiting for 'drain' like any writer. */
async function writeAll(sock: Socket, data: Uint8Array, chunk = 64 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += chunk) {
    if (!sock.write(data.subarray(off, off + chunk))) {
      await new Promise<void>((r) => sock.once('drain', () => r()));
    }
  }
}

for (const [signal, listeners] of [
  ['SIGKILL', 'accept'],
  ['SIGTERM', 'accept'],
  ['SIGKILL', 'lend'],
] as const) {
  const how = `${signal === 'SIGKILL' ? 'kill -9' : 'SIGTERM'}${listeners === 'lend' ? ', lent listener' : ''}`;
  describe(`handed sessions across a ferryd ${how}`, () => {
    test('no byte lost either way, and ferry show lists them again after the restart', async () => {
      // A lent listener's accepted connection is not in ferryd's table before the restart (only
      // the listener's figures are); once reported to the new ferryd it is, as a handed one.
      const lent = listeners === 'lend';
      const args = lent ? [] : ACCEPTING();
      let d: DaemonHandle = await startDaemon(args);
      const socketPath = d.socket;
      cleanup.push(() => d.stop());
      const server = await startApp(d.socket, HANDOFF);
      const client = await startApp(d.socket, HANDOFF);
      cleanup.push(
        () => server.kill(),
        () => client.kill(),
      );
      // Inbound: a node:net client of an SDK echo listener in handoff mode.
      const l = await server.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const inSock = await netConnect(Number(String(l['uri']).split(':').pop()));
      const inGot = collect(inSock);
      const acc = await server.waitFor((e) => e.event === 'accepted');
      assert.equal(acc['transport'], 'tcp-handoff');
      // Outbound: an SDK client of a node:net echo server.
      const { server: echo, port } = await netServer((s) => {
        s.on('error', () => {});
        s.pipe(s);
      });
      cleanup.push(() => closeServer(echo));
      const r = await client.ok({ op: 'connect', tag: 'out', uri: `tcp://127.0.0.1:${port}` });
      assert.equal(r['transport'], 'tcp-handoff');
      await eventually(async () => (await handed(d)).length === (lent ? 1 : 2), 10_000, 'handed sessions');

      // Bytes in flight when ferryd goes: both directions are busy.
      const in1 = seededBytes(41, 3 * MiB + 11);
      const in2 = seededBytes(42, 2 * MiB + 5);
      const inWrite = writeAll(inSock, in1);
      const out1 = client.ok({ op: 'send', tag: 'out', bytes: 3 * MiB + 7, seed: 43, chunk: 65_536 }, 60_000);
      await d.kill(signal);
      await inWrite;
      await out1;

      // A new ferryd on the same socket: the apps reattach and report their handed sockets.
      d = await startDaemon(args, { socket: socketPath });
      const rows = await (async () => {
        let last: Row[] = [];
        await eventually(
          async () => {
            last = await handed(d);
            return last.length === 2 && last.every((s) => s.kernel?.tcpState === 'ESTABLISHED');
          },
          15_000,
          'the new ferryd to show both handed sessions',
        );
        return last;
      })();
      // The accepted socket is shown under its listener (whose id is new: the server listened
      // again before reporting it), the connected one under none, as before the restart.
      const lid = ((await d.show('listeners')) as { id: number; uri: string }[]).find(
        (x) => x.uri === l['uri'],
      )?.id;
      assert.ok(lid !== undefined, 'the server listens again');
      const inRow = rows.find((s) => s.remote.endsWith(`:${inSock.localPort}`));
      assert.equal(inRow?.listener, lid);
      assert.deepEqual(
        rows.filter((s) => s !== inRow).map((s) => s.listener),
        [null],
      );
      // The kernel's counters go back to the connection's start: bytes before the restart count.
      assert.ok(
        rows.every((s) => s.daemonBytes > MiB),
        `bytes seen: ${rows.map((s) => s.daemonBytes).join(', ')}`,
      );
      const fdsWith = Number((await d.stats())['fds']);

      // More bytes after the restart, then an orderly end: the checksums cover everything.
      await writeAll(inSock, in2);
      inSock.end();
      const got = await inGot;
      assert.equal(got.how, 'end');
      assert.equal(got.bytes, in1.length + in2.length);
      assert.equal(got.sha256, shaOf(in1, in2));

      await client.ok({ op: 'send', tag: 'out', bytes: MiB + 3, seed: 44, chunk: 65_536, end: true }, 60_000);
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'out', 30_000);
      assert.equal(end['rxBytes'], 3 * MiB + 7 + MiB + 3);
      assert.equal(end['sha256'], shaOf(seededBytes(43, 3 * MiB + 7), seededBytes(44, MiB + 3)));

      // Both sockets closed: the new ferryd let go of its duplicates.
      await eventually(async () => (await handed(d)).length === 0, 10_000, 'handed sessions freed');
      await eventually(
        async () => Number((await d.stats())['fds']) <= fdsWith - 2,
        10_000,
        "ferryd's duplicates closed",
      );
    });
  });
}

describe('the SDK socket of a handoff connect', () => {
  test('writes made while connecting go out once ferryd answers: on the handed socket, or on fifos when a local listener takes it', async () => {
    const d = await startDaemon();
    cleanup.push(() => d.stop());
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(server));
    const local = ferry.createServer({ socket: d.socket }, (s) => s.pipe(s));
    await new Promise<void>((r) => local.listen('tcp://127.0.0.1:0', () => r()));
    cleanup.push(async () => {
      local.close();
    });
    const echoOf = async (
      uri: string,
    ): Promise<{ transport: string | undefined; text: string; cls: string }> => {
      const s = ferry.connect({ uri, socket: d.socket, handoff: true });
      s.write('first, ');
      s.write('written before the connect');
      s.end();
      let text = '';
      s.setEncoding('utf8');
      s.on('data', (x: string) => {
        text += x;
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.once('close', () => resolve());
      });
      return { transport: s.transport, text, cls: s.constructor.name };
    };
    const remote = await echoOf(`tcp://127.0.0.1:${port}`);
    assert.deepEqual(remote, {
      transport: 'tcp-handoff',
      text: 'first, written before the connect',
      cls: 'HandedSocket',
    });
    const ct = await echoOf(String(local.address()?.uri));
    assert.deepEqual(ct, { transport: 'ct', text: 'first, written before the connect', cls: 'HandedSocket' });
  });

  test('new HandedSocket() then socket.connect() asks for handoff too, unless handoff: false', async () => {
    const d = await startDaemon();
    cleanup.push(() => d.stop());
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(server));
    const via = async (opts: { handoff?: boolean }): Promise<string | undefined> => {
      const s = new HandedSocket();
      s.connect({ host: '127.0.0.1', port, socket: d.socket, ...opts });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.once('connect', () => resolve());
      });
      const transport = s.transport;
      s.destroy();
      return transport;
    };
    assert.equal(await via({}), 'tcp-handoff');
    assert.equal(await via({ handoff: false }), 'tcp');
  });
});

describe('policy and lifetime of handed sessions', () => {
  test('a rule added on SIGHUP resets the handed connections it now denies, and only those', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-handoff-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'ferryd.json');
    writeFileSync(file, JSON.stringify({ rules: [] }));
    const d = await startDaemon(['--config', file]);
    cleanup.push(() => d.stop());
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const peers: Promise<{ how: string }>[] = [];
    const mk = () =>
      netServer((s) => {
        peers.push(collect(s));
      });
    const a = await mk();
    const b = await mk();
    cleanup.push(
      () => closeServer(a.server),
      () => closeServer(b.server),
    );
    await app.ok({ op: 'connect', tag: 'a', uri: `tcp://127.0.0.1:${a.port}` });
    await app.ok({ op: 'connect', tag: 'b', uri: `tcp://127.0.0.1:${b.port}` });
    await eventually(
      async () => (await handed(d)).length === 2 && peers.length === 2,
      10_000,
      'both connected',
    );
    const rows = await handed(d);

    const before = d.output().split('configuration reload').length;
    writeFileSync(
      file,
      JSON.stringify({ rules: [{ action: 'deny', via: 'remote', service: `tcp://*:${a.port}` }] }),
    );
    d.proc.kill('SIGHUP');
    await eventually(async () => d.output().split('configuration reload').length > before, 10_000, 'reload');

    // The denied one: its app hears ECONNRESET from the kernel socket; the peer gets the RST.
    const err = await app.waitFor((e) => e.event === 'error' && e.tag === 'a', 10_000);
    assert.equal(err['code'], 'ECONNRESET');
    const peerA = await (peers[0] as Promise<{ how: string }>);
    assert.equal(peerA.how, 'ECONNRESET');
    await eventually(
      async () => (await handed(d)).map((s) => s.remote).join() === `tcp://127.0.0.1:${b.port}`,
      10_000,
      'only the allowed session left',
    );
    assert.ok(rows.some((s) => s.remote === `tcp://127.0.0.1:${a.port}`));
    // The other still works both ways.
    await app.ok({ op: 'end', tag: 'b', data: 'still here' });
    const peerB = await (peers[1] as Promise<{ how: string; text?: string }>);
    assert.equal(peerB.how, 'end');
  });

  test("tcpHandoff 'refuse': an app asking for handoff is relayed, and works the same", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-handoff-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'ferryd.json');
    writeFileSync(file, JSON.stringify({ tcpHandoff: 'refuse' }));
    const d = await startDaemon(['--config', file]);
    cleanup.push(() => d.stop());
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(server));
    const r = await app.ok({ op: 'connect', tag: 'x', uri: `tcp://127.0.0.1:${port}` });
    assert.equal(r['transport'], 'tcp');
    const sent = await app.ok({ op: 'send', tag: 'x', bytes: 300_000, seed: 46, chunk: 30_000, end: true });
    const end = await app.waitFor((e) => e.event === 'end' && e.tag === 'x');
    assert.equal(end['sha256'], sent['sha256']);
    const l = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    const listeners = (await d.show('listeners')) as { uri: string; transports: string[] }[];
    assert.deepEqual(listeners.find((x) => x.uri === l['uri'])?.transports, ['ct', 'tcp']);
  });

  test('an app that dies: its peers see FIN or RST, ferryd releases the duplicates, fds back to baseline', async () => {
    const d = await startDaemon(ACCEPTING());
    cleanup.push(() => d.stop());
    const keep = await startApp(d.socket, HANDOFF);
    cleanup.push(() => keep.kill());
    const base = await d.stats();
    const app = await startApp(d.socket, HANDOFF);
    const peers: Promise<{ how: string }>[] = [];
    const { server, port } = await netServer((s) => {
      peers.push(collect(s));
    });
    cleanup.push(() => closeServer(server));
    for (let i = 0; i < 5; i++) await app.ok({ op: 'connect', tag: `c${i}`, uri: `tcp://127.0.0.1:${port}` });
    const l = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'sink' });
    const inbound = await netConnect(Number(String(l['uri']).split(':').pop()));
    const inGot = collect(inbound);
    inbound.write(seededBytes(45, 200_000));
    await eventually(async () => (await handed(d)).length === 6, 10_000, 'six handed sessions');
    assert.ok(Number((await d.stats())['fds']) >= Number(base['fds']) + 6, 'one duplicate per session');
    await app.kill('SIGKILL');
    for (const p of peers) assert.match((await p).how, /^(end|ECONNRESET)$/);
    assert.match((await inGot).how, /^(end|ECONNRESET)$/);
    await eventually(async () => (await handed(d)).length === 0, 10_000, 'sessions gone');
    await eventually(
      async () => {
        const s = await d.stats();
        return (
          s['fds'] === base['fds'] &&
          s['sessions'] === base['sessions'] &&
          s['listeners'] === base['listeners']
        );
      },
      10_000,
      'fds, sessions and listeners back to baseline',
    );
  });
});

interface ListenerRow {
  uri: string;
  transports: string[];
  accepted: number;
  lent?: { window: number; open: number; accepted: number; refused: number };
}

async function listenerRow(d: DaemonHandle, uri: unknown): Promise<ListenerRow | undefined> {
  return ((await d.show('listeners')) as ListenerRow[]).find((x) => x.uri === uri);
}

/** Writes `text` and collects what comes back until the peer ends or resets. */
async function roundTrip(port: number, text: string): Promise<{ text: string; how: string }> {
  const s = await netConnect(port);
  const got = collect(s);
  s.end(text);
  const r = await got;
  return { text: r.text, how: r.how };
}

/** Connections waiting in the accept queue of the IPv4 listening socket on `port` (/proc/net/tcp). */
function acceptQueue(port: number): number {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // st 0A is LISTEN; for a listening socket rx_queue is its accept backlog.
    if (f[1]?.endsWith(hex) && f[3] === '0A') return Number.parseInt(f[4]?.split(':')[1] ?? '0', 16);
  }
  return -1;
}

describe('lent listeners (handoff: the app accepts on the kernel socket ferryd lent it)', () => {
  test('the app accepts itself: bytes intact, ferry show lists the figures, not each connection; its death ends the listener and fds return to baseline', async () => {
    const d = await startDaemon();
    cleanup.push(() => d.stop());
    const keep = await startApp(d.socket, HANDOFF);
    cleanup.push(() => keep.kill());
    const base = await d.stats();
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const l = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    const port = Number(String(l['uri']).split(':').pop());
    const row = await listenerRow(d, l['uri']);
    assert.deepEqual(row?.transports, ['ct', 'tcp-handoff']);
    assert.equal(row?.lent?.window, 64);
    const socks = await Promise.all([0, 1, 2].map(() => netConnect(port)));
    const got = socks.map((s) => collect(s));
    const sent = socks.map((s, i) => {
      const data = seededBytes(60 + i, 300_000);
      void writeAll(s, data).then(() => s.end());
      return shaOf(data);
    });
    for (const [i, g] of got.entries()) {
      const r = await g;
      assert.equal(r.how, 'end');
      assert.equal(r.sha256, sent[i], `connection ${i} echoed intact`);
    }
    const acc = await app.waitFor((e) => e.event === 'accepted');
    assert.equal(acc['transport'], 'tcp-handoff');
    // The figures arrive within NOTICE_MS of the last change; no session per connection.
    await eventually(
      async () => {
        const r = await listenerRow(d, l['uri']);
        return r?.lent?.accepted === 3 && r.lent.open === 0 && r.accepted === 3;
      },
      10_000,
      'three accepted, none open',
    );
    assert.equal((await handed(d)).length, 0);
    // Held open, then the app dies: the peer sees its end, and the listening socket is gone.
    const held = await netConnect(port);
    const heldGot = collect(held);
    held.write('still there?');
    await eventually(async () => (await listenerRow(d, l['uri']))?.lent?.open === 1, 10_000, 'one open');
    await app.kill('SIGKILL');
    assert.match((await heldGot).how, /^(end|ECONNRESET)$/);
    await eventually(
      async () => {
        const s = await d.stats();
        return s['fds'] === base['fds'] && s['listeners'] === base['listeners'];
      },
      10_000,
      'fds and listeners back to baseline',
    );
    await assert.rejects(netConnect(port), (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED');
  });

  test('a burst beyond the window while ferryd is slow to answer: each connection is served once it answers', async () => {
    const d = await startDaemon();
    cleanup.push(() => d.stop());
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const l = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    const port = Number(String(l['uri']).split(':').pop());
    const window = (await listenerRow(d, l['uri']))?.lent?.window ?? 0;
    const n = window * 3;
    // ferryd stopped: the app admits `window` connections, holds the rest and asks for room once
    // per connection it holds; ferryd answers those notices in order once it runs again. An answer
    // to an early notice gives less than the later ones asked for (a window below what was
    // asked is how ferryd says "no room": the limit): it must not reset what the later ones cover.
    d.proc.kill('SIGSTOP');
    let socks: Socket[];
    try {
      socks = await Promise.all(Array.from({ length: n }, () => netConnect(port)));
      await eventually(async () => acceptQueue(port) === 0, 10_000, 'the app accepted them all');
    } finally {
      d.proc.kill('SIGCONT');
    }
    const got = socks.map((s, i) => {
      const r = collect(s);
      s.end(`c${i};`);
      return r;
    });
    const results = await Promise.all(got);
    for (const [i, r] of results.entries())
      assert.deepEqual({ text: r.text, how: r.how }, { text: `c${i};`, how: 'end' });
    const row = await listenerRow(d, l['uri']);
    assert.equal(row?.lent?.refused, 0);
  });

  test('maxSessionsPerApp holds exactly: beyond it a connection is reset (as when ferryd accepts), within it it is served, and the window counts against connects', async () => {
    const d = await startDaemon(configArgs({ maxSessionsPerApp: 4 }));
    cleanup.push(() => d.stop());
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const l = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    const port = Number(String(l['uri']).split(':').pop());
    assert.equal((await listenerRow(d, l['uri']))?.lent?.window, 4);
    // Four held open, each served.
    const held = await Promise.all([0, 1, 2, 3].map(() => netConnect(port)));
    const heldGot = held.map((s) => collect(s));
    for (const [i, s] of held.entries()) s.write(`held ${i};`);
    await eventually(async () => (await listenerRow(d, l['uri']))?.lent?.open === 4, 10_000, 'four open');
    // The fifth waits for ferryd's answer, which has no room: reset, and counted.
    const fifth = await roundTrip(port, 'one too many');
    assert.equal(fifth.how, 'ECONNRESET');
    assert.equal(fifth.text, '');
    await eventually(
      async () => (await listenerRow(d, l['uri']))?.lent?.refused === 1,
      10_000,
      'one refused',
    );
    // The listener's window holds the app's room: a connect of the same app is over the limit too.
    const { server: echo, port: echoPort } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(echo));
    const err = await app.call({ op: 'connect', tag: 'out', uri: `tcp://127.0.0.1:${echoPort}` });
    assert.equal(err['code'], 'ERR_FERRY_LIMIT');
    // One closes: within the limit again, the next connection is served.
    held[0]?.end();
    assert.equal((await heldGot[0])?.text, 'held 0;');
    await eventually(async () => (await listenerRow(d, l['uri']))?.lent?.open === 3, 10_000, 'three open');
    assert.deepEqual(await roundTrip(port, 'room again'), { text: 'room again', how: 'end' });
    for (const s of held) s.destroy();
  });
});

/** ferryd's tcp transport counters (`ferry show stats`, under `tcp`). */
async function tcpStats(d: DaemonHandle): Promise<Record<string, number>> {
  return ((await d.stats())['tcp'] ?? {}) as Record<string, number>;
}

/** One connect of `app` to `port` in handoff mode: `text` echoed back, then closed both ways. */
async function echoOnce(app: Awaited<ReturnType<typeof startApp>>, tag: string, port: number): Promise<void> {
  const r = await app.ok({ op: 'connect', tag, uri: `tcp://127.0.0.1:${port}` });
  assert.equal(r['transport'], 'tcp-handoff');
  const sent = await app.ok({ op: 'send', tag, bytes: 20_000, seed: 70, chunk: 5_000, end: true });
  const end = await app.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['sha256'], sent['sha256']);
}

describe('lent sockets (handoff: connects on unconnected sockets ferryd lent)', () => {
  test('after a first connect, the next ones take lent sockets: intact, shown as handed sessions; the app dying releases them and fds return to baseline', async () => {
    const d = await startDaemon(configArgs({ tcpHandoffSockets: 8 }));
    cleanup.push(() => d.stop());
    const keep = await startApp(d.socket, HANDOFF);
    cleanup.push(() => keep.kill());
    const base = await d.stats();
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(server));
    await echoOnce(app, 'first', port);
    assert.equal((await tcpStats(d))['socketPools'], 0, 'a one-off connect costs no pool');
    await echoOnce(app, 'second', port);
    // The second connect went through ferryd too, which then lent a pool for the URI (8 sockets).
    await eventually(async () => (await tcpStats(d))['socketPools'] === 1, 10_000, 'a pool lent');
    assert.ok(Number((await d.stats())['fds']) >= Number(base['fds']) + 8, "ferryd's duplicates");
    for (let i = 0; i < 3; i++) await echoOnce(app, `lent${i}`, port);
    // Held open: ferryd learnt of it after the fact and shows it, addresses from the kernel.
    await app.ok({ op: 'connect', tag: 'held', uri: `tcp://127.0.0.1:${port}` });
    await eventually(
      async () => (await handed(d)).some((s) => s.remote === `tcp://127.0.0.1:${port}`),
      10_000,
      'the held connection shown',
    );
    // The notices of the first three may still be on their way (they go lazily, within 10 ms).
    await eventually(
      async () => (await tcpStats(d))['lentSocketsUsed'] === 4,
      10_000,
      'four lent sockets used',
    );
    assert.equal((await tcpStats(d))['lentSocketsMisused'], 0);
    await app.kill('SIGKILL');
    // The pool's eight duplicates (four used and refilled) and the held session's are gone.
    await eventually(async () => (await tcpStats(d))['socketPools'] === 0, 10_000, 'the pool released');
    await backToBaseline(d, base, 'fds and sessions back to baseline');
  });

  test('a reload revokes lent sockets: the app gives back the unused ones, and a rule added then decides its next connect', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-handoff-'));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'ferryd.json');
    writeFileSync(file, JSON.stringify({ rules: [], tcpHandoffSockets: 8 }));
    const d = await startDaemon(['--config', file]);
    cleanup.push(() => d.stop());
    const app = await startApp(d.socket, HANDOFF);
    cleanup.push(() => app.kill());
    const base = await d.stats();
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    cleanup.push(() => closeServer(server));
    await echoOnce(app, 'first', port);
    await echoOnce(app, 'second', port);
    await eventually(async () => (await tcpStats(d))['socketPools'] === 1, 10_000, 'a pool lent');
    await eventually(async () => (await handed(d)).length === 0, 10_000, 'the first sessions freed');
    const withPool = Number((await d.stats())['fds']);
    const before = d.output().split('configuration reload').length;
    writeFileSync(
      file,
      JSON.stringify({
        rules: [{ action: 'deny', via: 'remote', service: `tcp://*:${port}` }],
        tcpHandoffSockets: 8,
      }),
    );
    d.proc.kill('SIGHUP');
    await eventually(async () => d.output().split('configuration reload').length > before, 10_000, 'reload');
    // Revoked and released: ferryd closed its duplicates.
    await eventually(async () => (await tcpStats(d))['socketPools'] === 0, 10_000, 'the pool released');
    await backToBaseline(d, { ...base, fds: withPool - 8 }, "ferryd's duplicates closed");
    const r = await app.call({ op: 'connect', tag: 'after', uri: `tcp://127.0.0.1:${port}` });
    assert.equal(r['ok'], false);
    assert.equal(r['code'], 'ERR_FERRY_DENIED');
    assert.equal((await tcpStats(d))['lentSocketsUsed'], 0);
  });
});
