/** The SDK's node:net-shaped surface, used in this process against a real ferryd. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let server: Server;
let uri = '';

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  server = createServer((s) => {
    // The timed-out connect below is reset once ferryd resumes: its accepted end sees ECONNRESET.
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen('tcp://127.0.0.1:0', resolve));
  uri = server.address()?.uri ?? '';
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await d.stop();
});

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
}

test('a socket supports async iteration, counters, addresses and the no-op tuning calls', async () => {
  const s = connect(uri);
  assert.equal(s.connecting, true);
  await connected(s);
  assert.equal(s.setNoDelay(true), s);
  assert.equal(s.setKeepAlive(true, 1000), s);
  assert.equal(s.remotePort, server.address()?.port);
  assert.equal(s.remoteAddress, '127.0.0.1');
  assert.equal(typeof s.address().port, 'number');
  assert.equal(s.transport, 'ct');
  s.end(Buffer.from('iterate me'));
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  assert.equal(Buffer.concat(chunks).toString(), 'iterate me');
  assert.equal(s.bytesWritten, 10);
  assert.equal(s.bytesRead, 10);
});

test('writes made while connecting are delivered once connected, in order', async () => {
  const s = connect({ uri });
  s.write('a');
  s.write('b');
  s.end('c');
  let got = '';
  s.setEncoding('utf8');
  for await (const c of s) got += c;
  assert.equal(got, 'abc');
});

test('listen on a taken endpoint fails with EADDRINUSE', async () => {
  const other = createServer();
  const err = await new Promise<Error & { code?: string }>((resolve) => {
    other.once('error', resolve);
    other.listen(uri);
  });
  assert.equal(err.code, 'EADDRINUSE');
});

test('a connect that ferryd does not answer in time fails with ETIMEDOUT', async () => {
  // Make sure this process is attached first, then freeze ferryd so the connect gets no reply.
  const warm = connect(uri);
  await connected(warm);
  warm.destroy();
  d.proc.kill('SIGSTOP');
  try {
    // Its own fifo size: a pool's pairs (default sizes) cannot serve it, so it must ask ferryd.
    const s = connect({ uri, connectTimeout: 300, rxFifoSize: 8192 });
    const err = await new Promise<Error & { code?: string }>((resolve) => s.once('error', resolve));
    assert.equal(err.code, 'ETIMEDOUT');
  } finally {
    d.proc.kill('SIGCONT');
  }
});

test('with no ferryd at the socket path, connect fails with ERR_FERRY_DAEMON_UNREACHABLE', async () => {
  const s = connect({ uri, socket: `${d.socket}.missing` });
  const err = await new Promise<Error & { code?: string }>((resolve) => s.once('error', resolve));
  assert.equal(err.code, 'ERR_FERRY_DAEMON_UNREACHABLE');
});
