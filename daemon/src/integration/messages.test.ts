/**
 * @ferry/sdk/messages in this process against a real ferryd: values, request/response, pushes,
 * backpressure, large values, errors, timeouts and aborts, close.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { FerryError } from '@ferry/sdk';
import {
  connectMessages,
  createMessageServer,
  type MessageChannel,
  type MessageServer,
  ReceivedLoan,
  RemoteError,
} from '@ferry/sdk/messages';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let server: MessageServer;
let uri = '';
const received: unknown[] = [];

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  server = createMessageServer({
    onRequest: async (v, ctx) => {
      const req = v as { op: string; [k: string]: unknown };
      switch (req.op) {
        case 'add':
          return { sum: (req['a'] as number) + (req['b'] as number) };
        case 'echo':
          return req['value'];
        case 'throw': {
          const e = new TypeError('bad thing') as TypeError & { code: string };
          e.code = 'E_BAD';
          throw e;
        }
        case 'push':
          for (let i = 0; i < (req['n'] as number); i++) ctx.channel.send({ i });
          return 'pushed';
        case 'slow':
          await new Promise((r) => setTimeout(r, req['ms'] as number));
          return 'late';
        case 'wait-abort':
          return await new Promise((resolve) => {
            ctx.signal.addEventListener('abort', () => resolve('aborted'));
          });
        default:
          return undefined;
      }
    },
    onMessage: (v) => {
      received.push(v);
    },
  }).listen('tcp://127.0.0.1:0');
  await server.ready();
  uri = server.uri ?? '';
});

after(async () => {
  await server.close();
  await d.stop();
});

describe('request/response', () => {
  test('a request gets its reply, cut-through', async () => {
    const ch = await connectMessages(uri);
    assert.equal(ch.transport, 'ct');
    assert.deepEqual(await ch.request({ op: 'add', a: 1, b: 2 }), { sum: 3 });
    await ch.close();
    assert.equal(ch.state, 'closed');
  });

  test('values of every supported type come back equal', async () => {
    const ch = await connectMessages(uri);
    const values: unknown[] = [
      null,
      true,
      0,
      -1.5,
      2 ** 53 - 1,
      'text',
      '',
      [1, [2, [3]]],
      { id: 1, ts: 1700000000000, name: 'x', vals: [1, 2, 3] },
      new Date(1234567890123),
      new Map<unknown, unknown>([
        [1, 'a'],
        ['k', { z: 1 }],
      ]),
      new Set([1, 'a']),
      5n,
      2n ** 100n,
      -(2n ** 70n),
      new Float64Array([1.5, -2]),
      new Uint8Array([1, 2, 3]),
      Buffer.from('buffer'),
      new Int32Array([-1, 5]),
      { nested: { deeper: { list: [new Date(0), new Set(['s'])] } } },
    ];
    for (const v of values) assert.deepEqual(await ch.request({ op: 'echo', value: v }), v);
    await ch.close();
  });

  test('many requests in flight are answered, each by its own reply', async () => {
    const ch = await connectMessages(uri);
    const n = 2000;
    const replies = await Promise.all(
      Array.from({ length: n }, (_, i) => ch.request({ op: 'add', a: i, b: 1 })),
    );
    for (const [i, r] of replies.entries()) assert.deepEqual(r, { sum: i + 1 });
    assert.equal(ch.pendingRequests, 0);
    await ch.close();
  });

  test('round trips one at a time: each reply and each next request was expected once (roundTripStats)', async () => {
    const ch = await connectMessages(uri);
    const n = 200;
    for (let i = 0; i < n; i++) assert.deepEqual(await ch.request({ op: 'add', a: i, b: 1 }), { sum: i + 1 });
    const { reply } = ch.roundTripStats;
    const choices = (s: typeof reply) =>
      s.polledPeerPolling + s.polledPeerAsleep + s.sleptPeerPolling + s.sleptPeerAsleep;
    assert.equal(choices(reply), n, 'one choice per awaited reply');
    assert.equal(reply.foundPolling + reply.foundWoken, n, 'each reply came once');
    assert.ok(reply.late + reply.voided <= n);
    const served = [...server.channels].find((c) => c.remoteUri === ch.localUri);
    assert.ok(served, 'the server side of this channel');
    const { request } = served.roundTripStats;
    // After each reply the server expects the next request; the first one was not expected.
    assert.equal(choices(request), n);
    assert.equal(request.foundPolling + request.foundWoken, n - 1);
    await ch.close();
  });

  test('a handler error rejects with ERR_FERRY_REMOTE: name, message, code, no stack', async () => {
    const ch = await connectMessages(uri);
    const err = (await ch.request({ op: 'throw' }).catch((e: unknown) => e)) as RemoteError;
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'ERR_FERRY_REMOTE');
    assert.equal(err.remote.name, 'TypeError');
    assert.equal(err.remote.message, 'bad thing');
    assert.equal(err.remote.code, 'E_BAD');
    assert.equal(err.remote.stack, undefined);
    // The channel goes on.
    assert.deepEqual(await ch.request({ op: 'add', a: 2, b: 2 }), { sum: 4 });
    await ch.close();
  });

  test('a request times out with ETIMEDOUT, and the late reply is dropped', async () => {
    const ch = await connectMessages(uri);
    const err = (await ch.request({ op: 'slow', ms: 300 }, { timeoutMs: 50 }).catch((e) => e)) as FerryError;
    assert.equal(err.code, 'ETIMEDOUT');
    assert.equal(ch.pendingRequests, 0);
    assert.deepEqual(await ch.request({ op: 'add', a: 1, b: 1 }), { sum: 2 });
    await ch.close();
  });

  test('an AbortSignal rejects with ABORT_ERR and aborts the handler’s signal', async () => {
    const ch = await connectMessages(uri);
    const ac = new AbortController();
    const p = ch.request({ op: 'wait-abort' }, { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    const err = (await p.catch((e) => e)) as Error & { code: string };
    assert.equal(err.name, 'AbortError');
    assert.equal(err.code, 'ABORT_ERR');
    const pre = AbortSignal.abort();
    await assert.rejects(ch.request({ op: 'echo', value: 1 }, { signal: pre }), { code: 'ABORT_ERR' });
    assert.equal(ch.pendingRequests, 0);
    await ch.close();
  });
});

describe('one-way values and pushes', () => {
  test('sent values arrive in order at onMessage', async () => {
    received.length = 0;
    const ch = await connectMessages(uri);
    for (let i = 0; i < 5000; i++) ch.send({ seq: i, name: 'tick', vals: [i, i + 1] });
    await ch.ready();
    await eventually(async () => received.length === 5000);
    for (const [i, v] of received.entries()) assert.deepEqual(v, { seq: i, name: 'tick', vals: [i, i + 1] });
    await ch.close();
  });

  test('values the server pushes are read with for await', async () => {
    const ch = await connectMessages(uri);
    assert.equal(await ch.request({ op: 'push', n: 100 }), 'pushed');
    const got: unknown[] = [];
    for await (const v of ch) {
      got.push(v);
      if (got.length === 100) break;
    }
    assert.deepEqual(
      got,
      Array.from({ length: 100 }, (_, i) => ({ i })),
    );
    assert.equal(ch.state, 'closed');
  });

  test('batches(): every pushed value in order, several per array, reading on past highWaterMark', async () => {
    const ch = await connectMessages(uri, { highWaterMark: 64 });
    const n = 3000;
    // The reply comes after the values: it is read only once the batches make room.
    const pushed = ch.request({ op: 'push', n });
    const got: unknown[] = [];
    let arrays = 0;
    for await (const batch of ch.batches()) {
      assert.ok(Array.isArray(batch) && batch.length > 0 && batch.length <= 64);
      arrays++;
      got.push(...batch);
      if (got.length === n) break;
    }
    assert.deepEqual(
      got,
      Array.from({ length: n }, (_, i) => ({ i })),
    );
    assert.ok(arrays < n, `${arrays} arrays for ${n} values`);
    assert.equal(ch.state, 'closed', 'leaving the loop closes the channel');
    // Its reply was read with the last values, or was still in the fifo at the close.
    const outcome = await pushed.then(
      (v) => v,
      (e: FerryError) => e.code,
    );
    assert.ok(outcome === 'pushed' || outcome === 'ERR_FERRY_CHANNEL_CLOSED', String(outcome));
  });

  test('values larger than the fifo arrive whole', async () => {
    received.length = 0;
    const ch = await connectMessages(uri, { txFifoSize: 64 * 1024, rxFifoSize: 64 * 1024 });
    const big = Buffer.alloc(1_000_003, 7);
    big[999_999] = 1;
    const v = { big, tail: 'end' };
    ch.send(v);
    assert.deepEqual(await ch.request({ op: 'echo', value: v }), v);
    await eventually(async () => received.length === 1);
    assert.deepEqual(received[0], v);
    await ch.close();
  });

  test('a value above maxMessageBytes is refused with EMSGSIZE and nothing is sent', async () => {
    const ch = await connectMessages(uri, { maxMessageBytes: 1024 });
    assert.throws(() => ch.send(Buffer.alloc(2000)), { code: 'EMSGSIZE' });
    await assert.rejects(ch.request({ op: 'echo', value: Buffer.alloc(2000) }), { code: 'EMSGSIZE' });
    assert.deepEqual(await ch.request({ op: 'echo', value: { after: true } }), { after: true });
    await ch.close();
  });

  test('records refused in the middle of a turn (too large, a throwing getter) send nothing, and the stream stays in step', async () => {
    received.length = 0;
    // Small enough that the refused records fit the reservation whatever the ring's position.
    const ch = await connectMessages(uri, { maxMessageBytes: 64 });
    // The server's HELLO is read by the time its reply is: records go as shape records from here.
    assert.equal(await ch.request({ op: 'echo', value: 1 }), 1);
    // One turn: the first send opens it, later ones take the writer's fast path.
    const rec = (i: number, name = 'sensor-7') => ({ id: i, name, vals: [1, 2, 3] });
    assert.equal(ch.send(rec(0)), true);
    assert.equal(ch.send(rec(1)), true);
    const boom = {
      id: 9,
      get name(): string {
        throw new Error('getter says no');
      },
      vals: [1],
    };
    assert.throws(() => ch.send(boom), /getter says no/);
    assert.equal(ch.send(rec(2)), true);
    assert.throws(() => ch.send(rec(2, 'x'.repeat(100))), { code: 'EMSGSIZE' });
    // A shape first seen in a refused record: its definition was never sent.
    assert.throws(() => ch.send({ fresh: 1, big: 'y'.repeat(100) }), { code: 'EMSGSIZE' });
    for (let i = 3; i < 50; i++) assert.equal(ch.send(rec(i)), true);
    ch.send({ fresh: 2, big: 'small' });
    await eventually(async () => received.length >= 51 || ch.state === 'closed');
    const want = [rec(0), rec(1), rec(2)];
    for (let i = 3; i < 50; i++) want.push(rec(i));
    assert.deepEqual(received, [...want, { fresh: 2, big: 'small' }]);
    await ch.close();
  });
});

describe('closing', () => {
  test('send and request after close fail with ERR_FERRY_CHANNEL_CLOSED', async () => {
    const ch = await connectMessages(uri);
    await ch.close();
    assert.throws(() => ch.send(1), { code: 'ERR_FERRY_CHANNEL_CLOSED' });
    await assert.rejects(ch.request(1), { code: 'ERR_FERRY_CHANNEL_CLOSED' });
  });

  test('requests pending at close reject with ERR_FERRY_CHANNEL_CLOSED', async () => {
    const ch = await connectMessages(uri);
    const p = ch.request({ op: 'slow', ms: 200 });
    const closed = ch.close();
    await assert.rejects(p, { code: 'ERR_FERRY_CHANNEL_CLOSED' });
    await closed;
  });

  test('the server closing a channel ends the client iterator and rejects its requests', async () => {
    let serverSide: MessageChannel | undefined;
    server.once('channel', (c: MessageChannel) => {
      serverSide = c;
    });
    const ch = await connectMessages(uri);
    await eventually(async () => serverSide !== undefined);
    const p = ch.request({ op: 'slow', ms: 500 });
    await serverSide?.close();
    await assert.rejects(p, { code: 'ECONNRESET' });
    const it = ch[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { done: true, value: undefined });
    await eventually(async () => ch.state === 'closed');
  });
});

describe('loans', () => {
  async function loanServer() {
    const got: unknown[] = [];
    const srv = createMessageServer({ onMessage: (v) => got.push(v) }).listen('tcp://127.0.0.1:0');
    await srv.ready();
    return { srv, got };
  }

  test('a loan is filled in place, committed with metadata, and read in place by the receiver', async () => {
    const { srv, got } = await loanServer();
    const ch = await connectMessages(srv.uri ?? '');
    const loan = ch.loan(100_000);
    assert.equal(loan.zeroCopy, true);
    assert.equal(loan.bytes.byteOffset % 8, 0, 'the payload is 8-byte aligned');
    for (let i = 0; i < loan.bytes.length; i++) loan.bytes[i] = i & 0xff;
    assert.equal(loan.commit({ name: 'blob', n: 1 }), true);
    await eventually(async () => got.length === 1);
    const r = got[0] as ReceivedLoan;
    assert.ok(r instanceof ReceivedLoan);
    assert.equal(r.zeroCopy, true);
    assert.deepEqual(r.meta, { name: 'blob', n: 1 });
    assert.equal(r.bytes.length, 100_000);
    for (let i = 0; i < 100_000; i += 997) assert.equal(r.bytes[i], i & 0xff);
    // Values sent after the loan arrive while it is still held.
    ch.send({ after: 1 });
    await eventually(async () => got.length === 2);
    assert.deepEqual(got[1], { after: 1 });
    r.release();
    await ch.close();
    await srv.close();
  });

  test('misuse fails loudly with ERR_FERRY_LOAN_STATE', async () => {
    const { srv, got } = await loanServer();
    const ch = await connectMessages(srv.uri ?? '');
    const loan = ch.loan(16);
    assert.throws(() => ch.loan(16), { code: 'ERR_FERRY_LOAN_STATE' });
    loan.commit(undefined, 8);
    assert.throws(() => loan.bytes, { code: 'ERR_FERRY_LOAN_STATE' });
    assert.throws(() => loan.commit(), { code: 'ERR_FERRY_LOAN_STATE' });
    assert.throws(() => loan.abort(), { code: 'ERR_FERRY_LOAN_STATE' });
    const aborted = ch.loan(32);
    aborted.abort();
    assert.throws(() => aborted.bytes, { code: 'ERR_FERRY_LOAN_STATE' });
    assert.throws(() => ch.loan(1.5), { code: 'ERR_OUT_OF_RANGE' });
    await eventually(async () => got.length === 1);
    const r = got[0] as ReceivedLoan;
    assert.equal(r.byteLength, 8);
    assert.equal(r.meta, undefined);
    r.release();
    assert.throws(() => r.bytes, { code: 'ERR_FERRY_LOAN_STATE' });
    assert.throws(() => r.release(), { code: 'ERR_FERRY_LOAN_STATE' });
    assert.throws(() => ch.loan(64 * 1024 * 1024 + 1), { code: 'EMSGSIZE' });
    await ch.close();
    await srv.close();
  });

  test('values sent while a loan is open follow it; an aborted loan sends nothing', async () => {
    const { srv, got } = await loanServer();
    const ch = await connectMessages(srv.uri ?? '');
    const a = ch.loan(10);
    a.abort();
    const loan = ch.loan(4);
    assert.equal(ch.send('during'), false, 'queued behind the open loan');
    loan.bytes.set([1, 2, 3, 4]);
    loan.commit('first');
    ch.send('after');
    await eventually(async () => got.length === 3);
    assert.equal((got[0] as ReceivedLoan).meta, 'first');
    assert.deepEqual([...(got[0] as ReceivedLoan).bytes], [1, 2, 3, 4]);
    assert.deepEqual(got.slice(1), ['during', 'after']);
    (got[0] as ReceivedLoan).release();
    await ch.close();
    await srv.close();
  });

  test('loans wrap a small fifo many times (PAD at the ring end) and loans larger than it are copied', async () => {
    const seen: { meta: unknown; ok: boolean; zeroCopy: boolean }[] = [];
    const srv = createMessageServer({
      onMessage: (v) => {
        const r = v as ReceivedLoan;
        const first = r.bytes[0];
        const ok = r.bytes.every((b) => b === first) && first === ((r.meta as number) & 0xff);
        seen.push({ meta: r.meta, ok, zeroCopy: r.zeroCopy });
        // Released a turn later: the reader goes on meanwhile (frames after a held loan are read).
        setImmediate(() => r.release());
      },
    }).listen('tcp://127.0.0.1:0');
    await srv.ready();
    const ch = await connectMessages(srv.uri ?? '', { txFifoSize: 16 * 1024, rxFifoSize: 16 * 1024 });
    let zero = 0;
    for (let i = 0; i < 300; i++) {
      const loan = ch.loan(3000 + (i % 7));
      if (loan.zeroCopy) zero++;
      loan.bytes.fill(i & 0xff);
      if (!loan.commit(i)) await ch.ready();
    }
    assert.ok(zero > 0, 'some loans were in place');
    const big = ch.loan(100_000);
    assert.equal(big.zeroCopy, false);
    big.bytes.fill(300 & 0xff);
    big.commit(300);
    await eventually(async () => seen.length === 301, 20_000);
    assert.deepEqual(
      seen.map((x) => x.meta),
      Array.from({ length: 301 }, (_, i) => i),
    );
    assert.ok(seen.every((x) => x.ok));
    assert.equal(seen[300]?.zeroCopy, false);
    await ch.close();
    await srv.close();
  });
});
