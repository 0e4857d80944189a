// memif interfaces in one process: handshake in both roles, data byte for byte (single and chained
// buffers, several queues), rx modes, sockets (abstract and filesystem), refusals, reconnect.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { FerryError } from '../errors.js';
import type { MemifRxBurst } from './bursts.js';
import type { MemifDownReason, MemifLinkInfo } from './link-info.js';
import { createMemif, type Memif } from './memif.js';
import type { MemifOptions } from './options.js';
import { abstractName, eventually, nextEvent, packet, socketPath } from './testing/util.js';

const open: Memif[] = [];
function make(o: MemifOptions): Memif {
  const m = createMemif(o);
  open.push(m);
  return m;
}
after(async () => {
  for (const m of open) await m.close();
});

async function pair(
  server: Partial<MemifOptions>,
  client: Partial<MemifOptions>,
  socket = abstractName('pair'),
): Promise<{ srv: Memif; cli: Memif; si: MemifLinkInfo; ci: MemifLinkInfo }> {
  const srv = make({ role: 'server', socket, id: 1, ...server });
  const cli = make({ role: 'client', socket, id: 1, ...client });
  const [si, ci] = await Promise.all([srv.waitUp(5000), cli.waitUp(5000)]);
  return { srv, cli, si, ci };
}

/** Receives exactly `n` packets from rx queue q (copies), polling until the deadline. */
async function receiveN(m: Memif, q: number, n: number, timeoutMs = 5000): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const deadline = Date.now() + timeoutMs;
  while (out.length < n) {
    out.push(...m.receive(q, n - out.length));
    if (out.length >= n) break;
    if (Date.now() > deadline) throw new Error(`received ${out.length} of ${n}`);
    await new Promise((r) => setImmediate(r));
  }
  return out;
}

/** Sends all packets on tx queue q, retrying while the ring is full. */
async function sendAll(m: Memif, q: number, pkts: Uint8Array[], timeoutMs = 5000): Promise<void> {
  let i = 0;
  const deadline = Date.now() + timeoutMs;
  while (i < pkts.length) {
    i += m.send(q, pkts, i, Math.min(64, pkts.length - i));
    if (i >= pkts.length) break;
    if (Date.now() > deadline) throw new Error(`sent ${i} of ${pkts.length}`);
    await new Promise((r) => setImmediate(r));
  }
}

describe('memif: handshake', () => {
  it('server and client come up with the negotiated parameters', async () => {
    const { si, ci } = await pair(
      { queues: { rx: 2, tx: 3 }, ringSize: 8, name: 'srv-app', ifName: 'srv-if' },
      { queues: { rx: 4, tx: 1 }, ringSize: 12, bufferSize: 512, name: 'cli-app', ifName: 'cli-if' },
    );
    // The client asks for min(its own, the server's limits).
    assert.deepEqual(ci.queues, { rx: 3, tx: 1 });
    assert.deepEqual(si.queues, { rx: 1, tx: 3 });
    assert.equal(ci.ringSize, 8);
    assert.equal(si.ringSize, 8);
    assert.equal(ci.bufferSize, 512);
    assert.equal(ci.peerName, 'srv-app', 'HELLO carries the server app name');
    assert.equal(si.peerName, 'cli-app');
    assert.equal(ci.peerIfName, 'srv-if');
    assert.equal(si.peerIfName, 'cli-if');
    assert.equal(ci.role, 'client');
    assert.equal(si.role, 'server');
    assert.equal(si.connection, 1);
  });

  it('ip mode: both sides in ip mode come up and carry packets', async () => {
    const { srv, cli, si, ci } = await pair({ mode: 'ip' }, { mode: 'ip' });
    assert.equal(si.mode, 'ip');
    assert.equal(ci.mode, 'ip');
    cli.send(0, [packet(9, 40)]);
    assert.deepEqual(await receiveN(srv, 0, 1), [packet(9, 40)]);
  });

  it('works over a filesystem socket and removes the path when the server closes', async () => {
    const path = socketPath('fs');
    const { srv } = await pair({}, {}, path);
    assert.ok(existsSync(path));
    await srv.close();
    assert.ok(!existsSync(path));
  });

  it('replaces a stale socket file but refuses a path something listens on', async () => {
    const path = socketPath('stale');
    const a = make({ role: 'server', socket: path, id: 1 });
    // Same process, same socket: shared listener, so a second id is fine and a duplicate is not.
    const b = make({ role: 'server', socket: path, id: 2 });
    assert.throws(() => make({ role: 'server', socket: path, id: 1 }), { code: 'EADDRINUSE' });
    await a.close();
    await b.close();
  });

  it('one server socket serves several interfaces by id', async () => {
    const socket = abstractName('multi');
    const s1 = make({ role: 'server', socket, id: 10 });
    const s2 = make({ role: 'server', socket, id: 20 });
    const c2 = make({ role: 'client', socket, id: 20 });
    const c1 = make({ role: 'client', socket, id: 10 });
    await Promise.all([s1.waitUp(), s2.waitUp(), c1.waitUp(), c2.waitUp()]);
    c1.send(0, [packet(1, 100)]);
    c2.send(0, [packet(2, 200)]);
    const [p1] = await receiveN(s1, 0, 1);
    const [p2] = await receiveN(s2, 0, 1);
    assert.deepEqual(p1, packet(1, 100));
    assert.deepEqual(p2, packet(2, 200));
  });

  it('refuses a wrong or missing secret, a mode mismatch, an unknown id and a second client', async () => {
    const socket = abstractName('refuse');
    const srv = make({ role: 'server', socket, id: 5, secret: 'letmein', mode: 'ethernet' });
    const cases: Array<[Partial<MemifOptions>, string]> = [
      [{ secret: 'wrong' }, 'Incorrect secret'],
      [{}, 'Secret required'],
      [{ secret: 'letmein', mode: 'ip' }, 'Mode mismatch'],
      [{ secret: 'letmein', id: 6 }, 'ID not found'],
    ];
    for (const [o, reason] of cases) {
      const srvFailed =
        reason === 'ID not found' ? null : nextEvent<[MemifDownReason]>(srv, 'handshake-failed');
      const cli = make({ role: 'client', socket, id: 5, reconnect: false, ...o });
      const [err] = await nextEvent<[MemifDownReason]>(cli, 'handshake-failed');
      assert.equal(err.code, 'ERR_FERRY_MEMIF_PEER_DISCONNECT', reason);
      assert.equal(err.peerMessage, reason);
      assert.equal(err.willRetry, false);
      await assert.rejects(cli.waitUp(100), { code: 'ERR_FERRY_MEMIF_PEER_DISCONNECT' });
      assert.equal(cli.state, 'closed');
      if (srvFailed !== null) {
        const [serr] = await srvFailed;
        assert.equal(serr.code, 'ERR_FERRY_MEMIF_REJECTED');
        assert.match(serr.message, new RegExp(reason));
      }
    }
    const good = make({ role: 'client', socket, id: 5, secret: 'letmein' });
    await Promise.all([good.waitUp(), srv.waitUp()]);
    const second = make({ role: 'client', socket, id: 5, secret: 'letmein', reconnect: false });
    const [err] = await nextEvent<[MemifDownReason]>(second, 'handshake-failed');
    assert.equal(err.peerMessage, 'Already connected');
    assert.equal(srv.state, 'up');
  });

  it('a client with nothing to connect to fails (reconnect off) or keeps retrying (on)', async () => {
    const socket = abstractName('nobody');
    const once = make({ role: 'client', socket, reconnect: false });
    await assert.rejects(once.waitUp(2000), { code: 'ECONNREFUSED' });
    const retry = make({ role: 'client', socket, reconnect: { minDelayMs: 10, maxDelayMs: 40 } });
    let failures = 0;
    retry.on('handshake-failed', (e) => {
      assert.equal(e.willRetry, true);
      failures++;
    });
    await eventually(() => failures >= 3, 3000, 'three failed attempts');
    const srv = make({ role: 'server', socket });
    await Promise.all([retry.waitUp(3000), srv.waitUp(3000)]);
  });

  it('validates options', () => {
    const bad: Array<[unknown, string]> = [
      [{ role: 'peer', socket: '@x' }, 'ERR_INVALID_ARG_VALUE'],
      [{ socket: '@x' }, 'ERR_INVALID_ARG_VALUE'],
      [{ role: 'client', socket: '' }, 'ERR_INVALID_ARG_VALUE'],
      [{ role: 'client', socket: '@x', ringSize: 15 }, 'ERR_OUT_OF_RANGE'],
      [{ role: 'client', socket: '@x', queues: { rx: 256 } }, 'ERR_OUT_OF_RANGE'],
      [{ role: 'client', socket: '@x', secret: 's'.repeat(24) }, 'ERR_INVALID_ARG_VALUE'],
      [{ role: 'client', socket: '@x', bufferSize: 10 }, 'ERR_OUT_OF_RANGE'],
      [{ role: 'client', socket: '@x', rxMode: 'sometimes' }, 'ERR_INVALID_ARG_VALUE'],
      [{ role: 'client', socket: '@x', id: -1 }, 'ERR_OUT_OF_RANGE'],
      [
        { role: 'client', socket: '@x', queues: { rx: 255, tx: 255 }, ringSize: 14, bufferSize: 65535 },
        'ERR_OUT_OF_RANGE',
      ],
    ];
    for (const [o, code] of bad)
      assert.throws(() => createMemif(o as MemifOptions), { code }, JSON.stringify(o));
  });
});

describe('memif: data path', () => {
  it('client to server and back, byte for byte, including chained packets', async () => {
    const { srv, cli } = await pair({}, { bufferSize: 256, ringSize: 7 });
    const sizes = [1, 60, 255, 256, 257, 1000, 1500, 4000, 9000];
    const pkts = sizes.map((n, i) => packet(i, n));
    await sendAll(cli, 0, pkts);
    const got = await receiveN(srv, 0, pkts.length);
    assert.deepEqual(got, pkts);
    // Server to client: the server learns the client's 256-byte buffers and chains.
    await sendAll(srv, 0, pkts);
    const back = await receiveN(cli, 0, pkts.length);
    assert.deepEqual(back, pkts);
    assert.equal(srv.info?.bufferSize, 256);
    const s = cli.stats();
    assert.equal(s.tx[0]?.packets, pkts.length);
    assert.equal(
      s.tx[0]?.bytes,
      sizes.reduce((a, b) => a + b, 0),
    );
    assert.equal(s.rx[0]?.packets, pkts.length);
  });

  it('bursts give zero-copy views and segment access; a full ring is counted, not lost silently', async () => {
    const { srv, cli } = await pair({}, { bufferSize: 128, ringSize: 4 });
    const pkts = Array.from({ length: 20 }, (_, i) => packet(100 + i, 100));
    const sent = cli.send(0, pkts);
    assert.equal(sent, 16); // 2^4 slots
    const st = cli.stats().tx[0];
    assert.equal(st?.ringFull, 1);
    assert.equal(st?.drops, 4);
    const burst = srv.createRxBurst(8);
    assert.equal(srv.rxBurst(0, burst), 8);
    for (let i = 0; i < 8; i++) {
      const v = burst.packet(i);
      assert.equal(v.buffer, burst.bytesOf(i).buffer, 'one-segment packet is a view into the region');
      assert.deepEqual(v, pkts[i]);
      assert.equal(burst.segments(i), 1);
      const seg = burst.segment(i, 0);
      assert.equal(seg.length, 100);
    }
    // The ring is still full until the burst is released.
    assert.equal(cli.send(0, pkts, 16, 1), 0);
    burst.release();
    assert.equal(cli.send(0, pkts, 16, 4), 4);
    const rest = await receiveN(srv, 0, 12);
    assert.deepEqual(rest, pkts.slice(8, 20));
    // A chained packet through the burst API.
    const big = packet(7, 300);
    assert.equal(cli.send(0, [big]), 1);
    await eventually(() => srv.rxBurst(0, burst) === 1, 2000, 'chained packet');
    assert.equal(burst.segments(0), 3);
    assert.deepEqual(
      [0, 1, 2].map((s) => burst.segment(0, s).length),
      [128, 128, 44],
    );
    assert.deepEqual(burst.packet(0), big);
    const dst = new Uint8Array(310);
    assert.equal(burst.copy(0, dst, 10), 300);
    assert.deepEqual(dst.subarray(10), big);
    burst.release();
    // receive(max) takes at most max and leaves the rest in the ring.
    assert.equal(cli.send(0, pkts, 0, 5), 5);
    const three = await receiveN(srv, 0, 3);
    assert.deepEqual(three, pkts.slice(0, 3));
    assert.deepEqual(srv.receive(0, 10), pkts.slice(3, 5));
    assert.equal(srv.stats().rx[0]?.drops, 0);
    assert.throws(() => cli.send(0, [new Uint8Array(0)]), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => cli.send(0, [new Uint8Array(128 * 65)]), { code: 'EMSGSIZE' });
    assert.throws(() => cli.send(1, pkts), { code: 'ERR_OUT_OF_RANGE' });
  });

  it('txAlloc / txCommit write straight into shared buffers, in both roles', async () => {
    const { srv, cli } = await pair({}, { bufferSize: 2048, ringSize: 5 });
    for (const [tx, rx] of [
      [cli, srv],
      [srv, cli],
    ] as const) {
      const tb = tx.createTxBurst(64);
      const k = tx.txAlloc(0, tb, 10, 64);
      assert.equal(k, 10);
      for (let i = 0; i < k; i++) {
        const p = packet(200 + i, 64 + i);
        tb.bytesOf(i).set(p, tb.offsets[i]);
        tb.lengths[i] = p.byteLength;
      }
      assert.equal(tx.txCommit(0, tb, 7), 7);
      const got = await receiveN(rx, 0, 7);
      assert.deepEqual(
        got,
        Array.from({ length: 7 }, (_, i) => packet(200 + i, 64 + i)),
      );
      assert.throws(() => tx.txCommit(0, tb, 1), { code: 'ERR_INVALID_ARG_VALUE' }, 'stale reservation');
      const k2 = tx.txAlloc(0, tb, 2, 64);
      tb.lengths[0] = 0;
      assert.throws(() => tx.txCommit(0, tb, 1), { code: 'ERR_OUT_OF_RANGE' });
      assert.equal(k2, 2);
    }
  });

  it('several queues carry separate traffic', async () => {
    const { srv, cli, ci } = await pair({ queues: { rx: 3, tx: 3 } }, { queues: { rx: 3, tx: 3 } });
    assert.deepEqual(ci.queues, { rx: 3, tx: 3 });
    for (let q = 0; q < 3; q++) {
      await sendAll(
        cli,
        q,
        Array.from({ length: 50 }, (_, i) => packet(q * 1000 + i, 64 + q)),
      );
      await sendAll(
        srv,
        q,
        Array.from({ length: 50 }, (_, i) => packet(q * 2000 + i, 70 + q)),
      );
    }
    for (let q = 0; q < 3; q++) {
      assert.deepEqual(
        await receiveN(srv, q, 50),
        Array.from({ length: 50 }, (_, i) => packet(q * 1000 + i, 64 + q)),
      );
      assert.deepEqual(
        await receiveN(cli, q, 50),
        Array.from({ length: 50 }, (_, i) => packet(q * 2000 + i, 70 + q)),
      );
    }
  });

  for (const rxMode of ['interrupt', 'poll', 'adaptive'] as const) {
    it(`onPackets delivers everything in ${rxMode} mode (both directions)`, async () => {
      const { srv, cli } = await pair({ rxMode }, { rxMode, bufferSize: 512 });
      const got: Uint8Array[] = [];
      const back: Uint8Array[] = [];
      const collect = (into: Uint8Array[]) => (b: MemifRxBurst) => {
        for (let i = 0; i < b.count; i++) into.push(b.packet(i).slice());
      };
      srv.onPackets(collect(got));
      cli.onPackets(collect(back));
      const pkts = Array.from({ length: 300 }, (_, i) => packet(5000 + i, 40 + (i % 1200)));
      await sendAll(cli, 0, pkts);
      await sendAll(srv, 0, pkts);
      await eventually(() => got.length === 300 && back.length === 300, 5000, 'all packets');
      assert.deepEqual(got, pkts);
      assert.deepEqual(back, pkts);
      if (rxMode === 'interrupt') {
        assert.ok((srv.stats().rx[0]?.wakeups ?? 0) > 0, 'interrupt mode woke on the eventfd');
        assert.ok((cli.stats().tx[0]?.wakeups ?? 0) > 0, 'the sender rang the doorbell');
      }
      if (rxMode === 'poll') {
        assert.equal(cli.stats().tx[0]?.wakeups, 0, 'a polling receiver masks doorbells');
        assert.equal(srv.stats().tx[0]?.wakeups, 0, 'a polling receiver masks doorbells');
      }
      srv.onPackets(null);
      cli.onPackets(null);
    });
  }

  it('setRxMode switches at run time', async () => {
    const { srv, cli } = await pair({ rxMode: 'poll' }, {});
    let n = 0;
    srv.onPackets((b) => {
      n += b.count;
    });
    cli.send(0, [packet(1, 64)]);
    await eventually(() => n === 1, 2000, 'first packet (poll)');
    srv.setRxMode('interrupt');
    assert.equal(srv.rxMode, 'interrupt');
    cli.send(0, [packet(2, 64)]);
    await eventually(() => n === 2, 2000, 'second packet (interrupt)');
    assert.ok((cli.stats().tx[0]?.wakeups ?? 0) >= 1);
    assert.throws(() => srv.setRxMode('never' as 'poll'), { code: 'ERR_INVALID_ARG_VALUE' });
    srv.onPackets(null);
  });
});

describe('memif: link lifecycle', () => {
  it('server close: client goes down with the peer reason and reconnects to a new server', async () => {
    const socket = abstractName('reconnect');
    const { srv, cli } = await pair({}, { reconnect: { minDelayMs: 10, maxDelayMs: 50 } }, socket);
    const down = nextEvent<[MemifDownReason]>(cli, 'down');
    await srv.close();
    const [reason] = await down;
    assert.equal(reason.code, 'ERR_FERRY_MEMIF_PEER_DISCONNECT');
    assert.equal(reason.peerMessage, 'Interface closed');
    assert.equal(reason.willRetry, true);
    assert.equal(cli.state, 'connecting');
    assert.equal(cli.send(0, [packet(1, 64)]), 0, 'sending while down queues nothing');
    const srv2 = make({ role: 'server', socket, id: 1 });
    const [info] = await nextEvent<[MemifLinkInfo]>(cli, 'up');
    assert.equal(info.connection, 2);
    await srv2.waitUp();
    cli.send(0, [packet(3, 99)]);
    assert.deepEqual(await receiveN(srv2, 0, 1), [packet(3, 99)]);
  });

  it('a reservation taken before a reconnect commits nothing and does not throw', async () => {
    const socket = abstractName('stale-tx');
    const { srv, cli } = await pair({}, { reconnect: { minDelayMs: 10, maxDelayMs: 20 } }, socket);
    const tb = cli.createTxBurst(4);
    assert.equal(cli.txAlloc(0, tb, 4, 64), 4);
    const down = nextEvent(cli, 'down');
    await srv.close();
    await down;
    const srv2 = make({ role: 'server', socket, id: 1 });
    await Promise.all([cli.waitUp(), srv2.waitUp()]);
    tb.lengths.fill(64);
    assert.equal(cli.txCommit(0, tb, 4), 0);
    assert.equal(tb.count, 0);
    assert.equal(cli.txAlloc(0, tb, 4, 64), 4, 'a fresh reservation works');
    assert.equal(cli.txCommit(0, tb, 1), 1);
  });

  it('reconnect cycles leak no descriptors (memfds, eventfds, sockets)', async () => {
    const socket = abstractName('fdleak');
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const cycle = async (): Promise<void> => {
      const srv = createMemif({ role: 'server', socket, id: 1, queues: { rx: 2, tx: 2 } });
      const cli = createMemif({ role: 'client', socket, id: 1, queues: { rx: 2, tx: 2 }, reconnect: false });
      await Promise.all([srv.waitUp(), cli.waitUp()]);
      cli.send(0, [packet(1, 100)]);
      await receiveN(srv, 0, 1);
      await cli.close();
      await srv.close();
    };
    await cycle(); // warm up: the shared poller's epoll fd and eventfd stay
    const before = fds();
    for (let i = 0; i < 5; i++) await cycle();
    // A cycle opens a dozen fds (sockets, the memfd and 4 eventfds on each side): a leak of one per
    // cycle shows as 5 or more; 2 of slack absorb unrelated descriptors of the test process.
    await eventually(() => fds() <= before + 2, 3000, `fd count back to ${before} (now ${fds()})`);
  });

  it('client close: server goes down and listens again', async () => {
    const socket = abstractName('cliclose');
    const { srv, cli } = await pair({}, {}, socket);
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    await cli.close();
    const [reason] = await down;
    assert.equal(reason.code, 'ERR_FERRY_MEMIF_PEER_DISCONNECT');
    assert.equal(srv.state, 'listening');
    const cli2 = make({ role: 'client', socket, id: 1 });
    await Promise.all([cli2.waitUp(), srv.waitUp()]);
    assert.equal(srv.info?.connection, 2);
  });

  it('close() is idempotent and reports ERR_FERRY_MEMIF_CLOSED', async () => {
    const { cli } = await pair({}, {});
    const down = nextEvent<[MemifDownReason]>(cli, 'down');
    const closed = nextEvent(cli, 'close');
    await cli.close();
    await cli.close();
    const [r] = await down;
    await closed;
    assert.ok(r instanceof FerryError);
    assert.equal(r.code, 'ERR_FERRY_MEMIF_CLOSED');
    assert.equal(cli.state, 'closed');
    await assert.rejects(cli.waitUp(10), { code: 'ERR_FERRY_MEMIF_CLOSED' });
  });
});
