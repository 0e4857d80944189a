// Interop with dpdk-testpmd beyond the basic traffic tests: DPDK's refusals reach Ferry as down
// reasons with DPDK's own words, Ferry's refusals keep a DPDK client out, ring-size negotiation, two
// queue pairs, chained frames into DPDK, and a zero-copy DPDK client (its memory as extra regions).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { createMemif, type Memif, type MemifDownReason, type MemifRxBurst } from '@ferry/sdk/memif';
import { sendAll, sleep, until } from './dpdk-peer.js';
import { Testpmd, tempSocketDir, testpmdSkip } from './testpmd.js';

const skip = testpmdSkip();
const dirs = skip === false ? tempSocketDir('ferry-dpdk-hs-') : undefined;
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  dirs?.cleanup();
});

function track(m: Memif): Memif {
  cleanups.push(() => m.close());
  return m;
}

async function testpmd(o: Parameters<typeof Testpmd.start>[0]): Promise<Testpmd> {
  const tp = await Testpmd.start(o);
  cleanups.push(() => tp.close());
  return tp;
}

describe('memif handshake with dpdk-testpmd', { skip }, () => {
  it("a DPDK server's refusals end Ferry's client attempt with DPDK's reason", async () => {
    const socket = dirs?.path('refuse.sock') ?? '';
    const tp = await testpmd({ role: 'server', socket, id: 7, secret: 'abc' });
    const cases: { id: number; secret?: string; mode?: 'ip'; said: string }[] = [
      { id: 1, said: 'ID not found' },
      { id: 7, said: 'Secret required' },
      { id: 7, secret: 'xyz', said: 'Incorrect secret' },
      { id: 7, secret: 'abc', mode: 'ip', said: 'Only ethernet mode supported' },
    ];
    for (const c of cases) {
      const m = track(
        createMemif({
          role: 'client',
          socket,
          id: c.id,
          mode: c.mode ?? 'ethernet',
          reconnect: false,
          ...(c.secret === undefined ? {} : { secret: c.secret }),
        }),
      );
      const err = (await m.waitUp(10_000).then(
        () => assert.fail(`id ${c.id} secret ${c.secret} came up`),
        (e: unknown) => e,
      )) as MemifDownReason;
      assert.equal(err.code, 'ERR_FERRY_MEMIF_PEER_DISCONNECT', `${c.said}: ${err.message}`);
      assert.equal(err.peerMessage, c.said);
      await m.close();
    }
    const ok = track(createMemif({ role: 'client', socket, id: 7, secret: 'abc', reconnect: false }));
    const info = await ok.waitUp(10_000);
    assert.equal(info.peerName.startsWith('DPDK'), true, info.peerName);
    await tp.waitLinkUp();
    await ok.close();
  });

  it("Ferry's server refuses a DPDK client with the wrong secret and accepts the right one", async () => {
    const socket = dirs?.path('secret.sock') ?? '';
    const srv = track(createMemif({ role: 'server', socket, id: 3, secret: 'sesame' }));
    const rejected: MemifDownReason[] = [];
    srv.on('handshake-failed', (r: MemifDownReason) => rejected.push(r));
    const bad = await testpmd({ role: 'client', socket, id: 3, secret: 'wrong' });
    await until(
      () => rejected.length > 0,
      10_000,
      () => 'no handshake-failed on the server',
    );
    assert.equal(rejected[0]?.code, 'ERR_FERRY_MEMIF_REJECTED');
    assert.match(rejected[0]?.message ?? '', /secret/i);
    assert.equal((await bad.portInfo()).linkUp, false);
    assert.notEqual(srv.state, 'up');
    await bad.close();
    const good = await testpmd({ role: 'client', socket, id: 3, secret: 'sesame' });
    await srv.waitUp(10_000);
    await good.waitLinkUp();
    await good.close();
  });

  it("a DPDK client asking for 2 queue pairs gets what the Ferry server's HELLO allows (2, or 1)", async () => {
    for (const queues of [2, 1]) {
      const socket = dirs?.path(`queues${queues}.sock`) ?? '';
      const srv = track(createMemif({ role: 'server', socket, queues: { rx: queues, tx: queues } }));
      // debug: DPDK logs each ADD_RING it sends (one per ring in use).
      const tp = await testpmd({ role: 'client', socket, rxq: 2, txq: 2, debug: true });
      const info = await srv.waitUp(10_000);
      await tp.waitLinkUp();
      assert.deepEqual(info.queues, { rx: queues, tx: queues });
      const addRings = tp.output.split('\n').filter((l) => l.includes('Sent msg type 5.')).length;
      assert.equal(addRings, 2 * queues);
      await tp.close();
      await srv.close();
    }
  });

  it('a DPDK client shrinks its rings to what the Ferry server allows (2^8)', async () => {
    const socket = dirs?.path('ring.sock') ?? '';
    const srv = track(createMemif({ role: 'server', socket, ringSize: 8 }));
    const tp = await testpmd({ role: 'client', socket });
    const info = await srv.waitUp(10_000);
    await tp.waitLinkUp();
    assert.equal(info.ringSize, 8);
    await tp.close();
    await srv.close();
  });

  it('two queue pairs: testpmd txonly on both queues, Ferry (client) receives on both', async () => {
    const socket = dirs?.path('mq.sock') ?? '';
    const tp = await testpmd({ role: 'server', socket, rxq: 2, txq: 2 });
    const m = track(createMemif({ role: 'client', socket, queues: { rx: 2, tx: 2 }, rxMode: 'poll' }));
    const got = [0, 0];
    m.onPackets((burst: MemifRxBurst, queue: number) => {
      got[queue] = (got[queue] ?? 0) + burst.count;
    });
    const info = await m.waitUp(10_000);
    assert.deepEqual(info.queues, { rx: 2, tx: 2 });
    await tp.waitLinkUp();
    await tp.setFwd('txonly');
    await tp.startFwd();
    await until(
      () => (got[0] ?? 0) > 1000 && (got[1] ?? 0) > 1000,
      10_000,
      () => `per queue: ${got.join(', ')}`,
    );
    const fwd = await tp.stopFwd();
    await until(
      () => (got[0] ?? 0) + (got[1] ?? 0) >= (fwd?.txPackets ?? 0),
      5000,
      () => `got ${got.join(' + ')} of ${fwd?.txPackets}`,
    );
    await sleep(50);
    assert.equal((got[0] ?? 0) + (got[1] ?? 0), fwd?.txPackets);
    await m.close();
    await tp.close();
  });

  it('Ferry (client, 512 B buffers) sends 1200 B frames chained over 3 buffers; testpmd rxonly counts them whole', async () => {
    const socket = dirs?.path('chain.sock') ?? '';
    const tp = await testpmd({ role: 'server', socket });
    const m = track(createMemif({ role: 'client', socket, bufferSize: 512, rxMode: 'poll' }));
    await m.waitUp(10_000);
    await tp.waitLinkUp();
    await tp.setFwd('rxonly');
    await tp.startFwd();
    const n = 3000;
    const frames = Array.from({ length: n }, (_, i) => {
      const f = new Uint8Array(1200).fill(i & 255);
      f[12] = 0x88;
      f[13] = 0xb5;
      return f;
    });
    await sendAll(m, frames);
    let stats = await tp.portStats();
    for (let i = 0; i < 250 && stats.rxPackets < n; i++) {
      await sleep(20);
      stats = await tp.portStats();
    }
    await tp.stopFwd();
    assert.equal(stats.rxPackets, n);
    assert.equal(stats.rxBytes, n * 1200);
    await m.close();
    await tp.close();
  });

  it("Ferry (server) sends 1500 B frames chained over a DPDK client's 1024 B buffers; testpmd rxonly counts them whole", async () => {
    const socket = dirs?.path('chain-srv.sock') ?? '';
    const srv = track(createMemif({ role: 'server', socket, rxMode: 'poll' }));
    const tp = await testpmd({ role: 'client', socket, bufferSize: 1024 });
    const info = await srv.waitUp(10_000);
    await tp.waitLinkUp();
    await tp.setFwd('rxonly');
    await tp.startFwd();
    const n = 3000;
    const frames = Array.from({ length: n }, (_, i) => {
      const f = new Uint8Array(1500).fill(i & 255);
      f[12] = 0x88;
      f[13] = 0xb5;
      return f;
    });
    await sendAll(srv, frames);
    let stats = await tp.portStats();
    for (let i = 0; i < 250 && stats.rxPackets < n; i++) {
      await sleep(20);
      stats = await tp.portStats();
    }
    await tp.stopFwd();
    assert.equal(srv.info?.bufferSize ?? info.bufferSize, 1024);
    assert.equal(stats.rxPackets, n);
    assert.equal(stats.rxBytes, n * 1500);
    await tp.close();
    await srv.close();
  });

  // DPDK's zero-copy client hands over its EAL memory (a memseg file without F_SEAL_SHRINK) as
  // region 1. Ferry's server requires the seal on every region (a client that shrinks an unsealed
  // file would make the server take SIGBUS), so it refuses such a client, by design, with a clear
  // reason. If that policy changes, this test should become a traffic test.
  it('a zero-copy DPDK client (unsealed memseg region) is refused with a clear reason, and nothing breaks', async () => {
    const socket = dirs?.path('zc.sock') ?? '';
    const srv = track(createMemif({ role: 'server', socket, rxMode: 'poll' }));
    const rejected: MemifDownReason[] = [];
    srv.on('handshake-failed', (r: MemifDownReason) => rejected.push(r));
    // debug: DPDK logs the DISCONNECT reason it received.
    const tp = await testpmd({
      role: 'client',
      socket,
      zeroCopy: true,
      mbufs: 8192,
      memMb: 128,
      debug: true,
    });
    await until(
      () => rejected.length > 0,
      10_000,
      () => 'no handshake-failed on the server',
    );
    assert.equal(rejected[0]?.code, 'ERR_FERRY_MEMIF_BAD_MEMORY');
    assert.match(rejected[0]?.message ?? '', /seal/i);
    assert.equal((await tp.portInfo()).linkUp, false);
    assert.match(tp.output, /Disconnect received: Region not sealed/);
    await tp.close();
    // The server still serves a copy-mode DPDK client afterwards.
    const copy = await testpmd({ role: 'client', socket });
    await srv.waitUp(10_000);
    await copy.waitLinkUp();
    await copy.close();
    await srv.close();
  });
});
