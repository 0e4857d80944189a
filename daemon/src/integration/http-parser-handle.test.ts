/**
 * node:http on SDK sockets (`http.emit('connection', socket)`), through the StreamBase handle its
 * server parser consumes (sdk/src/api/stream-handle.ts): requests reach llhttp from the rx fifo
 * without 'data' events. Checked: the parser does consume the handle; bodies larger than the
 * parser's 64 KiB buffer and than the fifo arrive intact (checksums); pipelined requests are
 * answered in order across node:http's pause/resume of reads; a 'data' listener added later, an
 * upgrade and a malformed request each leave the stream consistent, also when a request and what
 * follows it come in one fifo view larger than the parser's buffer (an upgrade's tail, a pipelined
 * flood paused midway); the same requests over the stream path (no handle) give the same answers;
 * a process under --pending-deprecation or with FERRY_HTTP_HANDLE=0 makes no handle. The same
 * through `listenThroughFerry` (the register hook's path), where node:http gets a net.Socket
 * wrapping the SDK socket: it shows the inner socket's handle until the parser lets go (an
 * upgraded socket is handle-less again).
 * In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import * as http2 from 'node:http2';
import type * as net from 'node:net';
import { after, before, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { innerSocket, listenThroughFerry } from '@ferry/sdk/http';
import { httpInputKind } from '@ferry/sdk/internal';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let ferry: Server;
let uri = '';
/** Accepted sockets, and whether node:http's parser consumed each one's handle. */
const accepted: Socket[] = [];
const consumed: boolean[] = [];
/** Set per test: accepted sockets get no handle (node:http's 'data' path). */
let streamPath = false;
/** Set per test: called with each accepted socket before node:http gets it. */
let onAccept: ((s: Socket) => void) | null = null;
const upgrades: { head: Buffer; socket: Socket }[] = [];

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** GET /N answers N bytes of 'a'; POST answers the body's length and sha256; /slow/N waits N ms. */
function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (req.method === 'POST') {
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      res.end(`${body.length} ${sha(body)}`);
    });
    return;
  }
  if (url.startsWith('/slow/')) {
    setTimeout(() => res.end(url), Number(url.slice(6)));
    return;
  }
  res.end(Buffer.alloc(Number(url.slice(1)) || 0, 0x61));
}

const http = createHttpServer({ keepAliveTimeout: 60_000 }, handler);
http.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => {
  upgrades.push({ head, socket });
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
  if (head.length > 0) socket.write(head);
  socket.on('data', (b: Buffer) => socket.write(b));
  void req;
});

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  ferry = createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    accepted.push(s);
    if (streamPath) s._handle = null;
    onAccept?.(s);
    http.emit('connection', s);
    consumed.push(s._handle?._consumed === true);
  });
  await new Promise<void>((resolve) => ferry.listen('tcp://127.0.0.1:0', resolve));
  uri = ferry.address()?.uri ?? '';
});

after(async () => {
  for (const a of accepted) a.destroy();
  await new Promise<void>((resolve) => ferry.close(() => resolve()));
  await d.stop();
});

/** A client socket and a reader of whole HTTP responses (content-length bodies) off it. */
async function client(to = uri): Promise<{ s: Socket; next: () => Promise<{ head: string; body: Buffer }> }> {
  const s = connect({ uri: to });
  await once(s, 'connect');
  let buf = Buffer.alloc(0);
  let wake: (() => void) | null = null;
  s.on('data', (b: Buffer) => {
    buf = Buffer.concat([buf, b]);
    wake?.();
  });
  const next = async (): Promise<{ head: string; body: Buffer }> => {
    for (;;) {
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = buf.subarray(0, end).toString('latin1');
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (buf.length >= end + 4 + len) {
          const body = Buffer.from(buf.subarray(end + 4, end + 4 + len));
          buf = buf.subarray(end + 4 + len);
          return { head, body };
        }
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = null;
    }
  };
  return { s, next };
}

function post(path: string, body: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`POST ${path} HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n`),
    body,
  ]);
}

async function keepAliveRun(to = uri): Promise<void> {
  const { s, next } = await client(to);
  for (let i = 0; i < 50; i++) {
    s.write(`GET /${i * 37} HTTP/1.1\r\nHost: t\r\n\r\n`);
    const r = await next();
    assert.match(r.head, /^HTTP\/1\.1 200/);
    assert.equal(r.body.length, i * 37);
  }
  // Bodies larger than the parser's 64 KiB buffer and than the 1 MiB fifo, in odd-sized writes.
  for (const size of [1, 70_000, 3 * 1024 * 1024 + 17]) {
    const body = randomBytes(size);
    const msg = post('/p', body);
    for (let off = 0; off < msg.length; off += 100_003) s.write(msg.subarray(off, off + 100_003));
    const r = await next();
    assert.equal(r.body.toString(), `${size} ${sha(body)}`);
  }
  s.end();
  await once(s, 'close');
}

test('node:http consumes the SDK socket’s handle: keep-alive GETs and large POST bodies intact', async () => {
  const before = consumed.length;
  await keepAliveRun();
  if (httpInputKind() === 'handle') assert.deepEqual(consumed.slice(before), [true]);
  else assert.deepEqual(consumed.slice(before), [false]);
});

test('the same requests over the stream path (no handle) give the same answers', async () => {
  streamPath = true;
  try {
    const before = consumed.length;
    await keepAliveRun();
    assert.deepEqual(consumed.slice(before), [false]);
  } finally {
    streamPath = false;
  }
});

test('pipelined requests are answered in order while node:http pauses and resumes reads', async () => {
  const { s, next } = await client();
  // One write: node:http answers one at a time, pausing the socket's reads (readStop) while a
  // response is outstanding and starting them again after it.
  const paths = ['/slow/30', '/5', '/slow/10', '/0', '/slow/1', '/9'];
  s.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: t\r\n\r\n`).join(''));
  for (const p of paths) {
    const r = await next();
    if (p.startsWith('/slow/')) assert.equal(r.body.toString(), p);
    else assert.equal(r.body.length, Number(p.slice(1)));
  }
  s.end();
  await once(s, 'close');
});

test('a data listener added to the socket takes the bytes after node:http lets go of the handle', async () => {
  let seen: Buffer[] = [];
  let server: Socket | null = null;
  onAccept = (a) => {
    server = a;
  };
  try {
    const { s, next } = await client();
    s.write('GET /3 HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await next()).body.length, 3);
    assert.ok(server);
    const srv = server as Socket;
    // node:http unconsumes its parser when a 'data' listener is added; bytes then come as 'data'
    // (node:http keeps its own listener, which parses them too).
    seen = [];
    srv.on('data', (b: Buffer) => seen.push(b));
    s.write('GET /4 HTTP/1.1\r\nHost: t\r\n\r\n');
    assert.equal((await next()).body.length, 4);
    assert.equal(Buffer.concat(seen).toString(), 'GET /4 HTTP/1.1\r\nHost: t\r\n\r\n');
    s.end();
    await once(s, 'close');
  } finally {
    onAccept = null;
  }
});

test('an upgrade gets the bytes after its request as head, and later bytes as data', async () => {
  const before = upgrades.length;
  const s = connect({ uri });
  await once(s, 'connect');
  const got: Buffer[] = [];
  s.on('data', (b: Buffer) => got.push(b));
  s.write('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhead-bytes|');
  const want = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\nhead-bytes|';
  while (Buffer.concat(got).length < want.length) await once(s, 'data');
  // Later: the server has gone back to waiting, and must have asked to be told of new bytes.
  await new Promise((resolve) => setTimeout(resolve, 100));
  s.write('after-upgrade');
  const all = `${want}after-upgrade`;
  while (Buffer.concat(got).length < all.length) await once(s, 'data');
  assert.equal(Buffer.concat(got).toString(), all);
  assert.equal(upgrades.length, before + 1);
  assert.equal(upgrades[before]?.head.toString(), 'head-bytes|');
  s.destroy();
});

test('an upgrade whose tail is larger than the parser buffer loses none of it (one fifo view)', async () => {
  const s = connect({ uri });
  await once(s, 'connect');
  const got: Buffer[] = [];
  let gotBytes = 0;
  s.on('data', (b: Buffer) => {
    got.push(b);
    gotBytes += b.length;
  });
  // One write, so that the server finds request and tail in one view of its rx fifo: the handle is
  // given it in pieces of the parser's 64 KiB buffer, and the upgrade lets go of the parser after
  // the first of them.
  const tail = randomBytes(200_000);
  s.write(
    Buffer.concat([
      Buffer.from('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n'),
      tail,
    ]),
  );
  const head = 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n';
  const want = head.length + tail.length;
  const deadline = Date.now() + 10_000;
  while (gotBytes < want && Date.now() < deadline) {
    await Promise.race([once(s, 'data'), new Promise((resolve) => setTimeout(resolve, 200))]);
  }
  const all = Buffer.concat(got);
  assert.equal(all.length, want, 'echoed bytes');
  assert.equal(sha(all.subarray(head.length)), sha(tail));
  s.destroy();
});

test('pipelined requests in a view larger than the parser buffer, paused midway, are all answered', async () => {
  const { s, next } = await client();
  // The first request is slow: the answers to the rest are queued behind it, node:http pauses the
  // socket once they pass its high-water mark, while later requests of the same view still wait.
  const n = 3000;
  const paths = ['/slow/50', ...Array.from({ length: n }, (_, i) => `/${(i % 7) * 40}`)];
  const msg = paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: t\r\n\r\n`).join('');
  assert.ok(msg.length > 64 * 1024);
  s.write(msg);
  for (const p of paths) {
    const r = await next();
    assert.match(r.head, /^HTTP\/1\.1 200/);
    if (p.startsWith('/slow/')) assert.equal(r.body.toString(), p);
    else assert.equal(r.body.length, Number(p.slice(1)));
  }
  s.end();
  await once(s, 'close');
});

test('a malformed request gets 400 and its socket is destroyed; the server keeps serving', async () => {
  let server: Socket | null = null;
  onAccept = (a) => {
    server = a;
  };
  try {
    const s = connect({ uri });
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    const errors: string[] = [];
    s.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? ''));
    const closed = new Promise((resolve) => s.once('close', resolve));
    s.write('GET / HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n');
    await closed;
    // node:http writes the 400 and destroys the socket with the parse error: a reset follows the
    // response, as a kernel socket closed with unread bytes sends one after what it wrote.
    assert.match(Buffer.concat(got).toString(), /^HTTP\/1\.1 400 Bad Request/);
    assert.ok((server as Socket | null)?.destroyed);
    assert.deepEqual(
      errors.filter((c) => c !== 'ECONNRESET'),
      [],
    );
  } finally {
    onAccept = null;
  }
  const c = await client();
  c.s.write('GET /2 HTTP/1.1\r\nHost: t\r\n\r\n');
  assert.equal((await c.next()).body.length, 2);
  c.s.destroy();
});

test('listenThroughFerry: node:http consumes the wrapped SDK socket’s handle; an upgrade leaves it handle-less', async () => {
  const wrapped: net.Socket[] = [];
  const seenUpgrade: { head: string; handle: unknown }[] = [];
  const server = createHttpServer({ keepAliveTimeout: 60_000 }, handler);
  server.on('connection', (sock: net.Socket) => {
    wrapped.push(sock);
    // After an upgrade node:http no longer listens for errors: a reset by the closing client
    // must not become an uncaught 'error' after the test.
    sock.on('error', () => {});
  });
  const consumedSeen: boolean[] = [];
  server.on('request', (req: IncomingMessage) => {
    const h = (req.socket as unknown as { _handle: { _consumed?: boolean } | null })._handle;
    consumedSeen.push(h?._consumed === true);
  });
  server.on('upgrade', (_req: IncomingMessage, sock: net.Socket, head: Buffer) => {
    seenUpgrade.push({ head: head.toString(), handle: (sock as unknown as { _handle: unknown })._handle });
    sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n');
    sock.on('data', (b: Buffer) => sock.write(b));
  });
  await new Promise<void>((resolve) => listenThroughFerry(server, 'tcp://127.0.0.1:0', {}, resolve));
  const port = (server.address() as net.AddressInfo).port;
  const to = `tcp://127.0.0.1:${port}`;
  try {
    await keepAliveRun(to);
    assert.equal(wrapped.length, 1);
    const h = (wrapped[0] as unknown as { _handle: { _consumed?: boolean } | null })._handle;
    // Closed: the parser let go, and net.Socket's own (null) handle shows again.
    assert.equal(h, null);
    // While it served, node:http's parser consumed the inner socket's handle through the wrapper.
    assert.ok(consumedSeen.length > 0);
    assert.deepEqual(new Set(consumedSeen), new Set([httpInputKind() === 'handle']));
    assert.ok(innerSocket(wrapped[0] as net.Socket));

    const s = connect({ uri: to });
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    s.write('GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nhead|');
    while (!Buffer.concat(got).toString().includes('\r\n\r\n')) await once(s, 'data');
    await new Promise((resolve) => setTimeout(resolve, 100));
    s.write('echoed');
    while (!Buffer.concat(got).toString().endsWith('echoed')) await once(s, 'data');
    assert.deepEqual(seenUpgrade, [{ head: 'head|', handle: null }]);
    s.destroy();
  } finally {
    for (const w of wrapped) w.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

test('no handle for anyone but node:http’s parser: http2 over SDK sockets wraps them as JS streams', async () => {
  const h2 = http2.createServer();
  h2.on('stream', (st, headers) => {
    st.respond({ ':status': 200 });
    st.end(`h2 ${headers[':path']}`);
  });
  const served: Socket[] = [];
  const f = createServer((s) => {
    s.on('error', () => {});
    served.push(s);
    h2.emit('connection', s);
  });
  await new Promise<void>((resolve) => f.listen('tcp://127.0.0.1:0', resolve));
  const to = f.address()?.uri ?? '';
  const plain = connect({ uri: to });
  await once(plain, 'connect');
  // A Socket nobody parses HTTP on shows no handle.
  assert.equal(plain._handle, null);
  plain.destroy();
  const client = http2.connect('http://ferry.invalid', {
    createConnection: () => connect({ uri: to }).on('error', () => {}),
  });
  client.on('error', () => {});
  try {
    for (const path of ['/a', '/b']) {
      const req = client.request({ ':path': path });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        body += d;
      });
      await once(req, 'end');
      assert.equal(body, `h2 ${path}`);
    }
    assert.ok(served.length >= 1);
    for (const s of served) assert.equal(s._handle, null);
  } finally {
    await new Promise<void>((resolve) => client.close(() => resolve()));
    for (const s of served) s.destroy();
    await new Promise<void>((resolve) => f.close(() => resolve()));
  }
});

test('no handle under --pending-deprecation or FERRY_HTTP_HANDLE=0; one otherwise', () => {
  const kind = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    execFileSync(
      process.execPath,
      [
        ...args,
        '--input-type=module',
        '-e',
        "import('@ferry/sdk/internal').then((m) => console.log(m.httpInputKind()))",
      ],
      { env: { ...process.env, ...env, NODE_OPTIONS: '' }, encoding: 'utf8' },
    ).trim();
  assert.equal(kind(['--pending-deprecation']), 'stream');
  assert.equal(kind([], { FERRY_HTTP_HANDLE: '0' }), 'stream');
  assert.equal(kind([]), 'handle');
});
