// Our server against a hand-driven, hostile client: every refusal of spec §10 / §11 gives the
// right DISCONNECT and never brings the interface up; after 'up', shared-memory scribbling and
// protocol violations take the link down with a reason and never crash or read out of bounds.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { encodeMemif, MEMIF_MSG_SIZE, type MemifMessage } from '../proto/memif/index.js';
import { close, eventfd, eventfdWrite, ftruncate, memfdCreate } from '../sys/index.js';
import type { MemifDownReason } from './link-info.js';
import { MEMIF_MAX_PENDING_HANDSHAKES } from './listener.js';
import { createMemif, type Memif } from './memif.js';
import type { MemifOptions } from './options.js';
import { type RawChannel, RawMemory, rawClientHandshake, rawConnect } from './testing/raw-peer.js';
import { abstractName, eventually, memifFixture, nextEvent } from './testing/util.js';

const servers: Memif[] = [];
const channels: RawChannel[] = [];
after(async () => {
  for (const c of channels) c.close();
  for (const s of servers) await s.close();
});

function server(o: Partial<MemifOptions> = {}): { srv: Memif; socket: string } {
  const socket = abstractName('hostile-cli');
  const srv = createMemif({ role: 'server', socket, id: 0, ...o });
  servers.push(srv);
  return { srv, socket };
}

async function connected(socket: string): Promise<RawChannel> {
  const ch = rawConnect(socket);
  channels.push(ch);
  const hello = await ch.expect();
  assert.equal(hello.msg.type, 'hello');
  return ch;
}

const INIT: MemifMessage = {
  type: 'init',
  version: 0x0200,
  id: 0,
  mode: 'ethernet',
  secret: '',
  name: 'raw',
};

/** A raw client that passed INIT. */
async function initialized(socket: string): Promise<RawChannel> {
  const ch = await connected(socket);
  ch.send(INIT);
  assert.equal((await ch.expect()).msg.type, 'ack');
  return ch;
}

describe('memif server vs hostile client: control plane', () => {
  it('HELLO advertises version 2.0 and the configured limits', async () => {
    const { socket } = server({ queues: { rx: 3, tx: 2 }, ringSize: 9 });
    const ch = rawConnect(socket);
    channels.push(ch);
    const { msg } = await ch.expect();
    assert.deepEqual(msg, {
      type: 'hello',
      name: 'ferry',
      minVersion: 0x0200,
      maxVersion: 0x0200,
      maxRegion: 255,
      maxS2cRing: 1,
      maxC2sRing: 2,
      maxLog2RingSize: 9,
    });
  });

  const framing: Array<[string, (ch: RawChannel) => void, string]> = [
    ['a short message', (ch) => ch.sendBytes(new Uint8Array(64)), 'Invalid message size'],
    ['a long message', (ch) => ch.sendBytes(new Uint8Array(MEMIF_MSG_SIZE + 1)), 'Invalid message size'],
    [
      'an unknown type',
      (ch) => {
        const b = new Uint8Array(MEMIF_MSG_SIZE);
        b[0] = 99;
        ch.sendBytes(b);
      },
      'Unknown message type',
    ],
    ['type NONE', (ch) => ch.sendBytes(new Uint8Array(MEMIF_MSG_SIZE)), 'Unknown message type'],
    [
      'a malformed INIT (unterminated secret)',
      (ch) => {
        const b = encodeMemif(INIT);
        b.fill(0x61, 9, 33);
        ch.sendBytes(b);
      },
      'Malformed message',
    ],
    ['CONNECT before INIT', (ch) => ch.send({ type: 'connect', ifName: 'x' }), 'Unexpected message'],
    ['ACK from a client', (ch) => ch.send({ type: 'ack' }), 'Unexpected message'],
    [
      'INIT with version 3.0',
      (ch) => ch.send({ ...INIT, version: 0x0300 } as MemifMessage),
      'Incompatible memif version',
    ],
    ['INIT for an unknown id', (ch) => ch.send({ ...INIT, id: 42 } as MemifMessage), 'ID not found'],
    ['INIT in ip mode', (ch) => ch.send({ ...INIT, mode: 'ip' } as MemifMessage), 'Mode mismatch'],
    [
      'INIT carrying an fd',
      (ch) => {
        const e = eventfd();
        ch.send(INIT, e);
        close(e);
      },
      'Unexpected fd',
    ],
    [
      'two fds on one message',
      (ch) => {
        const a = eventfd();
        const b = eventfd();
        ch.sendBytes(encodeMemif(INIT), [a, b]);
        close(a);
        close(b);
      },
      'Too many fds',
    ],
  ];
  for (const [what, send, reason] of framing) {
    it(`refuses ${what}: "${reason}"`, async () => {
      const { srv, socket } = server();
      const ch = await connected(socket);
      send(ch);
      assert.equal(await ch.expectDisconnect(), reason);
      assert.equal(srv.state, 'listening');
    });
  }

  const config: Array<[string, (ch: RawChannel, mem: RawMemory) => void, string]> = [
    [
      'ADD_REGION without an fd',
      (ch, m) => ch.send({ type: 'add-region', index: 0, size: m.size }),
      'Missing region fd',
    ],
    [
      'ADD_REGION out of order',
      (ch, m) => ch.send({ type: 'add-region', index: 1, size: m.size }, m.fd),
      'Invalid region index',
    ],
    [
      'a region larger than its file',
      (ch, m) => ch.send({ type: 'add-region', index: 0, size: m.size + 4096 }, m.fd),
      'Region too small',
    ],
    [
      'a region that is not a file',
      (ch, m) => ch.send({ type: 'add-region', index: 0, size: 4096 }, m.eventfds[0]),
      'Region fd is not a memory file',
    ],
    [
      'an unsealed region',
      (ch) => {
        const fd = memfdCreate('unsealed', { allowSealing: true });
        ftruncate(fd, 65536);
        ch.send({ type: 'add-region', index: 0, size: 65536 }, fd);
        close(fd);
      },
      'Region not sealed against shrinking',
    ],
    [
      'a region above maxRegionBytes',
      (ch, m) => ch.send({ type: 'add-region', index: 0, size: 2 ** 31 }, m.fd),
      'Region too large',
    ],
    [
      'ADD_RING without an fd',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ type: 'add-ring', direction: 'c2s', index: 0, region: 0, offset: 0, log2RingSize: m.log2 });
      },
      'Missing interrupt fd',
    ],
    [
      'ADD_RING with a memfd as interrupt fd',
      (ch, m) => {
        addRegion(ch, m);
        ch.send(
          { type: 'add-ring', direction: 'c2s', index: 0, region: 0, offset: 0, log2RingSize: m.log2 },
          m.fd,
        );
      },
      'Invalid interrupt fd',
    ],
    [
      'a ring index beyond the configured queues',
      (ch, m) => {
        addRegion(ch, m);
        ch.send(ring('c2s', 1, 0, m), m.eventfds[0]);
      },
      'Invalid ring index',
    ],
    [
      'ring indices out of order',
      (ch, m) => {
        addRegion(ch, m);
        ch.send(ring('s2c', 1, 0, m), m.eventfds[0]);
      },
      'Invalid ring index',
    ],
    [
      'a ring larger than the server allows',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ ...ring('c2s', 0, 0, m), log2RingSize: 11 } as MemifMessage, m.eventfds[0]);
      },
      'Invalid ring size',
    ],
    [
      'a ring in an unannounced region',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ ...ring('c2s', 0, 0, m), region: 1 } as MemifMessage, m.eventfds[0]);
      },
      'Invalid ring region',
    ],
    [
      'a ring past the end of its region',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ ...ring('c2s', 0, 0, m), offset: m.size - 64 } as MemifMessage, m.eventfds[0]);
      },
      'Invalid ring offset',
    ],
    [
      'a misaligned ring',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ ...ring('c2s', 0, 0, m), offset: 4 } as MemifMessage, m.eventfds[0]);
      },
      'Invalid ring offset',
    ],
    [
      'a ring whose offset wraps in 32 bits',
      (ch, m) => {
        addRegion(ch, m);
        ch.send({ ...ring('c2s', 0, 0, m), offset: 0xffff_fff8 } as MemifMessage, m.eventfds[0]);
      },
      'Invalid ring offset',
    ],
    [
      'CONNECT without S2C rings',
      (ch, m) => {
        addRegion(ch, m);
        addRing(ch, ring('c2s', 0, 0, m), m.eventfds[0]);
        ch.send({ type: 'connect', ifName: 'x' });
      },
      'Missing rings',
    ],
    [
      'overlapping rings',
      (ch, m) => {
        addRegion(ch, m);
        addRing(ch, ring('c2s', 0, 0, m), m.eventfds[0]);
        addRing(ch, { ...ring('s2c', 0, 0, m), offset: 64 } as MemifMessage, m.eventfds[1]);
        ch.send({ type: 'connect', ifName: 'x' });
      },
      'Overlapping rings',
    ],
    [
      'a wrong ring cookie',
      (ch, m) => {
        addRegion(ch, m);
        addRing(ch, ring('c2s', 0, 0, m), m.eventfds[0]);
        addRing(ch, ring('s2c', 0, 1, m), m.eventfds[1]);
        m.dv.setUint32(m.ringOffset(1), 0xdeadbeef, true);
        ch.send({ type: 'connect', ifName: 'x' });
      },
      'Wrong ring',
    ],
    ['HELLO from a client', (ch) => ch.send({ ...helloMsg }), 'Unexpected message'],
    ['a second INIT', (ch) => ch.send(INIT), 'Unexpected message'],
  ];

  // Steps that expect an ACK are sent synchronously; their ACKs are read before the final reply.
  let acks = 0;
  function addRegion(ch: RawChannel, m: RawMemory): void {
    ch.send({ type: 'add-region', index: 0, size: m.size }, m.fd);
    acks++;
  }
  function addRing(ch: RawChannel, msg: MemifMessage, fd: number | undefined): void {
    ch.send(msg, fd);
    acks++;
  }
  function ring(direction: 'c2s' | 's2c', index: number, g: number, m: RawMemory): MemifMessage {
    return { type: 'add-ring', direction, index, region: 0, offset: m.ringOffset(g), log2RingSize: m.log2 };
  }
  const helloMsg: MemifMessage = {
    type: 'hello',
    name: 'x',
    minVersion: 0x200,
    maxVersion: 0x200,
    maxRegion: 0,
    maxS2cRing: 0,
    maxC2sRing: 0,
    maxLog2RingSize: 10,
  };

  for (const [what, send, reason] of config) {
    it(`after INIT, refuses ${what}: "${reason}"`, async () => {
      const { srv, socket } = server({ ringSize: 10 });
      const failed = nextEvent<[MemifDownReason]>(srv, 'handshake-failed');
      const ch = await initialized(socket);
      const mem = new RawMemory({ rings: 2, log2: 4, bufferSize: 256 });
      try {
        acks = 0;
        send(ch, mem);
        for (let i = 0; i < acks; i++) assert.equal((await ch.expect()).msg.type, 'ack', `ack ${i}`);
        assert.equal(await ch.expectDisconnect(), reason);
        const [err] = await failed;
        assert.match(err.code, /^ERR_FERRY_MEMIF_/);
        assert.equal(srv.state, 'listening');
      } finally {
        mem.release();
      }
      // The interface is free again: a proper client comes up.
      const ok = await rawClientHandshake(socket);
      channels.push(ok.ch);
      assert.equal(ok.reply.type, 'connected');
      await srv.waitUp();
      ok.mem.release();
    });
  }

  it('at most MEMIF_MAX_PENDING_HANDSHAKES stalled connections are held; more are closed at once', async () => {
    const { srv, socket } = server({ handshakeTimeoutMs: 3000 });
    const stalled: RawChannel[] = [];
    for (let i = 0; i < MEMIF_MAX_PENDING_HANDSHAKES; i++) stalled.push(await connected(socket));
    const extra = rawConnect(socket);
    channels.push(extra);
    const r = await extra.recv();
    assert.equal(r.eof, true, 'no HELLO beyond the limit');
    for (const c of stalled) c.close();
    // Once the server has seen them go, clients are served again.
    let ok: Awaited<ReturnType<typeof rawClientHandshake>> | null = null;
    const deadline = Date.now() + 3000;
    while (ok === null) {
      try {
        ok = await rawClientHandshake(socket);
      } catch (e) {
        if (Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    channels.push(ok.ch);
    assert.equal(ok.reply.type, 'connected');
    await srv.waitUp();
    ok.mem.release();
  });

  it('answers byte for byte as the golden fixtures (ACK, DISCONNECT "Incorrect secret")', async () => {
    const { socket } = server({ secret: 'right' });
    const ch = await connected(socket);
    ch.send({ ...INIT, secret: 'wrong' } as MemifMessage);
    const r = await ch.recv();
    assert.ok(!r.eof);
    assert.deepEqual(r.bytes, memifFixture('disconnect'));
    const { socket: s2 } = server();
    const ok = await connected(s2);
    ok.send(INIT);
    const ack = await ok.recv();
    assert.ok(!ack.eof);
    assert.deepEqual(ack.bytes, memifFixture('ack'));
  });

  it('a client that stalls during the handshake is dropped after handshakeTimeoutMs', async () => {
    const { srv, socket } = server({ handshakeTimeoutMs: 200 });
    const failed = nextEvent<[MemifDownReason]>(srv, 'handshake-failed');
    const ch = await initialized(socket);
    assert.equal(await ch.expectDisconnect(), 'Timeout');
    assert.equal((await failed)[0].code, 'ETIMEDOUT');
    const silent = await connected(socket); // never sends INIT
    assert.equal(await silent.expectDisconnect(), 'Timeout');
  });
});

describe('memif server vs hostile client: after CONNECT', () => {
  async function up(o: Partial<MemifOptions> = {}) {
    const { srv, socket } = server(o);
    const r = await rawClientHandshake(socket, { log2: 4, bufferSize: 256 });
    channels.push(r.ch);
    assert.equal(r.reply.type, 'connected');
    await srv.waitUp();
    return { srv, ...r };
  }

  it('receives well-formed packets the raw client publishes, and resets flags and tail', async () => {
    const { srv, mem } = await up();
    const payload = new Uint8Array([1, 2, 3, 4, 5]);
    mem.u8.set(payload, mem.bufferOffset(0, 0));
    mem.setDesc(0, 0, 1 /* NEXT */, 0, 5, mem.bufferOffset(0, 0));
    mem.u8.set(payload, mem.bufferOffset(0, 1));
    mem.setDesc(0, 1, 0, 0, 3, mem.bufferOffset(0, 1));
    mem.setHead(0, 2);
    const got = srv.receive(0);
    assert.deepEqual(got, [new Uint8Array([1, 2, 3, 4, 5, 1, 2, 3])]);
    assert.equal(mem.tail(0), 2, 'server released the slots');
    assert.equal(mem.desc(0, 0).flags, 0, 'server cleared NEXT on consumed descriptors');
    mem.release();
  });

  it('accepts a libmemif-style layout: rings in region 0, buffers in region 1 (both directions)', async () => {
    const { srv, socket } = server();
    const ch = await initialized(socket);
    const rings = new RawMemory({ rings: 2, log2: 3, bufferSize: 0 });
    const bufs = new RawMemory({ rings: 0, log2: 3, bufferSize: 0, extraBytes: 16 * 512 });
    try {
      ch.send({ type: 'add-region', index: 0, size: rings.size }, rings.fd);
      assert.equal((await ch.expect()).msg.type, 'ack');
      ch.send({ type: 'add-region', index: 1, size: bufs.size }, bufs.fd);
      assert.equal((await ch.expect()).msg.type, 'ack');
      for (const [dir, g] of [
        ['c2s', 0],
        ['s2c', 1],
      ] as const) {
        ch.send(
          {
            type: 'add-ring',
            direction: dir,
            index: 0,
            region: 0,
            offset: rings.ringOffset(g),
            log2RingSize: 3,
          },
          rings.eventfds[g],
        );
        assert.equal((await ch.expect()).msg.type, 'ack');
      }
      ch.send({ type: 'connect', ifName: 'libmemif-like' });
      assert.equal((await ch.expect()).msg.type, 'connected');
      await srv.waitUp();
      // C2S: a packet in region 1.
      bufs.u8.set([4, 3, 2, 1], 512);
      rings.setDesc(0, 0, 0, 1, 4, 512);
      rings.setHead(0, 1);
      assert.deepEqual(srv.receive(0), [new Uint8Array([4, 3, 2, 1])]);
      // S2C: lend a buffer in region 1 with a headroom-shifted offset, as libmemif does.
      rings.setDesc(1, 0, 0, 1, 256, 8 * 512 + 128);
      rings.setHead(1, 1);
      assert.equal(srv.send(0, [new Uint8Array([7, 7, 7])]), 1);
      assert.equal(rings.tail(1), 1);
      assert.deepEqual(rings.desc(1, 0), { flags: 0, region: 1, length: 3, offset: 8 * 512 + 128 });
      assert.deepEqual([...bufs.u8.subarray(8 * 512 + 128, 8 * 512 + 131)], [7, 7, 7]);
      assert.equal(srv.info?.bufferSize, 256);
    } finally {
      rings.release();
      bufs.release();
    }
  });

  it('MASK_INT follows rxMode: set in poll mode, clear in interrupt mode, toggled by adaptive', async () => {
    const poll = await up({ rxMode: 'poll' });
    assert.equal(poll.mem.flags(0), 1, 'poll: masked from CONNECT on');
    assert.equal(poll.mem.flags(1), 0, 'the S2C ring is the client’s to flag');
    poll.mem.release();
    const intr = await up({ rxMode: 'interrupt' });
    assert.equal(intr.mem.flags(0), 0);
    let got = 0;
    intr.srv.onPackets((b) => {
      got += b.count;
    });
    await new Promise((r) => setTimeout(r, 30)); // the receiver polls once, arms, and sleeps
    intr.mem.setDesc(0, 0, 0, 0, 10, intr.mem.bufferOffset(0, 0));
    intr.mem.setHead(0, 1);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(got, 0, 'interrupt mode sleeps until the doorbell');
    eventfdWrite(intr.mem.eventfds[0] as number);
    await eventually(() => got === 1, 2000, 'interrupt-mode delivery');
    intr.mem.setDesc(0, 1, 0, 0, 10, intr.mem.bufferOffset(0, 1));
    intr.mem.setHead(0, 2);
    eventfdWrite(intr.mem.eventfds[0] as number);
    await eventually(() => got === 2, 2000, 'second doorbell');
    assert.ok((intr.srv.stats().rx[0]?.wakeups ?? 0) >= 1);
    intr.srv.onPackets(null);
    intr.mem.release();
    const adaptive = await up({ rxMode: 'adaptive' });
    let n = 0;
    adaptive.srv.onPackets((b) => {
      n += b.count;
    });
    // Idle: after a short busy period it arms (unmasks) and sleeps.
    await eventually(() => adaptive.mem.flags(0) === 0, 2000, 'adaptive arms when idle');
    adaptive.mem.setDesc(0, 0, 0, 0, 10, adaptive.mem.bufferOffset(0, 0));
    adaptive.mem.setHead(0, 1);
    eventfdWrite(adaptive.mem.eventfds[0] as number);
    await eventually(() => n === 1, 2000, 'adaptive wakes on the doorbell');
    await eventually(() => adaptive.mem.flags(0) === 0, 2000, 'and arms again');
    adaptive.srv.onPackets(null);
    adaptive.mem.release();
  });

  it('an incomplete chain is not delivered until it is complete', async () => {
    const { srv, mem } = await up();
    mem.setDesc(0, 0, 1, 0, 10, mem.bufferOffset(0, 0));
    mem.setHead(0, 1);
    assert.deepEqual(srv.receive(0), []);
    mem.setDesc(0, 1, 0, 0, 10, mem.bufferOffset(0, 1));
    mem.setHead(0, 2);
    assert.equal(srv.receive(0)[0]?.byteLength, 20);
    mem.release();
  });

  const scribbles: Array<[string, (m: RawMemory) => void]> = [
    ['head moved more than the ring size', (m) => m.setHead(0, 17)],
    ['head moved backwards', (m) => m.setHead(0, 0xffff)],
    ['a descriptor in a region that does not exist', (m) => publish(m, 3, 64, 0)],
    ['a descriptor past the end of the region', (m) => publish(m, 0, 64, m.size - 10)],
    ['a descriptor whose offset + length wraps 32 bits', (m) => publish(m, 0, 0x100, 0xffff_ff80)],
    ['a zero-length descriptor', (m) => publish(m, 0, 0, 0)],
    ['a descriptor longer than 65535', (m) => publish(m, 0, 70_000, 0)],
    [
      'a chain longer than maxChainSegments',
      (m) => {
        for (let j = 0; j < 16; j++) m.setDesc(0, j, 1, 0, 8, m.bufferOffset(0, j));
        m.setHead(0, 16);
      },
    ],
  ];
  function publish(m: RawMemory, region: number, length: number, offset: number): void {
    m.setDesc(0, 0, 0, region, length, offset);
    m.setHead(0, 1);
  }
  for (const [what, scribble] of scribbles) {
    it(`${what}: down with ERR_FERRY_MEMIF_BAD_RING, DISCONNECT to the peer`, async () => {
      const { srv, ch, mem } = await up({ maxChainSegments: 8 });
      const down = nextEvent<[MemifDownReason]>(srv, 'down');
      scribble(mem);
      const burst = srv.createRxBurst(32);
      assert.equal(srv.rxBurst(0, burst), 0);
      assert.equal(srv.rxBurst(0, burst), 0, 'dead link stays quiet');
      const [reason] = await down;
      assert.equal(reason.code, 'ERR_FERRY_MEMIF_BAD_RING');
      assert.equal(await ch.expectDisconnect(), 'Bad ring or descriptor');
      assert.equal(srv.state, 'listening');
      mem.release();
    });
  }

  it('an unterminated chain that fills the whole ring: down (it could never complete)', async () => {
    const { srv, mem } = await up({ maxChainSegments: 64 });
    for (let j = 0; j < 15; j++) mem.setDesc(0, j, 1, 0, 8, mem.bufferOffset(0, j));
    mem.setHead(0, 15);
    assert.deepEqual(srv.receive(0), [], 'one free slot left: still waiting for the end');
    assert.equal(srv.state, 'up');
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    mem.setDesc(0, 15, 1, 0, 8, mem.bufferOffset(0, 15));
    mem.setHead(0, 16);
    assert.deepEqual(srv.receive(0), []);
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_BAD_RING');
    mem.release();
  });

  it('S2C: descriptors the client lends are validated before the server writes', async () => {
    const { srv, mem } = await up();
    // Lend one good buffer, then one that points outside the region.
    mem.setDesc(1, 0, 0, 0, 256, mem.bufferOffset(1, 0));
    mem.setDesc(1, 1, 0, 0, 256, mem.size - 100);
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    mem.setHead(1, 1);
    assert.equal(srv.send(0, [new Uint8Array(100).fill(7)]), 1);
    assert.equal(mem.tail(1), 1);
    assert.equal(mem.desc(1, 0).length, 100);
    assert.ok(mem.u8.subarray(mem.bufferOffset(1, 0), mem.bufferOffset(1, 0) + 100).every((b) => b === 7));
    mem.setHead(1, 2);
    assert.equal(srv.send(0, [new Uint8Array(100)]), 0);
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_BAD_RING');
    assert.equal(mem.tail(1), 1, 'nothing published into the bad buffer');
    mem.release();
  });

  it('S2C: a head that runs ahead of the ring takes the link down', async () => {
    const { srv, mem } = await up();
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    mem.setHead(1, 100);
    assert.equal(srv.send(0, [new Uint8Array(10)]), 0);
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_BAD_RING');
    mem.release();
  });

  it('a control message after CONNECT is a protocol violation', async () => {
    const { srv, ch, mem } = await up();
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    ch.send({ type: 'ack' });
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_PROTOCOL');
    assert.equal(await ch.expectDisconnect(), 'Unexpected message');
    mem.release();
  });

  it('the client vanishing is ERR_FERRY_MEMIF_PEER_GONE; its DISCONNECT is PEER_DISCONNECT', async () => {
    const a = await up();
    const down = nextEvent<[MemifDownReason]>(a.srv, 'down');
    a.ch.close();
    assert.equal((await down)[0].code, 'ERR_FERRY_MEMIF_PEER_GONE');
    a.mem.release();
    const b = await up();
    const down2 = nextEvent<[MemifDownReason]>(b.srv, 'down');
    b.ch.send({ type: 'disconnect', code: 0, reason: 'bye now' });
    const [r] = await down2;
    assert.equal(r.code, 'ERR_FERRY_MEMIF_PEER_DISCONNECT');
    assert.equal(r.peerMessage, 'bye now');
    b.mem.release();
  });

  it('the client shrinking nothing: memory stays readable after the link is down', async () => {
    const { srv, ch, mem } = await up();
    mem.u8.set([9, 9, 9], mem.bufferOffset(0, 0));
    mem.setDesc(0, 0, 0, 0, 3, mem.bufferOffset(0, 0));
    mem.setHead(0, 1);
    const burst = srv.createRxBurst(4);
    assert.equal(srv.rxBurst(0, burst), 1);
    const view = burst.packet(0);
    const down = nextEvent<[MemifDownReason]>(srv, 'down');
    ch.close();
    await down;
    // The mapping is gone (replaced by zeros); the stale view reads zeros instead of faulting.
    await eventually(() => view[0] === 0, 2000, 'stale view reads zeros');
    burst.release();
    mem.release();
  });
});
