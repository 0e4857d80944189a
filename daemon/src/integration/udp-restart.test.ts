/**
 * UDP across a ferryd restart (kill -9, then a new ferryd on the same socket): cut-through pairs
 * keep carrying datagrams while ferryd is away, remote sends fail fast, and each socket binds its
 * address again once its app has reattached.
 */
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { after, test } from 'node:test';
import { datagramPayload, sha256 } from '../testing/datagrams.js';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { UDP_APP, waitReceived } from '../testing/udp-received.js';

const daemons: DaemonHandle[] = [];
const apps: AppHandle[] = [];

after(async () => {
  for (const a of apps) await a.kill();
  for (const d of daemons.reverse()) await d.stop();
});

test('datagram sockets survive a ferryd restart: cut-through goes on, the endpoint comes back', async () => {
  const d1 = await startDaemon();
  daemons.push(d1);
  const a = await startApp(d1.socket, {}, UDP_APP);
  const b = await startApp(d1.socket, {}, UDP_APP);
  apps.push(a, b);
  const portA = Number((await a.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
  const portB = Number((await b.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
  const peer = createSocket('udp4');
  const peerGot: { msg: Buffer; rinfo: RemoteInfo }[] = [];
  peer.on('message', (msg, rinfo) => peerGot.push({ msg, rinfo }));
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
  const peerPort = peer.address().port;
  try {
    await a.ok({ op: 'send', port: portB, sizes: [10, 20], seed: 1 });
    await waitReceived(b, 2, 'b to get the first two');

    // ferryd dies.
    d1.proc.kill('SIGKILL');
    await a.waitFor((e) => e.event === 'udp-lost', 10_000);
    await b.waitFor((e) => e.event === 'udp-lost', 10_000);

    // The cut-through pair needs no ferryd; a remote destination does, and fails fast.
    await a.ok({ op: 'send', port: portB, sizes: [30, 40], seed: 2 });
    const during = await waitReceived(b, 4, 'b to get datagrams sent while ferryd is away');
    assert.deepEqual(
      during.slice(2).map((g) => [g.size, g.sha256, g.port]),
      [30, 40].map((n, i) => [n, sha256(datagramPayload(2, i, n)), portA]),
    );
    const away = await a.ok({ op: 'send', port: peerPort, sizes: [5], seed: 3 });
    assert.deepEqual(away['codes'], ['ERR_FERRY_DAEMON_LOST']);

    // A new ferryd on the same socket: both sockets bind the same ports again.
    const d2 = await startDaemon([], { socket: d1.socket });
    daemons.push(d2);
    const ra = await a.waitFor((e) => e.event === 'udp-reattached', 15_000);
    const rb = await b.waitFor((e) => e.event === 'udp-reattached', 15_000);
    assert.equal(ra['port'], portA);
    assert.equal(rb['port'], portB);

    // Remote peers reach both again, both ways, from and to the same addresses.
    await a.ok({ op: 'send', port: peerPort, sizes: [6, 7], seed: 4 });
    await eventually(async () => peerGot.length >= 2, 10_000, 'the peer to get 2');
    assert.deepEqual(
      peerGot.map((g) => [g.msg.length, g.rinfo.port]),
      [
        [6, portA],
        [7, portA],
      ],
    );
    await new Promise<void>((resolve, reject) =>
      peer.send(Buffer.from('hi b'), portB, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
    );
    const gotB = await waitReceived(b, 5, "b to get the peer's datagram through the new ferryd");
    assert.equal(gotB[4]?.port, peerPort);

    // A new app reaches b through the new ferryd (a fresh cut-through pair).
    const c = await startApp(d2.socket, {}, UDP_APP);
    apps.push(c);
    const portC = Number((await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
    await c.ok({ op: 'send', port: portB, sizes: [8], seed: 5 });
    const last = await waitReceived(b, 6, 'b to get c');
    assert.equal(last[5]?.port, portC);
    const sessions = (await d2.show('sessions')) as { transport: string; local: string }[];
    assert.ok(sessions.some((s) => s.transport === 'ct' && s.local === `udp://127.0.0.1:${portC}`));
  } finally {
    await new Promise<void>((resolve) => peer.close(() => resolve()));
  }
});
