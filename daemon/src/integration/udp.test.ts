/**
 * UDP: SDK datagram sockets in app processes, through a real ferryd, against node:dgram peers (in
 * this test process) and nc, and between two local apps (cut-through fifo pairs).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import {
  connect,
  createDatagramSocket,
  createServer,
  type DatagramSocket,
  type RemoteInfo as FerryRemoteInfo,
} from '@ferry/sdk';
import { datagramPayload, sha256 } from '../testing/datagrams.js';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { hasBinary, runWithInput } from '../testing/net-peer.js';
import { received, UDP_APP, type UdpGot, waitReceived } from '../testing/udp-received.js';

interface SessionRow {
  id: number;
  app: number;
  transport: string;
  local: string;
  remote: string;
  peer: number | null;
  daemonBytes: number;
}

interface Peer {
  sock: Socket;
  port: number;
  got: { msg: Buffer; rinfo: RemoteInfo }[];
  close(): Promise<void>;
}

/** A plain node:dgram socket on 127.0.0.1 that records what it receives. */
async function dgramPeer(): Promise<Peer> {
  const sock = createSocket('udp4');
  const got: { msg: Buffer; rinfo: RemoteInfo }[] = [];
  sock.on('message', (msg, rinfo) => got.push({ msg, rinfo }));
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  return {
    sock,
    port: sock.address().port,
    got,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

function peerSend(p: Peer, payload: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) =>
    p.sock.send(payload, port, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
  );
}

let d: DaemonHandle;
let a: AppHandle;
let b: AppHandle;
let portA = 0;
let portB = 0;

/** Checks that `got[from..]` are exactly the seeded datagrams of `sizes`, in order, from `port`. */
function assertDatagrams(got: UdpGot[], from: number, sizes: number[], seed: number, port: number): void {
  const slice = got.slice(from, from + sizes.length);
  assert.equal(slice.length, sizes.length, 'datagram count');
  slice.forEach((g, i) => {
    assert.equal(g.size, sizes[i], `datagram ${i}: size (boundaries kept)`);
    assert.equal(g.sha256, sha256(datagramPayload(seed, i, sizes[i] as number)), `datagram ${i}: content`);
    assert.equal(g.address, '127.0.0.1', `datagram ${i}: sender address`);
    assert.equal(g.port, port, `datagram ${i}: sender port`);
  });
}

before(async () => {
  d = await startDaemon();
  a = await startApp(d.socket, {}, UDP_APP);
  b = await startApp(d.socket, {}, UDP_APP);
  portA = Number((await a.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
  portB = Number((await b.ok({ op: 'bind', uri: 'udp://0.0.0.0:0' }))['port']);
});

after(async () => {
  await a?.kill();
  await b?.kill();
  await d?.stop();
});

const MIXED = [0, 1, 2, 7, 100, 1472, 1473, 4096, 9000, 65507, 3, 65507, 512];

describe('UDP through ferryd to node:dgram peers', () => {
  test('an SDK app and a node:dgram peer exchange datagrams, boundaries, content and addresses kept', async () => {
    const peer = await dgramPeer();
    try {
      const r = await a.ok({ op: 'send', port: peer.port, sizes: MIXED, seed: 1, paceEvery: 2 });
      assert.deepEqual(
        r['codes'],
        MIXED.map(() => null),
      );
      await eventually(async () => peer.got.length >= MIXED.length, 15_000, 'the peer to get every datagram');
      peer.got.forEach((g, i) => {
        assert.equal(g.msg.length, MIXED[i], `datagram ${i}: size`);
        assert.ok(g.msg.equals(datagramPayload(1, i, MIXED[i] as number)), `datagram ${i}: content`);
        assert.equal(g.rinfo.address, '127.0.0.1');
        assert.equal(g.rinfo.port, portA, 'the source is the address the app bound');
      });

      const before = (await received(a)).length;
      for (let i = 0; i < MIXED.length; i++) {
        await peerSend(peer, datagramPayload(2, i, MIXED[i] as number), portA);
        await new Promise((res) => setTimeout(res, 2));
      }
      const got = await waitReceived(a, before + MIXED.length, 'the app to get the peer datagrams');
      assertDatagrams(got, before, MIXED, 2, peer.port);

      const sessions = (await d.show('sessions')) as SessionRow[];
      const relay = sessions.find((s) => s.transport === 'udp' && s.local === `udp://127.0.0.1:${portA}`);
      assert.ok(relay, 'the endpoint has a udp relay session');
      const total = MIXED.reduce((x, y) => x + y, 0);
      assert.equal(relay.daemonBytes, 2 * total, 'ferryd moved every payload byte, both ways');
    } finally {
      await peer.close();
    }
  });

  test('send to a udp:// URI and to a host name', async () => {
    const peer = await dgramPeer();
    try {
      const r = await a.ok({ op: 'send-uri', uri: `udp://localhost:${peer.port}`, sizes: [5, 6], seed: 3 });
      assert.deepEqual(r['codes'], [null, null]);
      await eventually(async () => peer.got.length >= 2, 10_000, 'two datagrams');
      assert.deepEqual(
        peer.got.map((g) => g.msg.length),
        [5, 6],
      );
    } finally {
      await peer.close();
    }
  });

  test('nc -u reaches an SDK app and gets its echo', { skip: !hasBinary('nc') }, async () => {
    const e = await startApp(d.socket, {}, UDP_APP);
    try {
      const port = Number((await e.ok({ op: 'bind', uri: 'udp://127.0.0.1:0', echo: true }))['port']);
      // nc sends the line as one datagram from its own port, then prints what comes back.
      const run = runWithInput(
        'nc',
        ['-u', '-w', '2', '127.0.0.1', String(port)],
        Buffer.from('hello ferry\n'),
        15_000,
      );
      const out = await run.done;
      assert.equal(out.stdout.toString(), 'hello ferry\n', `nc printed the echo (stderr: ${out.stderr})`);
      const got = await received(e);
      assert.equal(got.length, 1);
      assert.equal(got[0]?.text, 'hello ferry\n');
      assert.equal(got[0]?.address, '127.0.0.1');
    } finally {
      await e.kill();
    }
  });
});

describe('UDP with nc -u -l as the remote', () => {
  test('an SDK app reaches nc -u -l, and nc answers to its address', { skip: !hasBinary('nc') }, async () => {
    const e = await startApp(d.socket, {}, UDP_APP);
    // A port for nc: bound and released by the kernel (nothing else here binds on purpose).
    const probe = await dgramPeer();
    const ncPort = probe.port;
    await probe.close();
    const nc = spawn('nc', ['-u', '-l', '127.0.0.1', String(ncPort)], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    nc.stdout.on('data', (b: Buffer) => out.push(b));
    try {
      await e.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' });
      // nc may not listen yet: send until it has printed one (lost datagrams are UDP's right).
      await eventually(
        async () => {
          await e.ok({ op: 'send-uri', uri: `udp://127.0.0.1:${ncPort}`, sizes: [16], seed: 30 });
          return Buffer.concat(out).length >= 16;
        },
        10_000,
        'nc to print a datagram',
      );
      // nc prints each datagram's bytes as they came (several, if several got through).
      assert.ok(
        Buffer.concat(out)
          .subarray(0, 16)
          .equals(datagramPayload(30, 0, 16)),
      );
      // nc now sends its stdin lines to the address the datagram came from.
      nc.stdin.write('pong from nc\n');
      const got = await waitReceived(e, 1, 'the app to get the line from nc');
      assert.equal(got[0]?.text, 'pong from nc\n');
      assert.equal(got[0]?.port, ncPort);
    } finally {
      nc.kill('SIGKILL');
      await e.kill();
    }
  });
});

describe('UDP between two ferryd (two hosts on one machine)', () => {
  test('an app on one ferryd and an app on another exchange datagrams over kernel UDP', async () => {
    const d2 = await startDaemon();
    const z = await startApp(d2.socket, {}, UDP_APP);
    try {
      const portZ = Number((await z.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
      const sizes = [1, 1400, 65507, 0, 9000];
      const beforeZ = (await received(z)).length;
      await a.ok({ op: 'send', port: portZ, sizes, seed: 40, paceEvery: 1 });
      const got = await waitReceived(z, beforeZ + sizes.length, 'z to get the datagrams from a');
      assertDatagrams(got, beforeZ, sizes, 40, portA);
      const beforeA = (await received(a)).length;
      await z.ok({ op: 'send', port: portA, sizes: [3, 4], seed: 41, paceEvery: 1 });
      const back = await waitReceived(a, beforeA + 2, 'a to get the replies from z');
      assertDatagrams(back, beforeA, [3, 4], 41, portZ);
      // Neither ferryd made a cut-through pair for this: each relayed through its kernel socket.
      const sessions = (await d2.show('sessions')) as SessionRow[];
      assert.deepEqual(
        sessions.map((x) => x.transport),
        ['udp'],
      );
      const relayZ = sessions[0] as SessionRow;
      const total = sizes.reduce((x, y) => x + y, 0) + 7;
      assert.equal(relayZ.daemonBytes, total, 'ferryd 2 moved every payload byte');
    } finally {
      await z.kill();
      await d2.stop();
    }
  });
});

describe('UDP between two local apps (cut-through)', () => {
  test('datagrams go app to app through a fifo pair, in order, boundaries kept, ferryd moves no byte', async () => {
    const sizes = Array.from({ length: 300 }, (_, i) => (i * 7919) % 9001);
    sizes[17] = 65507;
    sizes[18] = 0;
    const before = (await received(b)).length;
    const r = await a.ok({ op: 'send', port: portB, sizes, seed: 4 });
    assert.deepEqual(
      r['codes'],
      sizes.map(() => null),
    );
    const got = await waitReceived(b, before + sizes.length, 'b to get every datagram');
    assertDatagrams(got, before, sizes, 4, portA);
    assert.equal(got.length, before + sizes.length, 'no datagram twice');

    // The reply goes back to the address the datagrams came from: the same pair, the other way.
    const back = [3, 65507, 0, 1000];
    const beforeA = (await received(a)).length;
    await b.ok({ op: 'send', port: portA, sizes: back, seed: 5 });
    const gotA = await waitReceived(a, beforeA + back.length, 'a to get the replies');
    assertDatagrams(gotA, beforeA, back, 5, portB);

    const sessions = (await d.show('sessions')) as SessionRow[];
    const ct = sessions.filter((s) => s.transport === 'ct' && s.peer !== null);
    assert.ok(
      ct.some((s) => s.local === `udp://127.0.0.1:${portA}` && s.remote === `udp://127.0.0.1:${portB}`),
      `a cut-through pair between the endpoints: ${JSON.stringify(ct)}`,
    );
    const relayB = sessions.find((s) => s.transport === 'udp' && s.local === `udp://0.0.0.0:${portB}`);
    assert.ok(relayB);
    assert.equal(relayB.daemonBytes, 0, 'no datagram between local apps went through ferryd');
  });

  test('a burst larger than the fifo waits for space instead of losing datagrams', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    const e = await startApp(d.socket, {}, UDP_APP);
    try {
      // 16 KiB fifos: 200 datagrams of 1000 bytes sent in one turn cannot all fit at once.
      const portC = Number((await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0', rxFifoSize: 16384 }))['port']);
      const portE = Number(
        (await e.ok({ op: 'bind', uri: 'udp://127.0.0.1:0', txFifoSize: 16384, rxFifoSize: 16384 }))['port'],
      );
      const sizes = Array.from({ length: 200 }, () => 1000);
      const r = await e.ok({ op: 'send', port: portC, sizes, seed: 6, burst: true });
      assert.deepEqual(
        r['codes'],
        sizes.map(() => null),
      );
      const got = await waitReceived(c, sizes.length, 'c to get all 200');
      assertDatagrams(got, 0, sizes, 6, portE);
    } finally {
      await c.kill();
      await e.kill();
    }
  });
});

describe('UDP when a local peer goes away', () => {
  test('its pair is freed, later sends go out through ferryd, and a new endpoint on that port gets them', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    const e = await startApp(d.socket, {}, UDP_APP);
    const f = await startApp(d.socket, {}, UDP_APP);
    try {
      const portC = Number((await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
      const portE = Number((await e.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
      await c.ok({ op: 'send', port: portE, sizes: [1, 2, 3], seed: 20 });
      await waitReceived(e, 3, 'e to get 3');
      const pairOf = async () =>
        ((await d.show('sessions')) as SessionRow[]).filter(
          (s) => s.transport === 'ct' && s.local === `udp://127.0.0.1:${portC}`,
        );
      assert.equal((await pairOf()).length, 1, 'c has a cut-through pair with e');

      await e.ok({ op: 'close' });
      await eventually(async () => (await pairOf()).length === 0, 10_000, 'the pair to be freed');

      // Nobody is bound there now: the datagrams go out through ferryd's kernel socket and are lost.
      const lost = await c.ok({ op: 'send', port: portE, sizes: [4, 5], seed: 21 });
      assert.deepEqual(lost['codes'], [null, null]);

      // A new endpoint on the same port hears c (through the kernel: c remembered "not local"),
      // and its reply comes back cut-through.
      await f.ok({ op: 'bind', uri: `udp://127.0.0.1:${portE}` });
      await c.ok({ op: 'send', port: portE, sizes: [6, 7], seed: 22 });
      const got = await waitReceived(f, 2, 'f to get c');
      assertDatagrams(got, 0, [6, 7], 22, portC);
      await f.ok({ op: 'send', port: portC, sizes: [8], seed: 23 });
      const back = await waitReceived(c, 1, 'c to get the reply');
      assertDatagrams(back, 0, [8], 23, portE);
      assert.equal((await pairOf()).length, 1, 'the reply made a new cut-through pair');
    } finally {
      await c.kill();
      await e.kill();
      await f.kill();
    }
  });
});

describe('UDP when a local peer dies', () => {
  test('the surviving app unmaps the segment of their pair (a lookup leaves no pin behind)', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    const e = await startApp(d.socket, {}, UDP_APP);
    const segmentsOfC = async () => {
      const r = await c.ok({ op: 'attachments' });
      const atts = r['attachments'] as { segments: number }[];
      return atts.reduce((n, a) => n + a.segments, 0);
    };
    try {
      await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' });
      const portE = Number((await e.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
      const before = await segmentsOfC();
      await c.ok({ op: 'send', port: portE, sizes: [1, 2], seed: 40 });
      await waitReceived(e, 2, 'e to get 2');
      assert.equal(await segmentsOfC(), before + 1, 'the pair with e added one segment to c');
      await e.kill();
      await eventually(
        async () => (await segmentsOfC()) === before,
        10_000,
        'c to let go of the pair segment',
      );
    } finally {
      await c.kill();
      await e.kill();
    }
  });
});

describe('UDP connected use', () => {
  test('a connected socket sends without an address and hears only its peer', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    const peer = await dgramPeer();
    const stranger = await dgramPeer();
    try {
      const portC = Number((await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
      const conn = await c.ok({ op: 'connect', port: peer.port });
      assert.deepEqual(conn['remote'], { address: '127.0.0.1', family: 'IPv4', port: peer.port });
      const r = await c.ok({ op: 'send-connected', sizes: [10, 20, 30], seed: 7 });
      assert.deepEqual(r['codes'], [null, null, null]);
      await eventually(async () => peer.got.length >= 3, 10_000, 'the peer to get 3');
      assert.deepEqual(
        peer.got.map((g) => [g.msg.length, g.rinfo.port]),
        [
          [10, portC],
          [20, portC],
          [30, portC],
        ],
      );
      // A stranger's datagram is not delivered to a connected socket; the peer's is.
      await peerSend(stranger, Buffer.from('stranger'), portC);
      await new Promise((res) => setTimeout(res, 50));
      await peerSend(peer, Buffer.from('peer'), portC);
      const got = await waitReceived(c, 1, "the peer's datagram");
      await new Promise((res) => setTimeout(res, 100));
      assert.deepEqual(
        (await received(c)).map((g) => g.text),
        ['peer'],
      );
      assert.equal(got[0]?.port, peer.port);

      // Disconnected, an address is needed again, and a local endpoint can be the peer.
      await c.ok({ op: 'disconnect' });
      const noAddr = await c.call({ op: 'send-connected', sizes: [1], seed: 8 });
      assert.deepEqual(noAddr['codes'], ['ENOTCONN']);
      await c.ok({ op: 'connect', port: portB });
      const beforeB = (await received(b)).length;
      await c.ok({ op: 'send-connected', sizes: [11, 65507], seed: 9 });
      const gotB = await waitReceived(b, beforeB + 2, 'b to get the connected sends');
      assertDatagrams(gotB, beforeB, [11, 65507], 9, portC);
    } finally {
      await c.kill();
      await peer.close();
      await stranger.close();
    }
  });
});

describe('UDP oversized datagrams', () => {
  test('more than 65507 bytes, or more than the fifo holds, fails with EMSGSIZE and sends nothing', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    const peer = await dgramPeer();
    try {
      await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0', txFifoSize: 4096 });
      const remote = await c.ok({
        op: 'send',
        port: peer.port,
        sizes: [65508, 4072, 4073, 100000],
        seed: 10,
      });
      assert.deepEqual(remote['codes'], ['EMSGSIZE', null, 'EMSGSIZE', 'EMSGSIZE']);
      const beforeB = (await received(b)).length;
      const local = await c.ok({ op: 'send', port: portB, sizes: [5000, 4072, 65508], seed: 11 });
      assert.deepEqual(local['codes'], ['EMSGSIZE', null, 'EMSGSIZE']);
      await eventually(async () => peer.got.length >= 1, 10_000, 'the peer to get the one that fits');
      const gotB = await waitReceived(b, beforeB + 1, 'b to get the one that fits');
      await new Promise((res) => setTimeout(res, 100));
      assert.deepEqual(
        peer.got.map((g) => g.msg.length),
        [4072],
      );
      assert.deepEqual(
        (await received(b)).slice(beforeB).map((g) => g.size),
        [4072],
      );
      assert.equal(gotB[beforeB]?.sha256, sha256(datagramPayload(11, 1, 4072)));
    } finally {
      await c.kill();
      await peer.close();
    }
  });
});

describe('UDP endpoint lifetime', () => {
  test('close and kill -9 give the endpoint, its kernel port and its sessions back', async () => {
    // The baseline once earlier tests' apps are gone and a and b let go of their pairs with them
    // (ferryd frees a pair only when both ends have; the survivor hears of the death asynchronously).
    await eventually(
      async () => {
        const apps = (await d.show('apps')) as { id: number; pid: number }[];
        const ids = apps.filter((x) => x.pid === a.proc.pid || x.pid === b.proc.pid).map((x) => x.id);
        const sessions = (await d.show('sessions')) as SessionRow[];
        return apps.length === 2 && sessions.every((x) => ids.includes(x.app));
      },
      10_000,
      'only a and b, and only their sessions',
    );
    const base = await d.stats();
    const c = await startApp(d.socket, {}, UDP_APP);
    const portC = Number((await c.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' }))['port']);
    await c.ok({ op: 'send', port: portB, sizes: [1, 2], seed: 12 });
    await c.ok({ op: 'close' });
    await eventually(
      async () => {
        const s = await d.stats();
        return s['listeners'] === base['listeners'] && s['sessions'] === base['sessions'];
      },
      10_000,
      'listeners and sessions back after close',
    );
    // The kernel port is free again.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(portC, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const k = await startApp(d.socket, {}, UDP_APP);
    await k.ok({ op: 'bind', uri: 'udp://127.0.0.1:0' });
    await k.ok({ op: 'send', port: portB, sizes: [3], seed: 13 });
    await k.kill();
    await c.kill();
    await eventually(
      async () => {
        const s = await d.stats();
        return s['listeners'] === base['listeners'] && s['sessions'] === base['sessions'];
      },
      10_000,
      'listeners and sessions back after kill -9',
    );
  });

  test('binding a taken address fails with EADDRINUSE', async () => {
    const c = await startApp(d.socket, {}, UDP_APP);
    try {
      const r = await c.call({ op: 'bind', uri: `udp://127.0.0.1:${portA}` });
      assert.equal(r['ok'], false);
      assert.equal(r['code'], 'EADDRINUSE');
    } finally {
      await c.kill();
    }
  });
});

describe('UDP API in the shape of node:dgram', () => {
  function once<T extends unknown[]>(s: DatagramSocket, ev: string): Promise<T> {
    return new Promise((resolve) => s.once(ev, (...args: unknown[]) => resolve(args as T)));
  }

  test('send forms, bind forms, address(), and the errors of misuse', async () => {
    const peer = await dgramPeer();
    const s = createDatagramSocket({ socket: d.socket, name: 'udp-api-test' });
    const r = createDatagramSocket({ socket: d.socket, name: 'udp-api-test' });
    try {
      assert.throws(() => s.address(), { code: 'EBADF' });
      assert.throws(() => s.remoteAddress(), { code: 'ENOTCONN' });
      const listening = once(s, 'listening');
      s.bind({ port: 0, address: '127.0.0.1' });
      await listening;
      assert.throws(() => s.bind(0), { code: 'ERR_FERRY_SESSION_STATE' });
      const addr = s.address();
      assert.equal(addr.address, '127.0.0.1');
      assert.equal(addr.family, 'IPv4');
      assert.equal(addr.uri, `udp://127.0.0.1:${addr.port}`);

      const sent = (fn: (cb: (err: Error | null, n: number) => void) => void) =>
        new Promise<number>((resolve, reject) => fn((err, n) => (err ? reject(err) : resolve(n))));
      assert.equal(await sent((cb) => s.send('text', peer.port, '127.0.0.1', cb)), 4);
      assert.equal(
        await sent((cb) => s.send([Buffer.from('ab'), 'cd', Uint8Array.of(101)], peer.port, cb)),
        5,
      );
      assert.equal(
        await sent((cb) => s.send(Buffer.from('0123456789'), 2, 3, peer.port, '127.0.0.1', cb)),
        3,
      );
      assert.equal(await sent((cb) => s.send('uri', `udp://127.0.0.1:${peer.port}`, cb)), 3);
      assert.equal(await sent((cb) => s.send('zeros', peer.port, '127.000.000.001', cb)), 5);
      await eventually(async () => peer.got.length >= 5, 10_000, 'five datagrams');
      assert.deepEqual(
        peer.got.map((g) => g.msg.toString()),
        ['text', 'abcde', '234', 'uri', 'zeros'],
      );

      // Without a callback, an error goes to 'error'.
      const err = once<[Error & { code?: string }]>(s, 'error');
      s.send(Buffer.alloc(65_508), peer.port);
      assert.equal((await err)[0].code, 'EMSGSIZE');

      // The implicit bind of a first send, and rinfo of a local sender.
      const msg = once<[Buffer, FerryRemoteInfo]>(s, 'message');
      r.send('implicit', addr.port, '127.0.0.1');
      const [m, rinfo] = await msg;
      assert.equal(m.toString(), 'implicit');
      assert.equal(rinfo.port, r.address().port);
      assert.equal(rinfo.size, 8);

      const connected = once(s, 'connect');
      s.connect(peer.port);
      await connected;
      assert.throws(() => s.connect(peer.port), { code: 'ERR_FERRY_SESSION_STATE' });
      const withAddr = await new Promise<Error | null>((resolve) => s.send('x', peer.port, resolve));
      assert.equal((withAddr as Error & { code?: string }).code, 'ERR_INVALID_ARG_VALUE');
      s.disconnect();
      assert.throws(() => s.disconnect(), { code: 'ENOTCONN' });

      // One synchronous burst to a local peer in this same process: nothing drains in between, so
      // the 4 KiB fifo fills, then the 8 KiB send queue, and the rest fail with ENOBUFS.
      const small = createDatagramSocket({
        socket: d.socket,
        name: 'udp-api-test',
        txFifoSize: 4096,
        sendQueueBytes: 8192,
      });
      try {
        await new Promise<void>((resolve) => small.bind('udp://127.0.0.1:0', () => resolve()));
        await sent((cb) => small.send('first', addr.port, '127.0.0.1', cb)); // makes the pair
        const outcomes = await Promise.all(
          Array.from(
            { length: 40 },
            () =>
              new Promise<string>((resolve) =>
                small.send(Buffer.alloc(1000), addr.port, '127.0.0.1', (e: Error | null) =>
                  resolve(e ? ((e as Error & { code?: string }).code ?? 'error') : 'ok'),
                ),
              ),
          ),
        );
        const ok = outcomes.filter((o) => o === 'ok').length;
        assert.ok(ok >= 8 && ok < 40, `some sent (${ok}), some refused`);
        assert.ok(
          outcomes.slice(ok).every((o) => o === 'ENOBUFS'),
          `the sends after the first refusal are refused too: ${outcomes.join(',')}`,
        );
        small.send(Buffer.alloc(1000), addr.port, '127.0.0.1'); // no callback: counted, not thrown
        for (let i = 0; i < 20; i++) small.send(Buffer.alloc(1000), addr.port, '127.0.0.1');
        assert.ok(small.droppedSends > 0);
      } finally {
        small.close();
      }

      // A socket asks for at most maxPeerPairs pairs; beyond, local peers are reached through the
      // kernel (ferryd's relay), with the same addresses.
      const capped = createDatagramSocket({ socket: d.socket, name: 'udp-api-test', maxPeerPairs: 1 });
      try {
        await new Promise<void>((resolve) => capped.bind('udp://127.0.0.1:0', () => resolve()));
        const cappedPort = capped.address().port;
        const viaPair = once<[Buffer, FerryRemoteInfo]>(s, 'message');
        await sent((cb) => capped.send('pair', addr.port, '127.0.0.1', cb));
        const viaKernel = once<[Buffer, FerryRemoteInfo]>(r, 'message');
        await sent((cb) => capped.send('kernel', r.address().port, '127.0.0.1', cb));
        const [m1, i1] = await viaPair;
        const [m2, i2] = await viaKernel;
        assert.deepEqual([m1.toString(), i1.port], ['pair', cappedPort]);
        assert.deepEqual([m2.toString(), i2.port], ['kernel', cappedPort]);
        const rows = (await d.show('sessions')) as SessionRow[];
        const local = `udp://127.0.0.1:${cappedPort}`;
        assert.equal(
          rows.filter((x) => x.transport === 'ct' && x.local === local).length,
          1,
          'one pair only',
        );
        const relay = rows.find((x) => x.transport === 'udp' && x.local === local);
        assert.equal(relay?.daemonBytes, 'kernel'.length, 'the second peer was reached through ferryd');
      } finally {
        capped.close();
      }

      // udp:// is not a stream: a stream listen or connect says so.
      const srv = createServer({ socket: d.socket });
      const listenErr = new Promise<Error & { code?: string }>((resolve) => srv.once('error', resolve));
      srv.listen('udp://127.0.0.1:0');
      assert.equal((await listenErr).code, 'ERR_FERRY_NOT_SUPPORTED');
      const stream = connect({ uri: `udp://127.0.0.1:${addr.port}`, socket: d.socket });
      const connectErr = await new Promise<Error & { code?: string }>((resolve) =>
        stream.once('error', resolve),
      );
      assert.equal(connectErr.code, 'ERR_FERRY_NOT_SUPPORTED');

      const closed = once(s, 'close');
      s.close();
      await closed;
      const after = await new Promise<Error | null>((resolve) => s.send('x', peer.port, resolve));
      assert.equal((after as Error & { code?: string }).code, 'ERR_FERRY_SOCKET_CLOSED');
    } finally {
      s.close();
      r.close();
      await peer.close();
    }
  });
});
