/** DirectRead over real loopback sockets: node's onread contract as the TCP pump relies on it. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { test } from 'node:test';
import { collect, netConnect, sha256 } from '../testing/net-peer.js';
import { seededBytes } from '../testing/seeded.js';
import {
  adoptAccepted,
  DIRECT_ACCEPT_NODE_MAJORS,
  DirectRead,
  directAcceptSupport,
  directReadOf,
  scratchBuffer,
} from './direct-read.js';

/**
 * A sink that hands out buffers of changing sizes and checks every read lands in the last one. The
 * first read lands where the DirectRead pointed the socket before the sink attached: the scratch.
 */
function checkingSink(sizes: number[]) {
  const hash = createHash('sha256');
  const state = { bytes: 0, reads: 0, wrongBuffer: 0, i: 0 };
  let last: Uint8Array = scratchBuffer();
  return {
    state,
    digest: () => hash.copy().digest('hex'),
    sink: {
      nextBuffer(): Uint8Array {
        last = new Uint8Array(sizes[state.i++ % sizes.length] ?? 1);
        return last;
      },
      onRead(n: number, buf: Uint8Array): void {
        if (buf !== last) state.wrongBuffer++;
        assert.ok(n > 0 && n <= buf.length, `read of ${n} into ${buf.length} B`);
        hash.update(buf.subarray(0, n));
        state.bytes += n;
        state.reads++;
      },
    },
  };
}

function listening(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : 0);
    }),
  );
}

function closed(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

test('an accepted socket adopted with a DirectRead: reads land in the sink, writes, FIN and close work', async () => {
  const adoptedClosed: Promise<void>[] = [];
  const sinks: ReturnType<typeof checkingSink>[] = [];
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
    const s = adoptAccepted(sock, true);
    assert.notEqual(s, sock, 'a new Socket over the same handle');
    const reader = directReadOf(s);
    assert.ok(reader, 'the adopted socket has a DirectRead');
    const c = checkingSink([7, 65_536, 1000, 300_000]);
    sinks.push(c);
    reader.attach(c.sink);
    s.on('end', () => s.end('bye'));
    s.resume();
    adoptedClosed.push(new Promise<void>((resolve) => s.once('close', () => resolve())));
  });
  const port = await listening(server);
  const data = seededBytes(41, 3 * 1024 * 1024 + 17);
  const client = await netConnect(port, true);
  const got = collect(client);
  client.end(data);
  const r = await got;
  assert.equal(r.how, 'end');
  assert.equal(r.text, 'bye');
  const c = sinks[0];
  assert.ok(c);
  assert.equal(c.state.bytes, data.length);
  assert.equal(c.digest(), sha256(data));
  assert.equal(c.state.wrongBuffer, 0, 'every read landed in the buffer nextBuffer() returned last');
  assert.ok(c.state.reads > 4, 'several reads');
  // The server counted the connection on the old Socket; the adopted one's close uncounts it, so
  // close() completes.
  await adoptedClosed[0];
  const count = await new Promise<number>((resolve, reject) =>
    server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
  );
  assert.equal(count, 0);
  await closed(server);
});

test('a DirectRead socket reads nothing until resumed, and pause() stops the reads', async () => {
  let peer: Socket | null = null;
  const server = createServer((s) => {
    peer = s;
  });
  const port = await listening(server);
  const reader = new DirectRead();
  const sock = connect({ host: '127.0.0.1', port, onread: reader.onread });
  reader.bind(sock);
  sock.pause();
  await new Promise<void>((resolve) => sock.once('connect', () => resolve()));
  for (let i = 0; i < 50 && !peer; i++) await new Promise((r) => setTimeout(r, 10));
  const p = peer as Socket | null;
  assert.ok(p);
  p.write(seededBytes(42, 100_000));
  await new Promise((r) => setTimeout(r, 100));
  // A read before attach() would have destroyed the socket.
  assert.equal(sock.destroyed, false, 'no read before the sink attached');
  const c = checkingSink([4096]);
  let pauseAt = 0;
  reader.attach({
    nextBuffer: () => c.sink.nextBuffer(),
    onRead: (n, buf) => {
      c.sink.onRead(n, buf);
      if (c.state.bytes >= 50_000 && pauseAt === 0) {
        pauseAt = c.state.bytes;
        sock.pause();
      }
    },
  });
  sock.resume();
  for (let i = 0; i < 200 && pauseAt === 0; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(c.state.bytes, pauseAt, 'no read while paused');
  const ended = new Promise<void>((resolve) => sock.once('end', () => resolve()));
  p.end();
  sock.resume();
  await ended;
  assert.equal(c.state.bytes, 100_000);
  assert.equal(c.state.wrongBuffer, 0);
  sock.destroy();
  await closed(server);
});

test('accepted sockets get a DirectRead only on verified node lines with the internals in place', () => {
  const here = process.versions.node;
  const verified = DIRECT_ACCEPT_NODE_MAJORS.includes(Number(here.split('.')[0]));
  assert.equal(directAcceptSupport({}, here).on, verified);
  const unknown = directAcceptSupport({}, '99.0.0');
  assert.equal(unknown.on, false);
  assert.match(unknown.why, /node 99\.0\.0 is not a verified line/);
  // Forced on, the internals are still probed (they are there on this node).
  assert.equal(directAcceptSupport({ FERRY_DIRECT_ACCEPT: 'on' }, '99.0.0').on, true);
  assert.deepEqual(directAcceptSupport({ FERRY_DIRECT_ACCEPT: 'off' }, here), {
    on: false,
    why: 'FERRY_DIRECT_ACCEPT=off',
  });
});
