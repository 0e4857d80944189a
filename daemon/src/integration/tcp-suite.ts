/**
 * The TCP transport: real kernel sockets (node:net, nc) against SDK apps through a real ferryd, in
 * either mode of `tcp://` (tcp.test.ts: relay, tcp-handoff.test.ts: handoff). The apps choose the
 * mode with FERRY_TCP_MODE; where the modes differ by design (what ferryd sees, which party
 * decides FIN or RST), the test says so.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import { tcpInfo, tcpReadEnd } from '@ferry/sdk/internal';
import {
  type AppHandle,
  backToBaseline,
  type DaemonHandle,
  eventually,
  startApp,
  startDaemon,
} from '../testing/harness.js';
import {
  blackholePort,
  closeServer,
  collect,
  fdOf,
  hasBinary,
  netConnect,
  netServer,
  runWithInput,
  sha256,
  tcpConnectionListed,
  tcpRxQueue,
} from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';

const MiB = 1024 * 1024;

interface SessionRow {
  id: number;
  app: number;
  transport: string;
  state: string;
  remote: string;
  daemonBytes: number;
  kernel: { tcpState?: string } | null;
}

export type TcpMode = 'relay' | 'handoff';

export interface TcpSuiteOptions {
  /**
   * ferryd's accepted sockets take the copying path (FERRY_DIRECT_ACCEPT=off: a 64 KiB read, then
   * a copy into the fifo) instead of DirectRead: the path node lines that were not verified take.
   * Only the tests of connections ferryd accepts run; outbound ones are the same either way.
   */
  copyingAccept?: boolean;
  /**
   * Handoff listeners: ferryd lends the listening socket to the app, which accepts itself
   * (`tcpHandoffListeners: "lend"`, the default), or accepts each connection and hands it over
   * (`"accept"`). ferryd sees each inbound connection only in the second.
   */
  handoffListeners?: 'lend' | 'accept';
}

export function tcpSuite(mode: TcpMode, opts: TcpSuiteOptions = {}): void {
  /** What ferryd names the sessions of this mode. */
  const TRANSPORT = mode === 'relay' ? 'tcp' : 'tcp-handoff';
  const appEnv = { FERRY_TCP_MODE: mode };
  const handoff = mode === 'handoff';
  const lent = handoff && opts.handoffListeners !== 'accept';
  const copying = opts.copyingAccept === true;
  const daemonOpts = copying ? { env: { FERRY_DIRECT_ACCEPT: 'off' } } : {};
  /** A test whose connections ferryd only connects (no accepted socket): skipped by the copying run. */
  const outbound = (name: string, fn: (t: TestContext) => Promise<void>): void => {
    if (copying) test(name, { skip: 'outbound only: no socket accepted by ferryd' }, fn);
    else test(name, fn);
  };

  let d: DaemonHandle;
  let echo: AppHandle;
  let client: AppHandle;
  let echoPort = 0;

  let configDir = '';
  before(async () => {
    const args: string[] = [];
    if (handoff) {
      configDir = mkdtempSync(join(tmpdir(), 'ferry-tcp-suite-'));
      const file = join(configDir, 'ferryd.json');
      writeFileSync(file, JSON.stringify({ tcpHandoffListeners: lent ? 'lend' : 'accept' }));
      args.push('--config', file);
    }
    d = await startDaemon(args, daemonOpts);
    echo = await startApp(d.socket, appEnv);
    client = await startApp(d.socket, appEnv);
    const r = await echo.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
    echoPort = Number(String(r['uri']).split(':').pop());
  });

  after(async () => {
    await client?.kill();
    await echo?.kill();
    await d?.stop();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  function portOf(uri: unknown): number {
    return Number(String(uri).split(':').pop());
  }

  async function tcpSessions(): Promise<SessionRow[]> {
    return ((await d.show('sessions')) as SessionRow[]).filter((s) => s.transport === TRANSPORT);
  }

  /**
   * One TCP session of `client` through ferryd, so what persists while the app lives (its pair
   * segment with ferryd, Node's lazily made handles) is in a baseline taken afterwards.
   */
  async function warmClient(): Promise<void> {
    const { server, port } = await netServer((s) => s.end('warm'));
    try {
      await client.ok({ op: 'connect', tag: 'warm', uri: `tcp://127.0.0.1:${port}` });
      await client.waitFor((e) => e.event === 'close' && e.tag === 'warm');
      await eventually(async () => (await tcpSessions()).length === 0, 10_000, 'the warm-up session freed');
    } finally {
      await closeServer(server);
    }
  }

  if (copying) {
    test('ferryd says accepted sockets take the copying path', () => {
      assert.match(d.output(), /accepted tcp connections take the copying path: FERRY_DIRECT_ACCEPT=off/);
    });
  }

  describe('node:net and nc against SDK apps', () => {
    test('a node:net client through an SDK echo listener: checksummed MiBs both ways', async () => {
      const listeners = (await d.show('listeners')) as { uri: string; transports: string[] }[];
      assert.deepEqual(listeners.find((l) => portOf(l.uri) === echoPort)?.transports, ['ct', TRANSPORT]);
      const sock = await netConnect(echoPort);
      const got = collect(sock);
      const data = seededBytes(21, 8 * MiB + 777);
      const acc = await echo.waitFor((e) => e.event === 'accepted' && e['transport'] === TRANSPORT);
      assert.equal(acc['remote'], `127.0.0.1:${sock.localPort}`);
      sock.write(data);
      if (lent) {
        // The app accepted on the lent listener: ferryd holds no session for it, only the
        // listener's figures (one open while the connection lives).
        await eventually(
          async () => {
            const row = ((await d.show('listeners')) as { uri: string; lent?: { open: number } }[]).find(
              (l) => portOf(l.uri) === echoPort,
            );
            return row?.lent?.open === 1;
          },
          20_000,
          'the lent listener to count the connection',
        );
        assert.equal((await tcpSessions()).length, 0);
        sock.end();
        const r = await got;
        assert.equal(r.how, 'end');
        assert.equal(r.bytes, data.length);
        assert.equal(r.sha256, sha256(data));
        return;
      }
      // Everything echoed, the session still open: ferryd moved every byte twice (in and out).
      await eventually(
        async () => (await tcpSessions()).some((s) => s.daemonBytes >= 2 * data.length),
        20_000,
        'daemonBytes to count both directions',
      );
      const rows = await tcpSessions();
      assert.equal(rows.length, 1);
      assert.equal(rows[0]?.remote, `tcp://127.0.0.1:${sock.localPort}`);
      assert.equal(rows[0]?.daemonBytes, 2 * data.length);
      sock.end();
      const r = await got;
      assert.equal(r.how, 'end');
      assert.equal(r.bytes, data.length);
      assert.equal(r.sha256, sha256(data));
      await eventually(async () => (await tcpSessions()).length === 0, 10_000, 'the session to be freed');
    });

    outbound('an SDK client through ferryd to a node:net server: checksummed both ways', async () => {
      const { server, port } = await netServer((s) => {
        s.on('data', (d: Buffer) => s.write(d));
        s.on('end', () => s.end());
      });
      try {
        const r = await client.ok({ op: 'connect', tag: 'out1', uri: `tcp://127.0.0.1:${port}` });
        assert.equal(r['transport'], TRANSPORT);
        const sent = await client.ok({
          op: 'send',
          tag: 'out1',
          bytes: 6 * MiB + 5,
          seed: 22,
          chunk: 100_003,
          end: true,
        });
        const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'out1', 30_000);
        assert.equal(end['rxBytes'], 6 * MiB + 5);
        assert.equal(end['sha256'], sent['sha256']);
        await client.waitFor((e) => e.event === 'close' && e.tag === 'out1');
      } finally {
        await closeServer(server);
      }
    });

    test('nc as a client of an SDK echo listener, and as a server for an SDK client', async (t) => {
      if (!hasBinary('nc')) {
        if (process.env['CI']) assert.fail('nc is missing (.ci/run installs netcat-openbsd)');
        t.skip('nc is not installed (apt-get install netcat-openbsd)');
        return;
      }
      const data = seededBytes(23, 512 * 1024 + 3);
      const asClient = runWithInput('nc', ['-N', '127.0.0.1', String(echoPort)], data, 20_000);
      const out = await asClient.done;
      assert.equal(out.stdout.length, data.length, out.stderr);
      assert.equal(sha256(out.stdout), sha256(data));

      // A port the kernel just handed out and nobody uses now: nc listens there.
      const probe = await netServer(() => {});
      await closeServer(probe.server);
      const port = probe.port;
      const reply = Buffer.from('hello from nc\n');
      const asServer = runWithInput('nc', ['-N', '-l', '127.0.0.1', String(port)], reply, 20_000);
      try {
        await eventually(
          async () =>
            (
              await client.call({
                op: 'connect',
                tag: 'nc1',
                uri: `tcp://127.0.0.1:${port}`,
                // nc sends its reply and FIN at once: keep our side open to send after its FIN.
                allowHalfOpen: true,
              })
            )['ok'] === true,
          5000,
          'nc to listen',
        );
        const sent = await client.ok({
          op: 'send',
          tag: 'nc1',
          bytes: 200_000,
          seed: 24,
          chunk: 9000,
          end: true,
        });
        const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'nc1', 20_000);
        assert.equal(end['rxBytes'], reply.length);
        const srv = await asServer.done;
        assert.equal(srv.stdout.length, 200_000);
        assert.equal(sha256(srv.stdout), sent['sha256']);
      } finally {
        asServer.kill();
      }
    });
  });

  describe('many TCP sessions', () => {
    test('200 concurrent node:net clients each get their own bytes back, then ferryd frees them all', async () => {
      // One round trip first, so that the echo app's pair segment with ferryd is in the baseline.
      const warm = await netConnect(echoPort);
      const warmed = collect(warm);
      warm.end('warm');
      assert.equal((await warmed).text, 'warm');
      await eventually(async () => (await tcpSessions()).length === 0, 10_000, 'the warm-up session freed');
      const base = await d.stats();
      const n = 200;
      const results = await Promise.all(
        Array.from({ length: n }, async (_, i) => {
          const sock = await netConnect(echoPort);
          const got = collect(sock);
          const data = seededBytes(1000 + i, 20_000 + i * 97);
          sock.end(data);
          const r = await got;
          return { r, want: sha256(data), len: data.length };
        }),
      );
      for (const { r, want, len } of results) {
        assert.equal(r.how, 'end');
        assert.equal(r.bytes, len);
        assert.equal(r.sha256, want);
      }
      // Pair segments stay while the echo app lives (as for cut-through); every fifo pair is free.
      await eventually(
        async () => Number((await d.stats())['sessions']) === Number(base['sessions']),
        10_000,
        'every TCP session freed',
      );
      const segs = (await d.show('segments')) as { sessions: number; mappedBy: number[] }[];
      assert.ok(segs.every((sg) => sg.sessions === 0));
      // Relay: ferryd is the other party of a pair segment (party 0); handoff: no fifos at all.
      assert.equal(
        segs.some((sg) => sg.mappedBy.includes(0)),
        !handoff,
        handoff ? 'handed sessions use no segment' : 'ferryd maps its pair segments (party 0)',
      );
    });
  });

  describe('half-close over TCP', () => {
    test('a node:net client half-closes; the SDK server reads to the end and still answers', async () => {
      const half = await startApp(d.socket, appEnv);
      try {
        const l = await half.ok({
          op: 'listen',
          uri: 'tcp://127.0.0.1:0',
          behavior: 'reply-on-end',
          allowHalfOpen: true,
        });
        const sock = await netConnect(portOf(l['uri']), true);
        const got = collect(sock);
        sock.end(seededBytes(25, 5000));
        const r = await got;
        assert.equal(r.how, 'end');
        assert.equal(r.text, 'got 5000');
      } finally {
        await half.kill();
      }
    });

    outbound('a node:net server half-closes first; the SDK client sees end and can still send', async () => {
      let serverGot: Promise<{ bytes: number; sha256: string; how: string }> | null = null;
      const { server, port } = await netServer((s) => {
        serverGot = collect(s);
        s.end('bye');
      }, true);
      try {
        await client.ok({ op: 'connect', tag: 'h2', uri: `tcp://127.0.0.1:${port}`, allowHalfOpen: true });
        const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'h2');
        assert.equal(end['rxBytes'], 3);
        const sent = await client.ok({
          op: 'send',
          tag: 'h2',
          bytes: 70_000,
          seed: 26,
          chunk: 7000,
          end: true,
        });
        await eventually(async () => serverGot !== null, 5000, 'the server to accept');
        const r = await (serverGot as unknown as Promise<{ bytes: number; sha256: string; how: string }>);
        assert.equal(r.how, 'end');
        assert.equal(r.bytes, 70_000);
        assert.equal(r.sha256, sent['sha256']);
      } finally {
        await closeServer(server);
      }
    });

    outbound(
      "an SDK client's end() is the TCP session's shutdown: FIN to the remote, local-fin in ferry show",
      async () => {
        // The SDK sends no shutdown notice for a session ferryd carries: ferryd reads the FIN from the
        // fifo, sends it, and moves the session to local-fin itself. A handed socket's FIN goes from
        // the app to the kernel: ferryd's table does not see it, the kernel's state (TCP_INFO) does.
        let remote: Socket | null = null;
        let remoteEnded = false;
        const { server, port } = await netServer((s) => {
          remote = s;
          s.resume();
          s.on('end', () => {
            remoteEnded = true;
          });
        }, true);
        try {
          await client.ok({
            op: 'connect',
            tag: 'fin1',
            uri: `tcp://127.0.0.1:${port}`,
            allowHalfOpen: true,
          });
          await client.ok({ op: 'send', tag: 'fin1', bytes: 1000, seed: 27, chunk: 1000, end: true });
          await eventually(async () => remoteEnded, 10_000, 'the remote to see FIN');
          await eventually(
            async () =>
              (await tcpSessions()).some((s) =>
                handoff ? s.kernel?.tcpState === 'FIN_WAIT2' : s.state === 'local-fin',
              ),
            10_000,
            handoff ? 'the kernel socket in FIN_WAIT2' : 'the session in local-fin',
          );
          (remote as Socket | null)?.end();
          await client.waitFor((e) => e.event === 'close' && e.tag === 'fin1');
          await eventually(async () => (await tcpSessions()).length === 0, 10_000, 'the session to be freed');
        } finally {
          // A failed check leaves the connection half-open, and close() would wait for it forever.
          (remote as Socket | null)?.destroy();
          await closeServer(server);
        }
      },
    );
  });

  describe('reset over TCP', () => {
    test('a node:net client resets: the SDK server sees ECONNRESET', async () => {
      const srv = await startApp(d.socket, appEnv);
      try {
        const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'sink' });
        const sock = await netConnect(portOf(l['uri']));
        const acc = await srv.waitFor((e) => e.event === 'accepted');
        sock.write('x');
        await eventually(
          async () => (await srv.ok({ op: 'stat', tag: acc.tag }))['rxBytes'] === 1,
          5000,
          'a byte',
        );
        sock.resetAndDestroy();
        const err = await srv.waitFor((e) => e.event === 'error' && e.tag === acc.tag);
        assert.equal(err['code'], 'ECONNRESET');
      } finally {
        await srv.kill();
      }
    });

    outbound(
      'an SDK client resets its socket (resetAndDestroy): the node:net server sees ECONNRESET',
      async () => {
        let got: Promise<{ how: string; bytes: number }> | null = null;
        const { server, port } = await netServer((s) => {
          got = collect(s);
        });
        try {
          await client.ok({ op: 'connect', tag: 'r2', uri: `tcp://127.0.0.1:${port}` });
          await client.ok({ op: 'send', tag: 'r2', bytes: 1000, seed: 27, chunk: 1000 });
          await eventually(async () => got !== null, 5000, 'the server to accept');
          // destroy() closes as net's does (FIN); the abort is resetAndDestroy().
          await client.ok({ op: 'reset', tag: 'r2' });
          const r = await (got as unknown as Promise<{ how: string; bytes: number }>);
          assert.equal(r.how, 'ECONNRESET');
        } finally {
          await closeServer(server);
        }
      },
    );

    outbound(
      'a remote that resets behind bytes ferryd has not read yet: the app sees ECONNRESET, not an end',
      async (t) => {
        if (handoff) {
          t.skip('handoff: the app reads the kernel socket itself, as node:net does');
          return;
        }
        let remote: Socket | null = null;
        const { server, port } = await netServer((s) => {
          remote = s;
          s.on('error', () => {});
          s.write(seededBytes(34, 4 * MiB));
        });
        try {
          const uri = `tcp://127.0.0.1:${port}`;
          await client.ok({ op: 'connect', tag: 'rb', uri, behavior: 'hold', fifoSize: 262_144 });
          await eventually(async () => remote !== null, 5000, 'the server to accept');
          const r = remote as unknown as Socket;
          // The app holds (paused, it takes nothing): ferryd reads its fifo full and stops. The RST
          // must land behind bytes ferryd's kernel holds unread: its socket's receive queue, read
          // from /proc/net/tcp, is not empty and has not moved for three looks (ferryd stopped
          // reading, the remote's window is used up). Waiting for a count acknowledged instead
          // (512 KiB) failed 2 runs in 80: how far the kernel opens the window varies.
          const ferrydPort = r.remotePort ?? 0;
          let last = -1;
          let still = 0;
          await eventually(
            async () => {
              const q = tcpRxQueue(ferrydPort, port) ?? 0;
              still = q > 0 && q === last ? still + 1 : 0;
              last = q;
              return still >= 3;
            },
            10_000,
            'bytes unread in ferryd',
          );
          r.resetAndDestroy();
          await eventually(
            async () => !tcpConnectionListed(ferrydPort, port),
            10_000,
            "ferryd's socket reset",
          );
          await client.ok({ op: 'resume', tag: 'rb' });
          const ev = await client.waitFor(
            (e) => (e.event === 'error' || e.event === 'end') && e.tag === 'rb',
          );
          assert.equal(ev.event, 'error', 'a reset, not a clean end of stream');
          assert.equal(ev['code'], 'ECONNRESET');
        } finally {
          await closeServer(server);
        }
      },
    );

    test('an SDK server resets an accepted socket: the node:net client sees ECONNRESET', async () => {
      const srv = await startApp(d.socket, appEnv);
      try {
        const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'sink' });
        const sock = await netConnect(portOf(l['uri']));
        const got = collect(sock);
        const acc = await srv.waitFor((e) => e.event === 'accepted');
        await srv.ok({ op: 'reset', tag: acc.tag });
        const r = await got;
        assert.equal(r.how, 'ECONNRESET');
      } finally {
        await srv.kill();
      }
    });
  });

  describe('failures and limits', () => {
    /**
     * After an SDK app with a listener and a node:net client died: how the client's connection
     * ended, then ferryd dropping the listener. Relay: ferryd resets. Handoff: the app's
     * descriptors closed with it, ferryd's duplicate goes with the app, and the kernel ends the
     * connection as for any process that died: FIN, or RST when bytes were left unread.
     */
    const diedWithListener = async (how: string, base: Record<string, unknown>): Promise<void> => {
      if (handoff) assert.match(how, /^(end|ECONNRESET)$/);
      else assert.equal(how, 'ECONNRESET');
      // Once ferryd has seen the app go, the port is closed. (Before, the kernel may still complete
      // a handshake on the listening socket ferryd holds: lent or not, it closes it then.)
      await eventually(
        async () => (await d.stats())['listeners'] === base['listeners'],
        10_000,
        'listener gone',
      );
    };
    outbound(
      'a remote server that vanishes mid-transfer: the SDK client gets ECONNRESET, ferryd returns to baseline',
      async () => {
        await warmClient();
        const base = await d.stats();
        const child = spawnSink();
        try {
          const port = await child.port;
          await client.ok({ op: 'connect', tag: 'v1', uri: `tcp://127.0.0.1:${port}` });
          // 64 MiB is far more than the sink's receive window, the kernel's send buffer and the fifo
          // hold, so the writer is still mid-transfer when the sink dies; the app generates the
          // bytes before the first write, and 512 MiB took longer than the wait below on a loaded
          // machine.
          void client
            .call({ op: 'send', tag: 'v1', bytes: 64 * MiB, seed: 28, chunk: 65_536 }, 60_000)
            .catch(() => {});
          // A handed socket's bytes are what the kernel counts (TCP_INFO): acknowledged ones, which a
          // peer that never reads caps at its receive window.
          const traffic = handoff ? 32 * 1024 : 256 * 1024;
          await eventually(
            async () => (await tcpSessions()).some((s) => s.daemonBytes > traffic),
            60_000,
            'traffic',
          );
          child.proc.kill('SIGKILL');
          const err = await client.waitFor((e) => e.event === 'error' && e.tag === 'v1', 20_000);
          // A handed socket hears the kernel itself: a write after the RST may report EPIPE first,
          // as node:net does.
          if (handoff) assert.match(String(err['code']), /^(ECONNRESET|EPIPE)$/);
          else assert.equal(err['code'], 'ECONNRESET');
          await backToBaseline(d, base, 'ferryd counts back to baseline');
        } finally {
          child.proc.kill('SIGKILL');
        }
      },
    );

    outbound(
      'a slow remote reader: no loss, the SDK writer is held back, ferryd memory stays bounded',
      async () => {
        let got: Promise<{ bytes: number; sha256: string; how: string }> | null = null;
        const { server, port } = await netServer((s) => {
          got = collect(s, { slowMs: 2 });
        });
        try {
          const rss0 = Number((await d.stats())['rssBytes']);
          await client.ok({ op: 'connect', tag: 'slow', uri: `tcp://127.0.0.1:${port}`, fifoSize: 65_536 });
          const total = 24 * MiB;
          const sent = await client.ok(
            { op: 'send', tag: 'slow', bytes: total, seed: 29, chunk: 16_384, end: true },
            90_000,
          );
          assert.ok(Number(sent['falseReturns']) > 0, 'write() returned false: backpressure reached the app');
          await eventually(async () => got !== null, 5000, 'the server to accept');
          const r = await (got as unknown as Promise<{ bytes: number; sha256: string; how: string }>);
          assert.equal(r.how, 'end');
          assert.equal(r.bytes, total);
          assert.equal(r.sha256, sent['sha256']);
          const rss1 = Number((await d.stats())['rssBytes']);
          assert.ok(
            rss1 - rss0 < 48 * MiB,
            `ferryd grew by ${((rss1 - rss0) / MiB).toFixed(1)} MiB for ${total / MiB} MiB`,
          );
        } finally {
          await closeServer(server);
        }
      },
    );

    test('a slow SDK reader: a node:net client is held back by TCP, nothing is lost', async () => {
      const slow = await startApp(d.socket, appEnv);
      try {
        const l = await slow.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'slow' });
        const rss0 = Number((await d.stats())['rssBytes']);
        const sock = await netConnect(portOf(l['uri']));
        const data = seededBytes(30, 16 * MiB);
        sock.end(data);
        const acc = await slow.waitFor((e) => e.event === 'accepted');
        const end = await slow.waitFor((e) => e.event === 'end' && e.tag === acc.tag, 90_000);
        assert.equal(end['rxBytes'], data.length);
        assert.equal(end['sha256'], sha256(data));
        const rss1 = Number((await d.stats())['rssBytes']);
        assert.ok(rss1 - rss0 < 48 * MiB, `ferryd grew by ${((rss1 - rss0) / MiB).toFixed(1)} MiB`);
      } finally {
        await slow.kill();
      }
    });

    test('an SDK app that dies resets its TCP sessions and closes its kernel listener', async () => {
      const base = await d.stats();
      const srv = await startApp(d.socket, appEnv);
      const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const port = portOf(l['uri']);
      const sock = await netConnect(port);
      const got = collect(sock);
      sock.write(seededBytes(31, 100_000));
      await srv.waitFor((e) => e.event === 'accepted');
      await srv.kill('SIGKILL');
      const r = await got;
      await diedWithListener(r.how, base);
      await assert.rejects(netConnect(port), /ECONNREFUSED/);
      await backToBaseline(d, base, 'ferryd counts back to baseline');
    });

    test('an SDK app that dies while the node:net client has not read its echo: RST all the same', async () => {
      // The CI failure of 35e1eb9, made certain: the echo waits unread in the client's kernel
      // when ferryd's RST lands, which node 20 reported as 'end' (collect() asks the kernel).
      const base = await d.stats();
      const srv = await startApp(d.socket, appEnv);
      const l = await srv.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
      const sock = await netConnect(portOf(l['uri']));
      const fd = fdOf(sock);
      const got = collect(sock);
      sock.pause();
      sock.write(seededBytes(33, 100_000));
      await srv.waitFor((e) => e.event === 'accepted');
      await eventually(async () => tcpInfo(fd).bytesReceived === 100_000, 10_000, 'the whole echo');
      assert.equal(tcpReadEnd(fd), 'data', 'part of the echo is unread');
      await srv.kill('SIGKILL');
      await eventually(async () => tcpInfo(fd).state !== 'ESTABLISHED', 10_000, 'the connection ended');
      sock.resume();
      const r = await got;
      assert.equal(r.bytes, 100_000);
      await diedWithListener(r.how, base);
      await backToBaseline(d, base, 'ferryd counts back to baseline');
    });

    outbound('connect errors keep their POSIX codes: ECONNREFUSED', async () => {
      const { server, port } = await netServer(() => {});
      await closeServer(server);
      const r = await client.call({ op: 'connect', tag: 'refused', uri: `tcp://127.0.0.1:${port}` });
      assert.equal(r['ok'], false);
      assert.equal(r['code'], 'ECONNREFUSED');
    });
  });

  describe('connect timeout', () => {
    outbound("a connect the remote never answers fails with ETIMEDOUT after ferryd's timeout", async (t) => {
      const hole = await blackholePort();
      if (!hole) {
        t.skip('python3 is not installed (needed to make a port that drops SYNs)');
        return;
      }
      const d2 = await startDaemon(['--tcp-connect-timeout-ms', '400']);
      const app = await startApp(d2.socket, appEnv);
      try {
        const t0 = Date.now();
        const r = await app.call({ op: 'connect', tag: 'to', uri: `tcp://127.0.0.1:${hole.port}` });
        assert.equal(r['ok'], false);
        assert.equal(r['code'], 'ETIMEDOUT');
        assert.ok(Date.now() - t0 >= 350, 'not before the timeout');
        assert.equal(Number((await d2.stats())['sessions']), 0);
      } finally {
        hole.stop();
        await app.kill();
        await d2.stop();
      }
    });
  });

  describe('two ferryd on one machine', () => {
    test('an SDK app on ferryd A reaches an SDK app on ferryd B over TCP', async () => {
      const d2 = await startDaemon([], daemonOpts);
      const far = await startApp(d2.socket, appEnv);
      try {
        const l = await far.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
        const r = await client.ok({ op: 'connect', tag: 'ab', uri: l['uri'] });
        assert.equal(r['transport'], TRANSPORT);
        const acc = await far.waitFor((e) => e.event === 'accepted');
        assert.equal(acc['transport'], TRANSPORT);
        const sent = await client.ok({
          op: 'send',
          tag: 'ab',
          bytes: 4 * MiB + 1,
          seed: 32,
          chunk: 65_536,
          end: true,
        });
        const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'ab', 30_000);
        assert.equal(end['rxBytes'], 4 * MiB + 1);
        assert.equal(end['sha256'], sent['sha256']);
      } finally {
        await far.kill();
        await d2.stop();
      }
    });
  });
}

/**
 * A node:net server in its own process that accepts and never reads, so the test can kill it
 * mid-transfer with bytes unread: its kernel then answers with RST (not FIN), deterministically.
 */
function spawnSink(): { proc: ChildProcess; port: Promise<number> } {
  const script = `const s = require('net').createServer((c) => c.pause());
s.listen(0, '127.0.0.1', () => console.log(s.address().port));`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('sink did not start')), 10_000);
    proc.stdout?.once('data', (d: Buffer) => {
      clearTimeout(timer);
      resolve(Number(d.toString().trim()));
    });
  });
  return { proc, port };
}
