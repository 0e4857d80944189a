/**
 * Message channels under load and loss: arbitrary values round-trip (fast-check), 10,000 requests
 * in flight, a slow consumer keeps memory bounded, kill -9 of either side mid-request rejects or
 * aborts everything and leaves ferryd at its baseline, and a channel across two ferryd (TCP).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FerryError } from '@ferry/sdk';
import {
  connectMessages,
  createMessageServer,
  type MessageChannel,
  type MessageServer,
} from '@ferry/sdk/messages';
import fc from 'fast-check';
import { childInbox, kill9, type PeerMessage } from '../testing/child-inbox.js';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

const PEER = fileURLToPath(new URL('../testing/message-peer.js', import.meta.url));

let d: DaemonHandle;
let echo: MessageServer;
let uri = '';

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  echo = createMessageServer({ onRequest: (v) => v }).listen('tcp://127.0.0.1:0');
  await echo.ready();
  uri = echo.uri ?? '';
});

after(async () => {
  await echo.close();
  await d.stop();
});

function spawnPeer(args: string[]): { proc: ChildProcess; next: () => Promise<PeerMessage> } {
  const proc = fork(PEER, args, { env: { ...process.env, FERRY_SOCKET: d.socket }, stdio: 'inherit' });
  return { proc, next: childInbox(proc) };
}

async function sessionCount(): Promise<number> {
  return ((await d.show('sessions')) as unknown[]).length;
}

/** Values msgpackr round-trips exactly: no -0 (it becomes 0), no __proto__ keys (renamed). */
const value = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true }).map((x) => (Object.is(x, -0) ? 0 : x)),
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.bigInt({ min: -(2n ** 80n), max: 2n ** 80n }),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
    fc.float64Array({ maxLength: 8, noNaN: true }).map((a) => a.map((x) => (Object.is(x, -0) ? 0 : x))),
    fc.int32Array({ maxLength: 8 }),
  ),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 5 }),
    fc.dictionary(
      fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
      tie('node'),
      { maxKeys: 5, noNullPrototype: true },
    ),
    fc
      .array(fc.tuple(fc.oneof(fc.string(), fc.integer()), tie('node')), { maxLength: 4 })
      .map((e) => new Map(e)),
    fc.uniqueArray(fc.oneof(fc.string(), fc.integer()), { maxLength: 4 }).map((a) => new Set(a)),
  ),
})).node;

describe('values', () => {
  test('arbitrary values round-trip through a request and its reply, on one channel', async () => {
    const ch = await connectMessages(uri);
    await fc.assert(
      fc.asyncProperty(value, async (v) => {
        assert.deepEqual(await ch.request(v), v);
      }),
      { numRuns: 300 },
    );
    await ch.close();
  });

  test('decoded binary values are copies: overwriting the fifo afterwards changes nothing', async () => {
    const ch = await connectMessages(uri, { rxFifoSize: 4096, txFifoSize: 4096 });
    const first = (await ch.request(Buffer.alloc(1000, 1))) as Buffer;
    // Enough traffic to wrap the 4 KiB fifos several times over the bytes `first` came from.
    for (let i = 0; i < 20; i++) await ch.request(Buffer.alloc(1000, 2 + i));
    assert.deepEqual(first, Buffer.alloc(1000, 1));
    await ch.close();
  });
});

describe('load', () => {
  test('10,000 requests in flight on one channel each get their own reply', async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let arrived = 0;
    const held = createMessageServer({
      onRequest: async (v) => {
        arrived++;
        await gate;
        return v;
      },
    }).listen('tcp://127.0.0.1:0');
    await held.ready();
    const ch = await connectMessages(held.uri ?? '');
    const all = Array.from({ length: 10_000 }, (_, i) => ch.request({ i }));
    await eventually(async () => arrived === 10_000, 30_000, 'all requests at the server');
    // The server holds every one of them until the test lets them go.
    assert.equal(ch.pendingRequests, 10_000);
    release();
    const replies = await Promise.all(all);
    for (const [i, r] of replies.entries()) assert.deepEqual(r, { i });
    assert.equal(ch.pendingRequests, 0);
    await ch.close();
    await held.close();
  });

  test('a consumer that does not read keeps the sender’s memory bounded (false, then ENOBUFS)', async () => {
    let serverSide: MessageChannel | undefined;
    const pusher = createMessageServer({ maxQueuedBytes: 256 * 1024, onChannel: (c) => (serverSide = c) });
    pusher.listen('tcp://127.0.0.1:0');
    await pusher.ready();
    const ch = await connectMessages(pusher.uri ?? '', { rxFifoSize: 64 * 1024, highWaterMark: 100 });
    await eventually(async () => serverSide !== undefined);
    const s = serverSide as MessageChannel;
    let sentTrue = 0;
    let refused: FerryError | null = null;
    for (let i = 0; i < 200_000 && refused === null; i++) {
      try {
        if (s.send({ i, pad: 'x'.repeat(100) })) sentTrue++;
      } catch (err) {
        refused = err as FerryError;
      }
    }
    assert.equal(refused?.code, 'ENOBUFS');
    assert.ok(s.queuedBytes <= 256 * 1024 + 200, `queued ${s.queuedBytes}`);
    // Nobody iterates: the client holds at most its high-water mark of values.
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(ch.bufferedValues <= 100, `buffered ${ch.bufferedValues}`);
    // Reading drains it all, in order.
    let expect = 0;
    for await (const v of ch) {
      assert.equal((v as { i: number }).i, expect++);
      if (expect === sentTrue) break;
    }
    await pusher.close();
  });
});

describe('peers killed with SIGKILL', () => {
  test('the server dies mid-request: every pending request rejects with ECONNRESET', async () => {
    const base = await sessionCount();
    const peer = spawnPeer(['server']);
    const { uri: peerUri } = await peer.next();
    const ch = await connectMessages(String(peerUri));
    const pending = Array.from({ length: 100 }, (_, i) =>
      ch.request({ hang: true, i }).catch((e: FerryError) => e),
    );
    await ch.request({ ping: 1 });
    await kill9(peer.proc);
    const errs = await Promise.all(pending);
    for (const e of errs) assert.equal((e as FerryError).code, 'ECONNRESET');
    assert.equal(ch.pendingRequests, 0);
    await eventually(async () => ch.state === 'closed');
    await eventually(async () => (await sessionCount()) === base, 10_000, 'sessions back to baseline');
  });

  test('the client dies mid-request: the server aborts its handlers and closes the channel', async () => {
    const base = await sessionCount();
    const signals: AbortSignal[] = [];
    let serverSide: MessageChannel | undefined;
    const hang = createMessageServer({
      onRequest: (_v, ctx) => {
        signals.push(ctx.signal);
        return new Promise(() => {});
      },
      onChannel: (c) => (serverSide = c),
    }).listen('tcp://127.0.0.1:0');
    await hang.ready();
    const peer = spawnPeer(['client', hang.uri ?? '', '50']);
    await peer.next();
    await eventually(async () => signals.length === 50);
    await kill9(peer.proc);
    await eventually(async () => serverSide?.state === 'closed');
    assert.equal(serverSide?.error?.code, 'ECONNRESET');
    assert.ok(signals.every((s) => s.aborted));
    assert.equal(hang.channels.size, 0);
    await hang.close();
    await eventually(async () => (await sessionCount()) === base, 10_000, 'sessions back to baseline');
  });
});

describe('across two ferryd', () => {
  test('request/response and pushes work when ferryd carries the channel over TCP', async () => {
    const b = await startDaemon();
    try {
      const remote = createMessageServer({
        socket: b.socket,
        onRequest: (v, ctx) => {
          ctx.channel.send({ pushed: v });
          return { echo: v };
        },
      }).listen('tcp://127.0.0.1:0');
      await remote.ready();
      const ch = await connectMessages(remote.uri ?? '', { socket: d.socket });
      assert.equal(ch.transport, 'tcp');
      const big = Buffer.alloc(3 * 1024 * 1024, 9);
      for (const v of [1, 'two', { three: [3] }, big]) {
        assert.deepEqual(await ch.request(v), { echo: v });
      }
      const got: unknown[] = [];
      for await (const v of ch) {
        got.push(v);
        if (got.length === 4) break;
      }
      assert.deepEqual(got[3], { pushed: big });
      await remote.close();
    } finally {
      await b.stop();
    }
  });
});
