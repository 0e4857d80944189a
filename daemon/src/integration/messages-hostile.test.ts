/**
 * Message channels against hostile peers: a raw SDK socket speaks to a message server (and a raw
 * server to a message client) with frames that lie about their length, stop half-way, answer
 * requests never sent, or are garbage. Each fails only its channel, with a clear code; the server
 * goes on serving others and nothing crashes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import {
  encodeMessageHeader,
  type FerryError,
  frameBytes,
  type MessageKind,
  MSG_KIND,
  ValueEncoder,
  writeMessageHeader,
} from '@ferry/sdk/internal';
import {
  connectMessages,
  createMessageServer,
  type MessageChannel,
  type MessageServer,
} from '@ferry/sdk/messages';
import fc from 'fast-check';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let server: MessageServer;
let uri = '';
const closes: (FerryError | undefined)[] = [];

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  server = createMessageServer({
    onRequest: (v) => v,
    frameTimeoutMs: 300,
    maxMessageBytes: 1024 * 1024,
    onChannel: (ch) => ch.once('close', (err?: FerryError) => closes.push(err)),
  }).listen('tcp://127.0.0.1:0');
  await server.ready();
  uri = server.uri ?? '';
});

after(async () => {
  await server.close();
  await d.stop();
});

/** Frames as a peer writes them, with one encoder (record state) per connection. */
class FrameMaker {
  #enc = new ValueEncoder();

  frame(kind: MessageKind, id: number, value?: unknown): Buffer {
    const body =
      value === undefined ? new Uint8Array(0) : Uint8Array.from(this.#enc.encode(value, 0, null, 0));
    const out = Buffer.alloc(frameBytes(body.length));
    writeMessageHeader(new DataView(out.buffer, out.byteOffset, out.length), 0, kind, body.length, id, 0);
    out.set(body, 16);
    return out;
  }

  hello(extra: Record<string, unknown> = {}): Buffer {
    return this.frame(MSG_KIND.HELLO, 0, { v: 1, maxBytes: 1 << 20, ...extra });
  }
}

/** A frame with a body given as bytes. */
function rawFrame(kind: MessageKind, id: number, body: number[]): Buffer {
  const out = Buffer.alloc(frameBytes(body.length));
  writeMessageHeader(new DataView(out.buffer, out.byteOffset, out.length), 0, kind, body.length, id, 0);
  out.set(body, 16);
  return out;
}

/** Shape records (proto/shape-codec.ts) by hand: shape 0 is { a }, then a record of it holding 1. */
const SHAPE_A = [0xc1, 0x80, 0x00, 0x01, 0x01, 0x61];
const RECORD_A1 = [0xc1, 0x00, 0x00, 0x01];

function header(kind: MessageKind, bodyBytes: number, id = 0, aux = 0): Buffer {
  return Buffer.from(encodeMessageHeader(kind, bodyBytes, id, aux));
}

async function rawToServer(): Promise<Socket> {
  const s = connect(uri);
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  return s;
}

/** Sends `bytes` to the server on a fresh raw session; resolves with the code its channel failed with. */
async function serverFailsWith(bytes: Buffer[], end = false): Promise<string | undefined> {
  const before = closes.length;
  const s = await rawToServer();
  for (const b of bytes) s.write(b);
  if (end) s.end();
  await eventually(async () => closes.length > before, 10_000);
  s.destroy();
  return closes[before]?.code;
}

/** A message server still answers a well-behaved client. */
async function serverStillServes(): Promise<void> {
  const ch = await connectMessages(uri);
  assert.deepEqual(await ch.request({ still: 'fine' }), { still: 'fine' });
  await ch.close();
}

describe('hostile clients against a message server', () => {
  test('a length that lies above maxMessageBytes fails the channel with EMSGSIZE', async () => {
    const f = new FrameMaker();
    assert.equal(await serverFailsWith([f.hello(), header(MSG_KIND.MESSAGE, 0xffff_fff0)]), 'EMSGSIZE');
    await serverStillServes();
  });

  test('a frame cut short by the peer’s end fails with ERR_FERRY_MSG_INCOMPLETE', async () => {
    const f = new FrameMaker();
    const full = f.frame(MSG_KIND.MESSAGE, 0, { payload: 'x'.repeat(100) });
    const code = await serverFailsWith([f.hello(), full.subarray(0, 40)], true);
    assert.equal(code, 'ERR_FERRY_MSG_INCOMPLETE');
  });

  test('a frame that never completes fails after frameTimeoutMs with ERR_FERRY_MSG_INCOMPLETE', async () => {
    const f = new FrameMaker();
    const code = await serverFailsWith([f.hello(), header(MSG_KIND.MESSAGE, 500), Buffer.alloc(100)]);
    assert.equal(code, 'ERR_FERRY_MSG_INCOMPLETE');
  });

  test('a frame longer than the fifo that stops half-way fails the same way', async () => {
    const f = new FrameMaker();
    const code = await serverFailsWith([f.hello(), header(MSG_KIND.MESSAGE, 900_000), Buffer.alloc(65_536)]);
    assert.equal(code, 'ERR_FERRY_MSG_INCOMPLETE');
  });

  test('no HELLO first, unknown kinds, reserved bits and undecodable bodies are ERR_FERRY_MSG_MALFORMED', async () => {
    const f = new FrameMaker();
    assert.equal(await serverFailsWith([f.frame(MSG_KIND.MESSAGE, 0, 1)]), 'ERR_FERRY_MSG_MALFORMED');
    const g = new FrameMaker();
    const unknown = header(MSG_KIND.MESSAGE, 8);
    unknown[4] = 42;
    assert.equal(await serverFailsWith([g.hello(), unknown, Buffer.alloc(8)]), 'ERR_FERRY_MSG_MALFORMED');
    const h = new FrameMaker();
    const garbage = Buffer.concat([
      header(MSG_KIND.MESSAGE, 8),
      Buffer.from([0xc1, 0xc1, 0xc1, 0xc1, 0, 0, 0, 0]),
    ]);
    assert.equal(await serverFailsWith([h.hello(), garbage]), 'ERR_FERRY_MSG_MALFORMED');
    const k = new FrameMaker();
    const trailing = Buffer.concat([
      header(MSG_KIND.MESSAGE, 2),
      Buffer.from([0x01, 0x02, 0, 0, 0, 0, 0, 0]),
    ]);
    assert.equal(await serverFailsWith([k.hello(), trailing]), 'ERR_FERRY_MSG_MALFORMED');
    await serverStillServes();
  });

  test('shape records: one by hand is answered in kind; undefined shapes and lying counts are ERR_FERRY_MSG_MALFORMED', async () => {
    const f = new FrameMaker();
    const closed = closes.length;
    const s = await rawToServer();
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    // Our HELLO says we read shape records: the server's reply to a record of shape { a } is one.
    s.write(
      Buffer.concat([f.hello({ shapes: 1 }), rawFrame(MSG_KIND.REQUEST, 1, [...SHAPE_A, ...RECORD_A1])]),
    );
    let replyBody: number[] | null = null;
    await eventually(async () => {
      const all = Buffer.concat(chunks);
      let at = 0;
      while (at + 16 <= all.length) {
        const body = all.readUInt32LE(at);
        const end = at + frameBytes(body);
        if (end > all.length) break;
        if (all[at + 4] === MSG_KIND.REPLY) replyBody = [...all.subarray(at + 16, at + 16 + body)];
        at = end;
      }
      return replyBody !== null;
    });
    assert.deepEqual(replyBody, [...SHAPE_A, ...RECORD_A1]);
    s.destroy();
    // That channel's close first, so the next ones are told apart.
    await eventually(async () => closes.length > closed);
    const g = new FrameMaker();
    const undefinedShape = rawFrame(MSG_KIND.MESSAGE, 0, [0xc1, 0x00, 0x07, 0x01]);
    assert.equal(await serverFailsWith([g.hello(), undefinedShape]), 'ERR_FERRY_MSG_MALFORMED');
    const h = new FrameMaker();
    const lyingCount = rawFrame(MSG_KIND.MESSAGE, 0, [
      ...SHAPE_A,
      0xc1,
      0,
      0,
      0xdd,
      0xff,
      0xff,
      0xff,
      0xff,
      1,
    ]);
    assert.equal(await serverFailsWith([h.hello(), lyingCount]), 'ERR_FERRY_MSG_MALFORMED');
    await serverStillServes();
  });

  test('a request id reused while in flight is ERR_FERRY_MSG_MALFORMED', async () => {
    const slow = createMessageServer({
      onRequest: () => new Promise(() => {}),
      onChannel: (ch) => ch.once('close', (err?: FerryError) => closes.push(err)),
    }).listen('tcp://127.0.0.1:0');
    await slow.ready();
    const before = closes.length;
    const s = connect(slow.uri ?? '');
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    const f = new FrameMaker();
    s.write(Buffer.concat([f.hello(), f.frame(MSG_KIND.REQUEST, 5, 'a'), f.frame(MSG_KIND.REQUEST, 5, 'b')]));
    await eventually(async () => closes.length > before);
    assert.equal(closes[before]?.code, 'ERR_FERRY_MSG_MALFORMED');
    s.destroy();
    await slow.close();
  });

  test('a value with a __proto__ key pollutes nothing', async () => {
    const f = new FrameMaker();
    const s = await rawToServer();
    const reply = new Promise<Buffer>((resolve) => s.once('data', resolve));
    // A map written by hand: { "__proto__": { "polluted": true } } as a request.
    const body = Buffer.from([
      0x81,
      0xa9,
      ...Buffer.from('__proto__'),
      0x81,
      0xa8,
      ...Buffer.from('polluted'),
      0xc3,
    ]);
    const req = Buffer.alloc(frameBytes(body.length));
    writeMessageHeader(
      new DataView(req.buffer, req.byteOffset, req.length),
      0,
      MSG_KIND.REQUEST,
      body.length,
      1,
      0,
    );
    body.copy(req, 16);
    s.write(Buffer.concat([f.hello(), req]));
    await reply;
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    s.destroy();
  });

  test('random bytes after HELLO: the channel fails with a code or goes on, ferryd and the server live', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 600 }), async (junk) => {
        const f = new FrameMaker();
        const before = closes.length;
        const s = await rawToServer();
        s.write(Buffer.concat([f.hello(), Buffer.from(junk)]));
        s.end();
        await eventually(async () => closes.length > before, 10_000);
        // The close seen may be an earlier test's channel, ended cleanly (null) by its client's
        // destroy() (a FIN, as net.Socket's): only an error must carry a code.
        const err = closes[before];
        if (err) assert.match(String(err.code), /^(E[A-Z]+|ERR_FERRY_[A-Z_]+)$/);
        s.destroy();
      }),
      { numRuns: 40 },
    );
    await serverStillServes();
  });
});

describe('hostile servers against a message client', () => {
  let raw: Server;
  let rawUri = '';
  let script: (s: Socket) => void = () => {};

  before(async () => {
    raw = createServer((s) => {
      s.on('error', () => {});
      // Read what the client sends (its HELLO), or its FIN would never surface as 'end'.
      s.resume();
      script(s);
    });
    await new Promise<void>((resolve) => raw.listen('tcp://127.0.0.1:0', resolve));
    rawUri = raw.address()?.uri ?? '';
  });

  after(async () => {
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  });

  async function clientFails(
    reply: (f: FrameMaker) => Buffer[],
  ): Promise<{ ch: MessageChannel; code?: string }> {
    script = (s) => {
      const f = new FrameMaker();
      for (const b of reply(f)) s.write(b);
    };
    const ch = await connectMessages(rawUri, { frameTimeoutMs: 300 });
    const pending = ch.request('anything').catch((e: FerryError) => e);
    const err = (await pending) as FerryError;
    return { ch, code: err.code };
  }

  test('a reply to a request id never sent fails the client with ERR_FERRY_MSG_MALFORMED', async () => {
    const r = await clientFails((f) => [f.hello(), f.frame(MSG_KIND.REPLY, 999, 'surprise')]);
    assert.equal(r.code, 'ERR_FERRY_MSG_MALFORMED');
    await eventually(async () => r.ch.state === 'closed');
    assert.equal(r.ch.error?.code, 'ERR_FERRY_MSG_MALFORMED');
    assert.equal(r.ch.pendingRequests, 0);
  });

  test('a server that starts a reply and never finishes it: ERR_FERRY_MSG_INCOMPLETE', async () => {
    const r = await clientFails((f) => [f.hello(), header(MSG_KIND.REPLY, 64, 1), Buffer.alloc(8)]);
    assert.equal(r.code, 'ERR_FERRY_MSG_INCOMPLETE');
  });

  test('a server speaking another protocol version: ERR_FERRY_PROTO_VERSION', async () => {
    const r = await clientFails((f) => [f.frame(MSG_KIND.HELLO, 0, { v: 99 })]);
    assert.equal(r.code, 'ERR_FERRY_PROTO_VERSION');
  });

  test('a server that sends nothing and closes: requests reject with ECONNRESET', async () => {
    script = (s) => s.end();
    const ch = await connectMessages(rawUri);
    await assert.rejects(ch.request('x'), { code: 'ECONNRESET' });
    await eventually(async () => ch.state === 'closed');
  });
});
