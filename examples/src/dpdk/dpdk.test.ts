// Ferry's memif interfaces against DPDK's memif PMD (dpdk-testpmd 22.11), in both roles: counts
// from txonly, exact counts into rxonly, echo through macswap with payloads checked, interrupt /
// poll / adaptive receive, an abstract socket, and testpmd killed mid-traffic. Skipped when
// dpdk-testpmd is not installed (an error in CI). Every wait is bounded; each test runs traffic for
// well under a second because testpmd busy-polls a CPU while it forwards.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Memif, MemifRxBurst } from '@ferry/sdk/memif';
import {
  type Pair,
  type Role,
  sendAll,
  sleep,
  startPair,
  startTestpmd,
  stopPair,
  until,
} from './dpdk-peer.js';
import { tempSocketDir, testpmdSkip, uniqueAbstractName } from './testpmd.js';

const skip = testpmdSkip();
const dirs = skip === false ? tempSocketDir('ferry-dpdk-') : undefined;
after(() => dirs?.cleanup());

let sockets = 0;
const fsSocket = (): string => dirs?.path(`m${sockets++}.sock`) ?? '';

/** Counts packets as they arrive and checks each looks like testpmd txonly's 64-byte UDP frame. */
function countTxonly(m: Memif): { got: number; bad: string[] } {
  const c = { got: 0, bad: [] as string[] };
  m.onPackets((burst: MemifRxBurst) => {
    for (let i = 0; i < burst.count; i++) {
      const len = burst.lengths[i] as number;
      const b = burst.bytesOf(i);
      const at = burst.offsets[i] as number;
      const type = ((b[at + 12] as number) << 8) | (b[at + 13] as number);
      if ((len !== 64 || type !== 0x0800) && c.bad.length < 10)
        c.bad.push(`len ${len} ethertype 0x${type.toString(16)}`);
    }
    c.got += burst.count;
  });
  return c;
}

const MAC_A = [0x02, 0xfe, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0xfe, 0, 0, 0, 0x0b];

/** Frame i of an echo run: dst B, src A, a local experimental ethertype, i and a pattern. */
function echoFrame(i: number): Uint8Array {
  const len = 60 + ((i * 37) % 1400);
  const f = new Uint8Array(len);
  f.set(MAC_B, 0);
  f.set(MAC_A, 6);
  f[12] = 0x88;
  f[13] = 0xb5;
  new DataView(f.buffer).setUint32(14, i);
  for (let k = 18; k < len; k++) f[k] = (i + k) & 255;
  return f;
}

/**
 * Sends `total` echo frames with at most `window` in flight and checks every reply: same length,
 * MACs swapped, everything after the MACs unchanged, in order.
 */
async function echoRun(p: Pair, total: number, window = 256): Promise<void> {
  const replies: Uint8Array[] = [];
  p.m.onPackets((burst: MemifRxBurst) => {
    for (let i = 0; i < burst.count; i++) replies.push(burst.packet(i).slice());
  });
  const frames = Array.from({ length: total }, (_, i) => echoFrame(i));
  const deadline = Date.now() + 20_000;
  let sent = 0;
  while (replies.length < total) {
    if (Date.now() > deadline) {
      const s = p.m.stats();
      throw new Error(`echo: ${replies.length} of ${total} back (sent ${sent}); stats ${JSON.stringify(s)}`);
    }
    const room = Math.min(window - (sent - replies.length), total - sent);
    if (room > 0) sent += p.m.send(0, frames, sent, room);
    await new Promise((r) => setImmediate(r));
  }
  for (let i = 0; i < total; i++) {
    const want = frames[i] as Uint8Array;
    const got = replies[i] as Uint8Array;
    assert.equal(got.length, want.length, `reply ${i}: length`);
    assert.deepEqual([...got.subarray(0, 6)], MAC_A, `reply ${i}: destination MAC`);
    assert.deepEqual([...got.subarray(6, 12)], MAC_B, `reply ${i}: source MAC`);
    assert.ok(
      Buffer.from(got.subarray(12)).equals(Buffer.from(want.subarray(12))),
      `reply ${i}: payload differs`,
    );
  }
}

for (const role of ['client', 'server'] as Role[]) {
  const peer = role === 'client' ? 'server' : 'client';
  describe(`Ferry memif ${role} <-> dpdk-testpmd ${peer}`, { skip }, () => {
    let current: Pair | undefined;
    after(async () => {
      if (current) await stopPair(current);
    });

    for (const rxMode of ['poll', 'interrupt'] as const) {
      it(`testpmd txonly -> Ferry (${rxMode}) receives every packet testpmd sent`, async (t) => {
        const p = await startPair({ role, socket: fsSocket(), rxMode });
        current = p;
        const c = countTxonly(p.m);
        await p.tp.setFwd('txonly');
        await p.tp.startFwd();
        await until(
          () => c.got >= 20_000,
          10_000,
          () => `only ${c.got} packets arrived`,
        );
        const fwd = await p.tp.stopFwd();
        const port = await p.tp.portStats();
        assert.ok(fwd, 'no forward statistics from stop');
        // TX-packets counts what testpmd put on the ring; TX-dropped what did not fit (ours to
        // drain more slowly than it sends). Ferry must see exactly the former.
        await until(
          () => c.got >= fwd.txPackets,
          5000,
          () => `Ferry got ${c.got}, testpmd sent ${fwd.txPackets}`,
        );
        await sleep(50);
        t.diagnostic(
          `testpmd sent ${fwd.txPackets} (${fwd.txDropped} not queued: ring full), Ferry got ${c.got}`,
        );
        assert.equal(c.got, fwd.txPackets, `testpmd dropped ${fwd.txDropped} on a full ring`);
        assert.equal(port.txPackets, fwd.txPackets);
        assert.deepEqual(c.bad, []);
        const rx = p.m.stats().rx[0];
        assert.equal(rx?.packets, c.got);
        // Interrupt mode really slept on the doorbell DPDK rings when MASK_INT is clear; poll mode
        // masked it, so DPDK never rang.
        if (rxMode === 'interrupt')
          assert.ok((rx?.wakeups ?? 0) > 0, `no doorbell wake-ups: ${JSON.stringify(rx)}`);
        else assert.equal(rx?.wakeups, 0);
        assert.equal(p.downs.length, 0, `went down: ${p.downs.map((d) => d.message).join('; ')}`);
        await stopPair(p);
        current = undefined;
      });
    }

    it('Ferry sends N packets -> testpmd rxonly counts exactly N', async () => {
      const p = await startPair({ role, socket: fsSocket(), rxMode: 'interrupt' });
      current = p;
      await p.tp.setFwd('rxonly');
      await p.tp.startFwd();
      const n = 20_000;
      const size = 100;
      const frames = Array.from({ length: n }, (_, i) => {
        const f = new Uint8Array(size);
        f.set(MAC_B, 0);
        f.set(MAC_A, 6);
        f[12] = 0x88;
        f[13] = 0xb5;
        new DataView(f.buffer).setUint32(14, i);
        return f;
      });
      await sendAll(p.m, frames);
      let stats = await p.tp.portStats();
      const deadline = Date.now() + 5000;
      while (stats.rxPackets < n && Date.now() < deadline) {
        await sleep(20);
        stats = await p.tp.portStats();
      }
      const fwd = await p.tp.stopFwd();
      assert.equal(stats.rxPackets, n);
      assert.equal(stats.rxBytes, n * size);
      assert.equal(fwd?.rxPackets, n);
      assert.equal(p.m.stats().tx[0]?.packets, n);
      await stopPair(p);
      current = undefined;
    });

    it(`echo through testpmd macswap${peer === 'client' ? ' retry' : ''}: every payload back intact, MACs swapped`, async () => {
      const p = await startPair({ role, socket: fsSocket(), rxMode: 'interrupt' });
      current = p;
      if (peer === 'client') {
        // A DPDK client drops what does not fit our ring unless told to retry (notes §3.5).
        await p.tp.setFwd('macswap retry');
        await p.tp.cmd('set burst tx delay 10 retry 10000');
      } else {
        await p.tp.setFwd('macswap');
      }
      await p.tp.startFwd();
      await echoRun(p, 5000);
      const fwd = await p.tp.stopFwd();
      assert.equal(fwd?.rxPackets, 5000);
      assert.equal(fwd?.txPackets, 5000);
      await stopPair(p);
      current = undefined;
    });

    it('an abstract socket (@name here, socket=name for DPDK), adaptive receive: echo', async () => {
      const p = await startPair({ role, socket: uniqueAbstractName(role), rxMode: 'adaptive' });
      current = p;
      await p.tp.setFwd(peer === 'client' ? 'macswap retry' : 'macswap');
      if (peer === 'client') await p.tp.cmd('set burst tx delay 10 retry 10000');
      await p.tp.startFwd();
      await echoRun(p, 1000);
      await stopPair(p);
      current = undefined;
    });

    it(`testpmd killed mid-traffic -> Ferry goes down, then ${role === 'client' ? 'reconnects to' : 'accepts'} a new testpmd`, async () => {
      const socket = fsSocket();
      const p = await startPair({ role, socket, rxMode: 'poll' });
      current = p;
      const c = countTxonly(p.m);
      await p.tp.setFwd('txonly');
      await p.tp.startFwd();
      await until(
        () => c.got >= 5000,
        10_000,
        () => `only ${c.got} packets arrived`,
      );
      await p.tp.kill('SIGKILL');
      await until(
        () => p.downs.length > 0,
        5000,
        () => 'no down event',
      );
      const down = p.downs[0];
      assert.equal(down?.code, 'ERR_FERRY_MEMIF_PEER_GONE', down?.message);
      if (role === 'client') assert.equal(down?.willRetry, true);
      assert.notEqual(p.m.state, 'up');
      // While down the data path is inert: nothing queued, nothing received, nothing thrown.
      assert.equal(p.m.send(0, [echoFrame(0)]), 0);
      assert.equal(p.m.rxBurst(0, p.m.createRxBurst(8)), 0);
      const upAgain = p.m.waitUp(15_000);
      p.tp = await startTestpmd({ role, socket, rxMode: 'poll' });
      await upAgain;
      await p.tp.waitLinkUp();
      assert.equal(p.ups, 2);
      const before = c.got;
      await p.tp.setFwd('txonly');
      await p.tp.startFwd();
      await until(
        () => c.got >= before + 5000,
        10_000,
        () => `only ${c.got - before} packets after reconnecting`,
      );
      const fwd = await p.tp.stopFwd();
      await until(
        () => c.got - before >= (fwd?.txPackets ?? 0),
        5000,
        () => `got ${c.got - before} of ${fwd?.txPackets} after reconnecting`,
      );
      assert.equal(c.got - before, fwd?.txPackets);
      assert.deepEqual(c.bad, []);
      assert.equal(p.downs.length, 1);
      await stopPair(p);
      current = undefined;
    });
  });
}
