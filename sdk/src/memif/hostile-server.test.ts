// Our client against a hand-driven, hostile server: bad HELLOs, wrong replies, silence, and
// scribbling on the shared memory after CONNECTED. Each ends in a reason, never a crash.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { MEMIF_MSG_SIZE, type MemifMessage } from '../proto/memif/index.js';
import { close, Mapping } from '../sys/index.js';
import type { MemifDownReason } from './link-info.js';
import { createMemif, type Memif } from './memif.js';
import type { MemifOptions } from './options.js';
import { type RawChannel, RawListener } from './testing/raw-peer.js';
import { abstractName, memifFixture, nextEvent } from './testing/util.js';

const cleanup: Array<() => void | Promise<void>> = [];
after(async () => {
  for (const c of cleanup.reverse()) await c();
});

const HELLO: MemifMessage = {
  type: 'hello',
  name: 'raw-server',
  minVersion: 0x0200,
  maxVersion: 0x0200,
  maxRegion: 255,
  maxS2cRing: 255,
  maxC2sRing: 255,
  maxLog2RingSize: 14,
};

async function setup(
  o: Partial<MemifOptions> = {},
): Promise<{ cli: Memif; ch: RawChannel; listener: RawListener }> {
  const socket = abstractName('hostile-srv');
  const listener = new RawListener(socket);
  cleanup.push(() => listener.close());
  const cli = createMemif({ role: 'client', socket, id: 0, reconnect: false, ...o });
  cleanup.push(() => cli.close());
  const ch = await listener.accept();
  cleanup.push(() => ch.close());
  return { cli, ch, listener };
}

interface Handed {
  regions: Array<{ fd: number; size: number }>;
  rings: Array<Extract<MemifMessage, { type: 'add-ring' }> & { fd: number }>;
}

/** Plays a correct server up to (not including) the reply to CONNECT. */
async function serveUntilConnect(ch: RawChannel, hello: MemifMessage = HELLO): Promise<Handed> {
  ch.send(hello);
  const handed: Handed = { regions: [], rings: [] };
  for (;;) {
    const { msg, fds } = await ch.expect(3000, true);
    if (msg.type === 'connect') return handed;
    if (msg.type === 'add-region') handed.regions.push({ fd: fds[0] ?? -1, size: msg.size });
    else if (msg.type === 'add-ring') handed.rings.push({ ...msg, fd: fds[0] ?? -1 });
    else for (const fd of fds) close(fd);
    ch.send({ type: 'ack' });
  }
}

function release(h: Handed): void {
  for (const r of h.regions) close(r.fd);
  for (const r of h.rings) close(r.fd);
}

describe('memif client vs hostile server: handshake', () => {
  it('follows HELLO limits: ring counts and size are clamped', async () => {
    const { cli, ch } = await setup({ queues: { rx: 4, tx: 4 }, ringSize: 12, bufferSize: 1024 });
    const h = await serveUntilConnect(ch, {
      ...HELLO,
      maxC2sRing: 1,
      maxS2cRing: 0,
      maxLog2RingSize: 6,
    } as MemifMessage);
    assert.deepEqual(
      h.rings.map((r) => [r.direction, r.index, r.log2RingSize]),
      [
        ['c2s', 0, 6],
        ['c2s', 1, 6],
        ['s2c', 0, 6],
      ],
    );
    assert.equal(h.regions.length, 1);
    // Region: 3 rings of (128 + 16*64) then 3*64 buffers of 1024.
    assert.equal(h.regions[0]?.size, 3 * (128 + 16 * 64) + 3 * 64 * 1024);
    ch.send({ type: 'connected', ifName: 'raw' });
    const info = await cli.waitUp();
    assert.deepEqual(info.queues, { rx: 1, tx: 2 });
    assert.equal(info.ringSize, 6);
    assert.equal(info.peerName, 'raw-server');
    release(h);
  });

  it('sends INIT and CONNECT byte for byte as the golden fixtures', async () => {
    const { ch } = await setup({ id: 7, secret: 's3cret', name: 'ferry-test', ifName: 'net_memif0' });
    ch.send(HELLO);
    const init = await ch.recv();
    assert.ok(!init.eof);
    assert.deepEqual(init.bytes, memifFixture('init'));
    ch.send({ type: 'ack' });
    const region = await ch.recv();
    assert.ok(!region.eof);
    for (const fd of region.fds) close(fd);
    for (let i = 0; i < 3; i++) {
      ch.send({ type: 'ack' });
      const r = await ch.recv();
      assert.ok(!r.eof);
      for (const fd of r.fds) close(fd);
      if (i === 2) assert.deepEqual(r.bytes, memifFixture('connect'));
    }
  });

  it('hands over a sealed memfd and eventfds, with DPDK-compatible ring layout', async () => {
    const { cli, ch } = await setup({ bufferSize: 2048, ringSize: 10 });
    const h = await serveUntilConnect(ch);
    const region = h.regions[0];
    assert.ok(region !== undefined);
    assert.deepEqual(
      h.rings.map((r) => [r.direction, r.offset]),
      [
        ['c2s', 0],
        ['s2c', 16_512],
      ],
    );
    const map = Mapping.map(region.fd, region.size);
    const dv = new DataView(map.buffer);
    assert.equal(dv.getUint32(0, true), 0x03e31f20, 'cookie');
    assert.equal(dv.getUint32(16_512, true), 0x03e31f20, 'cookie');
    ch.send({ type: 'connected', ifName: 'raw' });
    await cli.waitUp();
    // After CONNECTED the client lends the whole S2C ring (head = 1024) and masks nothing in
    // interrupt mode; descriptors point at its buffers with length = bufferSize.
    assert.equal(dv.getUint16(16_512 + 6, true), 1024);
    assert.equal(dv.getUint32(16_512 + 128 + 4, true), 2048);
    map.release();
    release(h);
  });

  const cases: Array<[string, (ch: RawChannel) => Promise<void> | void, string, string | null]> = [
    [
      'a HELLO with versions 3.0 only',
      (ch) => ch.send({ ...HELLO, minVersion: 0x300, maxVersion: 0x300 } as MemifMessage),
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Incompatible memif version',
    ],
    [
      'a HELLO allowing no ring size',
      (ch) => ch.send({ ...HELLO, maxLog2RingSize: 0 } as MemifMessage),
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Invalid ring size',
    ],
    [
      'ACK instead of HELLO',
      (ch) => ch.send({ type: 'ack' }),
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Unexpected message',
    ],
    [
      'a 100-byte message',
      (ch) => ch.sendBytes(new Uint8Array(100)),
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Invalid message size',
    ],
    [
      'an unknown message type',
      (ch) => {
        const b = new Uint8Array(MEMIF_MSG_SIZE);
        b[0] = 0x42;
        ch.sendBytes(b);
      },
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Unknown message type',
    ],
    [
      'CONNECTED instead of ACK',
      async (ch) => {
        ch.send(HELLO);
        await ch.expect();
        ch.send({ type: 'connected', ifName: 'x' });
      },
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Unexpected message',
    ],
    [
      'a second HELLO',
      async (ch) => {
        ch.send(HELLO);
        await ch.expect();
        ch.send(HELLO);
      },
      'ERR_FERRY_MEMIF_PROTOCOL',
      'Unexpected message',
    ],
    [
      'DISCONNECT after INIT',
      async (ch) => {
        ch.send(HELLO);
        await ch.expect();
        ch.send({ type: 'disconnect', code: 0, reason: 'Incorrect secret' });
      },
      'ERR_FERRY_MEMIF_PEER_DISCONNECT',
      null,
    ],
    ['closing right away', (ch) => ch.close(), 'ERR_FERRY_MEMIF_PEER_GONE', null],
  ];
  for (const [what, act, code, reply] of cases) {
    it(`${what}: ${code}${reply ? ` and DISCONNECT "${reply}"` : ''}`, async () => {
      const { cli, ch } = await setup();
      const failed = nextEvent<[MemifDownReason]>(cli, 'handshake-failed');
      await act(ch);
      const [err] = await failed;
      assert.equal(err.code, code, err.message);
      if (code === 'ERR_FERRY_MEMIF_PEER_DISCONNECT') assert.equal(err.peerMessage, 'Incorrect secret');
      if (reply !== null) assert.equal(await ch.expectDisconnect(), reply);
      assert.equal(cli.state, 'closed');
    });
  }

  it('a server that never answers: ETIMEDOUT after handshakeTimeoutMs', async () => {
    const { cli, ch } = await setup({ handshakeTimeoutMs: 200 });
    const failed = nextEvent<[MemifDownReason]>(cli, 'handshake-failed');
    assert.equal((await failed)[0].code, 'ETIMEDOUT');
    assert.equal(await ch.expectDisconnect(), 'Timeout');
  });

  it('a server that overwrites a ring cookie before CONNECTED: Wrong ring', async () => {
    const { cli, ch } = await setup();
    const h = await serveUntilConnect(ch);
    const region = h.regions[0];
    assert.ok(region !== undefined);
    const map = Mapping.map(region.fd, region.size);
    new DataView(map.buffer).setUint32(0, 0, true);
    const failed = nextEvent<[MemifDownReason]>(cli, 'handshake-failed');
    ch.send({ type: 'connected', ifName: 'x' });
    assert.equal((await failed)[0].code, 'ERR_FERRY_MEMIF_BAD_MEMORY');
    assert.equal(await ch.expectDisconnect(), 'Wrong ring');
    map.release();
    release(h);
  });
});

describe('memif client vs hostile server: after CONNECTED', () => {
  async function up(o: Partial<MemifOptions> = {}) {
    const { cli, ch } = await setup({ ringSize: 4, bufferSize: 256, ...o });
    const h = await serveUntilConnect(ch);
    const region = h.regions[0];
    assert.ok(region !== undefined);
    ch.send({ type: 'connected', ifName: 'raw' });
    await cli.waitUp();
    const map = Mapping.map(region.fd, region.size);
    cleanup.push(() => {
      map.release();
      release(h);
    });
    const dv = new DataView(map.buffer);
    const c2s = h.rings[0]?.offset ?? 0;
    const s2c = h.rings[1]?.offset ?? 0;
    return { cli, ch, dv, u8: new Uint8Array(map.buffer), c2s, s2c };
  }

  it('receives what the raw server writes into the lent buffers', async () => {
    const { cli, dv, u8, s2c } = await up();
    const off = dv.getUint32(s2c + 128 + 8, true);
    u8.set([5, 6, 7], off);
    dv.setUint32(s2c + 128 + 4, 3, true);
    dv.setUint16(s2c + 64, 1, true); // tail
    assert.deepEqual(cli.receive(0), [new Uint8Array([5, 6, 7])]);
    assert.equal(dv.getUint16(s2c + 6, true), 17, 'slot refilled: head = released + ring size');
    assert.equal(dv.getUint32(s2c + 128 + 4, true), 256, 'refill restores the capacity');
  });

  it('ignores a region/offset the server rewrote in a lent descriptor (uses its own buffer)', async () => {
    const { cli, dv, u8, s2c } = await up();
    const own = dv.getUint32(s2c + 128 + 8, true);
    u8.set([1, 2], own);
    dv.setUint16(s2c + 128 + 2, 9, true); // region 9
    dv.setUint32(s2c + 128 + 8, 0xffff_0000, true); // far away
    dv.setUint32(s2c + 128 + 4, 2, true);
    dv.setUint16(s2c + 64, 1, true);
    assert.deepEqual(cli.receive(0), [new Uint8Array([1, 2])]);
    assert.equal(dv.getUint32(s2c + 128 + 8, true), own, 'refill rewrote the offset');
  });

  const scribbles: Array<[string, (dv: DataView, c2s: number, s2c: number) => void, 'rx' | 'tx']> = [
    ['S2C tail past the lent buffers', (dv, _c, s) => dv.setUint16(s + 64, 17, true), 'rx'],
    ['S2C tail moved backwards', (dv, _c, s) => dv.setUint16(s + 64, 0xfff0, true), 'rx'],
    [
      'an S2C length above the buffer size',
      (dv, _c, s) => {
        dv.setUint32(s + 128 + 4, 257, true);
        dv.setUint16(s + 64, 1, true);
      },
      'rx',
    ],
    [
      'an S2C length of zero',
      (dv, _c, s) => {
        dv.setUint32(s + 128 + 4, 0, true);
        dv.setUint16(s + 64, 1, true);
      },
      'rx',
    ],
    ['C2S tail ahead of head', (dv, c) => dv.setUint16(c + 64, 5, true), 'tx'],
    ['C2S tail far ahead', (dv, c) => dv.setUint16(c + 64, 0x8000, true), 'tx'],
  ];
  for (const [what, scribble, side] of scribbles) {
    it(`${what}: down with ERR_FERRY_MEMIF_BAD_RING`, async () => {
      const { cli, ch, dv, c2s, s2c } = await up();
      const down = nextEvent<[MemifDownReason]>(cli, 'down');
      scribble(dv, c2s, s2c);
      if (side === 'rx') assert.deepEqual(cli.receive(0), []);
      else assert.equal(cli.send(0, [new Uint8Array(10)]), 0);
      const [reason] = await down;
      assert.equal(reason.code, 'ERR_FERRY_MEMIF_BAD_RING');
      assert.equal(reason.willRetry, false);
      assert.equal(await ch.expectDisconnect(), 'Bad ring or descriptor');
    });
  }

  it('an S2C chain longer than maxChainSegments: down', async () => {
    const { cli, dv, s2c } = await up({ maxChainSegments: 4 });
    for (let j = 0; j < 6; j++) {
      dv.setUint16(s2c + 128 + 16 * j, 1, true);
      dv.setUint32(s2c + 128 + 16 * j + 4, 10, true);
    }
    dv.setUint16(s2c + 64, 6, true);
    const down = nextEvent<[MemifDownReason]>(cli, 'down');
    assert.deepEqual(cli.receive(0), []);
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_BAD_RING');
  });

  it('an S2C chain that takes every lent buffer without ending: down', async () => {
    const { cli, dv, s2c } = await up({ maxChainSegments: 64 });
    for (let j = 0; j < 16; j++) {
      dv.setUint16(s2c + 128 + 16 * j, 1, true);
      dv.setUint32(s2c + 128 + 16 * j + 4, 10, true);
    }
    dv.setUint16(s2c + 64, 15, true);
    assert.deepEqual(cli.receive(0), [], 'one lent buffer left: still waiting');
    assert.equal(cli.state, 'up');
    const down = nextEvent<[MemifDownReason]>(cli, 'down');
    dv.setUint16(s2c + 64, 16, true);
    assert.deepEqual(cli.receive(0), []);
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_BAD_RING');
  });

  it('a server that closes: down with PEER_GONE; with reconnect on, the client tries again', async () => {
    const socket = abstractName('hostile-srv-rc');
    const listener = new RawListener(socket);
    cleanup.push(() => listener.close());
    const cli = createMemif({ role: 'client', socket, id: 0, reconnect: { minDelayMs: 10, maxDelayMs: 20 } });
    cleanup.push(() => cli.close());
    const ch = await listener.accept();
    const h = await serveUntilConnect(ch);
    ch.send({ type: 'connected', ifName: 'raw' });
    await cli.waitUp();
    const down = nextEvent<[MemifDownReason]>(cli, 'down');
    ch.close();
    const [reason] = await down;
    assert.equal(reason.code, 'ERR_FERRY_MEMIF_PEER_GONE');
    assert.equal(reason.willRetry, true);
    const again = await listener.accept();
    cleanup.push(() => again.close());
    const h2 = await serveUntilConnect(again);
    assert.notEqual(h2.regions[0]?.fd, undefined, 'fresh memory for the new connection');
    again.send({ type: 'connected', ifName: 'raw' });
    assert.equal((await cli.waitUp()).connection, 2);
    release(h);
    release(h2);
  });
});
