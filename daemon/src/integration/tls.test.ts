/** TLS terminated by ferryd: node:tls peers against SDK apps, certificates made with openssl. */
import assert from 'node:assert/strict';
import { connect as netConnectRaw, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import {
  type Server,
  type TLSSocket,
  connect as tlsConnect,
  createServer as tlsCreateServer,
} from 'node:tls';
import { tcpInfo } from '@ferry/sdk/internal';
import { makeTestCerts, type TestCerts } from '../test-kit/test-certs.js';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { collect, fdOf, hasBinary, sha256, tcpConnectionListed } from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';

const MiB = 1024 * 1024;

let certs: TestCerts;
let d: DaemonHandle;
let client: AppHandle;

before(async () => {
  if (!hasBinary('openssl')) {
    // .ci/run installs it; a developer machine without it cannot make the test certificates.
    if (process.env['CI']) assert.fail('openssl is missing (.ci/run installs it)');
  }
  certs = makeTestCerts();
  // ferryd has its own certificate too, for listens that give none.
  d = await startDaemon(['--tls-cert', certs.certFile, '--tls-key', certs.keyFile]);
  client = await startApp(d.socket);
});

after(async () => {
  await client?.kill();
  await d?.stop();
  certs?.remove();
});

function portOf(uri: unknown): number {
  return Number(String(uri).split(':').pop());
}

interface SessionRow {
  app: number;
  transport: string;
}

async function sessionsOf(transport: string): Promise<SessionRow[]> {
  return ((await d.show('sessions')) as SessionRow[]).filter((s) => s.transport === transport);
}

function nodeTlsClient(port: number, ca: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => {
      s.off('error', reject);
      resolve(s);
    });
    s.once('error', reject);
  });
}

async function nodeTlsServer(
  cert: string,
  key: string,
  onConn: (s: TLSSocket) => void,
): Promise<{ server: Server; port: number }> {
  const server = tlsCreateServer({ cert, key }, onConn);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return { server, port: typeof addr === 'object' && addr ? addr.port : 0 };
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

const echoServer = (s: TLSSocket) => {
  s.on('data', (b: Buffer) => s.write(b));
  s.on('end', () => s.end());
  s.on('error', () => {});
};

describe('SDK listeners on tls://', () => {
  let srv: AppHandle;
  let port = 0;

  before(async () => {
    srv = await startApp(d.socket);
    const l = await srv.ok({
      op: 'listen',
      uri: 'tls://127.0.0.1:0',
      behavior: 'echo',
      tls: { cert: certs.cert, key: certs.key },
    });
    assert.match(String(l['uri']), /^tls:\/\/127\.0\.0\.1:\d+$/);
    port = portOf(l['uri']);
    const rows = (await d.show('listeners')) as { uri: string; transports: string[] }[];
    assert.deepEqual(rows.find((r) => r.uri === l['uri'])?.transports, ['ct', 'tls']);
  });

  after(async () => {
    await srv?.kill();
  });

  test('a node:tls client that trusts the CA: checksummed MiBs both ways, the session is tls', async () => {
    const sock = await nodeTlsClient(port, certs.ca);
    assert.equal(sock.authorized, true);
    const acc = await srv.waitFor((e) => e.event === 'accepted' && e['transport'] === 'tls');
    assert.equal(acc['remote'], `127.0.0.1:${sock.localPort}`);
    const got = collect(sock);
    const data = seededBytes(41, 4 * MiB + 333);
    sock.end(data);
    const r = await got;
    assert.equal(r.how, 'end');
    assert.equal(r.bytes, data.length);
    assert.equal(r.sha256, sha256(data));
    await eventually(async () => (await sessionsOf('tls')).length === 0, 10_000, 'the tls session freed');
  });

  test('curl --cacert reaches it over TLS (the echo sends the request back)', async (t) => {
    if (!hasBinary('curl')) {
      if (process.env['CI']) assert.fail('curl is missing (.ci/run installs it)');
      t.skip('curl is not installed');
      return;
    }
    const { runWithInput } = await import('../testing/net-peer.js');
    // telnet:// has no TLS; a TLS handshake curl verifies is what counts, so ask for the raw
    // response of an echo: curl sends its request, reads it back as a malformed answer (exit 1 or
    // 8), but only after the handshake succeeded, which `-v` reports.
    const run = runWithInput(
      'curl',
      ['-sv', '--max-time', '10', '--cacert', certs.caFile, `https://localhost:${port}/`],
      null,
      20_000,
    );
    const r = await run.done;
    assert.match(r.stderr, /SSL certificate verify ok/, r.stderr);
    assert.match(r.stderr, /subject: CN ?= ?localhost/, r.stderr);
  });

  test('a client that does not trust the certificate fails the handshake; the app never hears of it', async () => {
    const before = srv.events.filter((e) => e.event === 'accepted').length;
    const failuresBefore = ((await d.stats())['session'] as Record<string, number>)['tlsFailures'] ?? 0;
    const err = await new Promise<Error & { code?: string }>((resolve) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost' });
      s.once('secureConnect', () => resolve(Object.assign(new Error('connected'), { code: 'none' })));
      s.once('error', resolve);
    });
    assert.equal(err.code, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    // A client that speaks no TLS at all: ferryd drops it after a failed handshake.
    const raw = netConnectRaw({ host: '127.0.0.1', port });
    raw.on('error', () => {});
    raw.end('GET / HTTP/1.0\r\n\r\n');
    await eventually(
      async () => {
        const counters = (await d.stats())['session'] as Record<string, number>;
        return (counters['tlsFailures'] ?? 0) >= failuresBefore + 2;
      },
      10_000,
      'ferryd to count both failed handshakes',
    );
    assert.equal(srv.events.filter((e) => e.event === 'accepted').length, before);
  });

  test('an SDK server resets an accepted TLS session: an RST reaches the client', async () => {
    // The client runs TLS over a JS stream on a plain TCP socket, where the RST itself shows. A
    // sink, as in the TCP reset test: with an echo's bytes in flight towards the client at the
    // moment of the reset, the client's kernel socket now and then reported EOF, not ECONNRESET.
    const sink = await startApp(d.socket);
    const l = await sink.ok({
      op: 'listen',
      uri: 'tls://127.0.0.1:0',
      behavior: 'sink',
      tls: { cert: certs.cert, key: certs.key },
    });
    const raw = netConnectRaw({ host: '127.0.0.1', port: portOf(l['uri']) });
    await new Promise<void>((resolve, reject) => {
      raw.once('connect', resolve);
      raw.once('error', reject);
    });
    const rawEnd = new Promise<string>((resolve) => {
      raw.once('error', (err: Error & { code?: string }) => resolve(err.code ?? 'error'));
      raw.once('end', () => resolve('end'));
    });
    const stream = new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        raw.write(chunk, cb);
      },
      final(cb) {
        raw.end(cb);
      },
    });
    raw.on('data', (b: Buffer) => stream.push(b));
    raw.on('end', () => stream.push(null));
    raw.on('close', () => stream.destroy());
    const sock = tlsConnect({ socket: stream, ca: certs.ca, servername: 'localhost' });
    sock.on('error', () => {});
    await new Promise<void>((resolve) => sock.once('secureConnect', () => resolve()));
    sock.write('hello');
    try {
      const acc = await sink.waitFor(
        (e) => e.event === 'accepted' && e['remote'] === `127.0.0.1:${raw.localPort}`,
      );
      await sink.ok({ op: 'reset', tag: acc.tag });
      assert.equal(await rawEnd, 'ECONNRESET');
    } finally {
      await sink.kill();
    }
  });

  test("a listen without a certificate serves ferryd's own (--tls-cert)", async () => {
    const app = await startApp(d.socket);
    try {
      const l = await app.ok({ op: 'listen', uri: 'tls://127.0.0.1:0', behavior: 'echo' });
      const sock = await nodeTlsClient(portOf(l['uri']), certs.ca);
      assert.equal(sock.getPeerCertificate().subject?.CN, 'localhost');
      const got = collect(sock);
      sock.end('through the configured certificate');
      assert.equal((await got).text, 'through the configured certificate');
    } finally {
      await app.kill();
    }
  });
});

describe('SDK clients to tls:// servers', () => {
  test('a node:tls server the CA vouches for: checksummed both ways, the session is tls', async () => {
    const { server, port } = await nodeTlsServer(certs.cert, certs.key, echoServer);
    try {
      const r = await client.ok({
        op: 'connect',
        tag: 'c1',
        uri: `tls://localhost:${port}`,
        tls: { ca: certs.ca },
      });
      assert.equal(r['transport'], 'tls');
      const sent = await client.ok({
        op: 'send',
        tag: 'c1',
        bytes: 3 * MiB + 7,
        seed: 42,
        chunk: 65_537,
        end: true,
      });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'c1', 30_000);
      assert.equal(end['rxBytes'], 3 * MiB + 7);
      assert.equal(end['sha256'], sent['sha256']);
      await client.waitFor((e) => e.event === 'close' && e.tag === 'c1');
    } finally {
      await close(server);
    }
  });

  test('an IP address URI is verified against the IP in the certificate', async () => {
    const { server, port } = await nodeTlsServer(certs.cert, certs.key, echoServer);
    try {
      const r = await client.ok({
        op: 'connect',
        tag: 'c2',
        uri: `tls://127.0.0.1:${port}`,
        tls: { ca: certs.ca },
      });
      assert.equal(r['transport'], 'tls');
      await client.ok({ op: 'end', tag: 'c2', data: 'ip' });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'c2');
      assert.equal(end['rxBytes'], 2);
    } finally {
      await close(server);
    }
  });

  test('bad certificates fail the connect with ERR_FERRY_TLS_CERT and keep node’s code', async () => {
    const rogue = await nodeTlsServer(certs.rogueCert, certs.rogueKey, echoServer);
    const other = await nodeTlsServer(certs.otherCert, certs.otherKey, echoServer);
    try {
      const self = await client.call({
        op: 'connect',
        tag: 'bad1',
        uri: `tls://localhost:${rogue.port}`,
        tls: { ca: certs.ca },
      });
      assert.equal(self['ok'], false);
      assert.equal(self['code'], 'ERR_FERRY_TLS_CERT');
      assert.match(String(self['message']), /DEPTH_ZERO_SELF_SIGNED_CERT/);

      // No CA given: the system's roots do not know the test CA either.
      const noCa = await client.call({ op: 'connect', tag: 'bad2', uri: `tls://localhost:${rogue.port}` });
      assert.equal(noCa['code'], 'ERR_FERRY_TLS_CERT');

      const name = await client.call({
        op: 'connect',
        tag: 'bad3',
        uri: `tls://localhost:${other.port}`,
        tls: { ca: certs.ca },
      });
      assert.equal(name['code'], 'ERR_FERRY_TLS_CERT');
      assert.match(String(name['message']), /ERR_TLS_CERT_ALTNAME_INVALID/);

      // The right name for that certificate, given as servername, verifies.
      const named = await client.ok({
        op: 'connect',
        tag: 'ok3',
        uri: `tls://127.0.0.1:${other.port}`,
        tls: { ca: certs.ca, servername: 'other.test' },
      });
      assert.equal(named['transport'], 'tls');
      await client.ok({ op: 'destroy', tag: 'ok3' });

      // Verification off only when asked explicitly.
      const off = await client.ok({
        op: 'connect',
        tag: 'off',
        uri: `tls://localhost:${rogue.port}`,
        tls: { rejectUnauthorized: false },
      });
      assert.equal(off['transport'], 'tls');
      await client.ok({ op: 'destroy', tag: 'off' });
      await eventually(async () => (await sessionsOf('tls')).length === 0, 10_000, 'tls sessions freed');
    } finally {
      await close(rogue.server);
      await close(other.server);
    }
  });

  test('a plain TCP server on a tls:// connect: the handshake fails with a clear error', async () => {
    const { netServer, closeServer } = await import('../testing/net-peer.js');
    const { server, port } = await netServer((s) => {
      s.on('error', () => {});
      // Read what ferryd sends (its ClientHello): unread bytes would hold back the 'end' of a FIN,
      // and server.close() would wait forever for this socket when ferryd closes with FIN, not RST.
      s.resume();
      s.end('HTTP/1.1 400 Bad Request\r\n\r\n');
    });
    try {
      const r = await client.call({ op: 'connect', tag: 'plain', uri: `tls://localhost:${port}` });
      assert.equal(r['ok'], false);
      assert.ok(
        r['code'] === 'ERR_FERRY_TLS_HANDSHAKE' || r['code'] === 'ECONNRESET',
        `${r['code']}: ${r['message']}`,
      );
      if (r['code'] === 'ERR_FERRY_TLS_HANDSHAKE') {
        assert.match(String(r['message']), /\(ERR_SSL_WRONG_VERSION_NUMBER\) wrong version number$/);
      }
    } finally {
      await closeServer(server);
    }
  });

  test('a node:tls server that resets behind bytes ferryd has not read: ECONNRESET, not an end', async () => {
    let raw: Socket | null = null;
    let conn: TLSSocket | null = null;
    const { server, port } = await nodeTlsServer(certs.cert, certs.key, (s) => {
      s.on('error', () => {});
      conn = s;
      raw = (s as unknown as { _parent: Socket })._parent;
      s.write(seededBytes(44, 4 * MiB));
    });
    try {
      const uri = `tls://localhost:${port}`;
      await client.ok({
        op: 'connect',
        tag: 'rb',
        uri,
        tls: { ca: certs.ca },
        behavior: 'hold',
        fifoSize: 262_144,
      });
      await eventually(async () => raw !== null, 5000, 'the server to accept');
      const r = raw as unknown as Socket;
      // The app holds: ferryd fills its fifo and stops reading. Once the remote's kernel holds
      // bytes it may not send (ferryd's window is shut) and nothing more is acknowledged over a
      // few polls, ferryd's kernel is full of bytes it has not read.
      let acked = -1;
      let still = 0;
      await eventually(
        async () => {
          const info = tcpInfo(fdOf(r));
          still = info.notSentBytes > 0 && info.bytesAcked === acked ? still + 1 : 0;
          acked = info.bytesAcked;
          return still >= 4;
        },
        20_000,
        "ferryd's window shut",
      );
      const ferrydPort = r.remotePort ?? 0;
      r.resetAndDestroy();
      await eventually(async () => !tcpConnectionListed(ferrydPort, port), 10_000, "ferryd's socket reset");
      await client.ok({ op: 'resume', tag: 'rb' });
      const ev = await client.waitFor((e) => (e.event === 'error' || e.event === 'end') && e.tag === 'rb');
      assert.equal(ev.event, 'error', 'a reset, not a clean end of stream');
      assert.equal(ev['code'], 'ECONNRESET');
    } finally {
      (conn as TLSSocket | null)?.destroy();
      await close(server);
    }
  });

  test('a node:tls server that vanishes mid-transfer: the SDK client gets ECONNRESET', async () => {
    let received = 0;
    const { server, port } = await nodeTlsServer(certs.cert, certs.key, (s) => {
      s.on('error', () => {});
      s.on('data', (b: Buffer) => {
        received += b.length;
        // Gone: an RST through the kernel socket under the TLS one (node has no reset for TLS).
        if (received > 256 * 1024 && !s.destroyed)
          (s as unknown as { _parent: Socket })._parent.resetAndDestroy();
      });
    });
    try {
      await client.ok({ op: 'connect', tag: 'v', uri: `tls://localhost:${port}`, tls: { ca: certs.ca } });
      void client
        .call({ op: 'send', tag: 'v', bytes: 64 * MiB, seed: 43, chunk: 65_536 }, 60_000)
        .catch(() => {});
      const err = await client.waitFor((e) => e.event === 'error' && e.tag === 'v', 20_000);
      assert.equal(err['code'], 'ECONNRESET');
      await eventually(async () => (await sessionsOf('tls')).length === 0, 10_000, 'the tls session freed');
    } finally {
      await close(server);
    }
  });
});

describe('errors at listen', () => {
  test('a key that does not match the certificate, half a pair, or junk: ERR_FERRY_TLS_CONFIG', async () => {
    const app = await startApp(d.socket);
    try {
      const mismatch = await app.call({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert, key: certs.rogueKey },
      });
      assert.equal(mismatch['code'], 'ERR_FERRY_TLS_CONFIG');
      assert.match(String(mismatch['message']), /\(ERR_OSSL_[A-Z0-9_]+\)/);
      const half = await app.call({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert },
      });
      assert.equal(half['code'], 'ERR_FERRY_TLS_CONFIG');
      const junk = await app.call({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: 'not a certificate', key: certs.key },
      });
      assert.equal(junk['code'], 'ERR_FERRY_TLS_CONFIG');
      const onTcp = await app.call({
        op: 'listen',
        uri: 'tcp://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert, key: certs.key },
      });
      assert.equal(onTcp['code'], 'ERR_INVALID_ARG_VALUE');
    } finally {
      await app.kill();
    }
  });

  test('without a certificate in the listen or in ferryd: ERR_FERRY_TLS_CONFIG', async () => {
    const bare = await startDaemon();
    const app = await startApp(bare.socket);
    try {
      const r = await app.call({ op: 'listen', uri: 'tls://127.0.0.1:0', behavior: 'echo' });
      assert.equal(r['code'], 'ERR_FERRY_TLS_CONFIG');
      assert.match(String(r['message']), /--tls-cert/);
    } finally {
      await app.kill();
      await bare.stop();
    }
  });
});

describe('local clients of a tls:// listener', () => {
  test('cut-through by default when the client would accept the certificate; real TLS otherwise', async () => {
    const open = await startApp(d.socket);
    const strict = await startApp(d.socket);
    try {
      const lo = await open.ok({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert, key: certs.key },
      });
      const ls = await strict.ok({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert, key: certs.key, cutThrough: false },
      });

      // Trusts the CA: no TLS needed, the bytes stay in shared memory.
      const ct = await client.ok({ op: 'connect', tag: 'l1', uri: lo['uri'], tls: { ca: certs.ca } });
      assert.equal(ct['transport'], 'ct');
      await client.ok({ op: 'end', tag: 'l1', data: 'cut-through' });
      const e1 = await client.waitFor((e) => e.event === 'end' && e.tag === 'l1');
      assert.equal(e1['rxBytes'], 'cut-through'.length);

      // The client asks for TLS all the way: ferryd connects to its own kernel listener.
      const own = await client.ok({
        op: 'connect',
        tag: 'l2',
        uri: lo['uri'],
        tls: { ca: certs.ca, cutThrough: false },
      });
      assert.equal(own['transport'], 'tls');

      // The listener refuses cut-through: TLS on loopback, data intact.
      const viaTls = await client.ok({ op: 'connect', tag: 'l3', uri: ls['uri'], tls: { ca: certs.ca } });
      assert.equal(viaTls['transport'], 'tls');
      const sent = await client.ok({
        op: 'send',
        tag: 'l3',
        bytes: MiB + 3,
        seed: 44,
        chunk: 32_768,
        end: true,
      });
      const e3 = await client.waitFor((e) => e.event === 'end' && e.tag === 'l3', 30_000);
      assert.equal(e3['sha256'], sent['sha256']);
      await strict.waitFor((e) => e.event === 'accepted' && e['transport'] === 'tls');

      // A client that does not trust the listener's certificate gets no cut-through around its
      // verification: it goes through the handshake, which refuses the certificate.
      const untrusted = await client.call({ op: 'connect', tag: 'l4', uri: lo['uri'] });
      assert.equal(untrusted['code'], 'ERR_FERRY_TLS_CERT');
      const wrongName = await client.call({
        op: 'connect',
        tag: 'l5',
        uri: lo['uri'],
        tls: { ca: certs.ca, servername: 'other.test' },
      });
      assert.equal(wrongName['code'], 'ERR_FERRY_TLS_CERT');
      await client.ok({ op: 'destroy', tag: 'l2' });
    } finally {
      await open.kill();
      await strict.kill();
    }
  });
});

describe('half-close and two ferryd over TLS', () => {
  test('a node:tls client half-closes; the SDK server reads to the end and still answers', async () => {
    const app = await startApp(d.socket);
    try {
      const l = await app.ok({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'reply-on-end',
        allowHalfOpen: true,
        tls: { cert: certs.cert, key: certs.key },
      });
      const sock = await new Promise<TLSSocket>((resolve, reject) => {
        // allowHalfOpen is honoured by tls.connect (passed to the TLSSocket) but not in its typings.
        const opts = { host: '127.0.0.1', port: portOf(l['uri']), ca: certs.ca, servername: 'localhost' };
        const s = tlsConnect({ ...opts, allowHalfOpen: true } as typeof opts, () => resolve(s));
        s.once('error', reject);
      });
      const got = collect(sock);
      sock.end(seededBytes(45, 100_000));
      const r = await got;
      assert.equal(r.how, 'end');
      assert.equal(r.text, 'got 100000');
    } finally {
      await app.kill();
    }
  });

  test('an SDK app on ferryd A reaches an SDK app on ferryd B over TLS', async () => {
    const b = await startDaemon();
    const server = await startApp(b.socket);
    try {
      const l = await server.ok({
        op: 'listen',
        uri: 'tls://127.0.0.1:0',
        behavior: 'echo',
        tls: { cert: certs.cert, key: certs.key },
      });
      const r = await client.ok({
        op: 'connect',
        tag: 'ab',
        uri: `tls://localhost:${portOf(l['uri'])}`,
        tls: { ca: certs.ca },
      });
      assert.equal(r['transport'], 'tls');
      await server.waitFor((e) => e.event === 'accepted' && e['transport'] === 'tls');
      const sent = await client.ok({
        op: 'send',
        tag: 'ab',
        bytes: 2 * MiB + 9,
        seed: 46,
        chunk: 50_000,
        end: true,
      });
      const end = await client.waitFor((e) => e.event === 'end' && e.tag === 'ab', 30_000);
      assert.equal(end['rxBytes'], 2 * MiB + 9);
      assert.equal(end['sha256'], sent['sha256']);
    } finally {
      await server.kill();
      await b.stop();
    }
  });
});
