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
