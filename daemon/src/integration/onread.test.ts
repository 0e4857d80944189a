/**
 * `onread` (net.Socket's shape): bytes copied from the fifo into the caller's buffer, no 'data'
 * events, pause by returning false. In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type FerryError, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let echo: Server;
let echoUri = '';

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  echo = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => echo.listen('tcp://127.0.0.1:0', resolve));
  echoUri = echo.address()?.uri ?? '';
});

after(async () => {
  await new Promise<void>((resolve) => echo.close(() => resolve()));
  await d.stop();
});

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function closed(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('close', () => resolve());
    s.once('error', reject);
  });
}

/** Sends `payload` and FIN, then waits for the echo's end and the close (listeners set first:
 *  'close' follows 'end' within the same tick). */
async function endAndDrain(s: Socket, payload: Uint8Array): Promise<void> {
  const ended = new Promise<void>((resolve) => s.once('end', () => resolve()));
  const gone = closed(s);
  s.end(payload);
  await ended;
  await gone;
}

describe('onread', () => {
  test('a reused 4 KiB buffer: every byte of 3 MiB arrives in order, no data events, end and close come', async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 123);
    const mine = Buffer.alloc(4096);
    const got: Buffer[] = [];
    let calls = 0;
    let dataEvents = 0;
    const s = connect({
      uri: echoUri,
      rxFifoSize: 64 * 1024,
      onread: {
        buffer: mine,
        callback: (n, buf) => {
          calls++;
          assert.equal(buf, mine);
          assert.ok(n > 0 && n <= mine.length);
          // The buffer is reused: keep a copy.
          got.push(Buffer.from(buf.subarray(0, n)));
          return true;
        },
      },
    });
    s.on('data', () => dataEvents++);
    await endAndDrain(s, payload);
    const all = Buffer.concat(got);
    assert.equal(all.length, payload.length);
    assert.equal(sha(all), sha(payload));
    assert.equal(dataEvents, 0);
    assert.equal(s.bytesRead, payload.length);
    assert.ok(calls >= Math.ceil(payload.length / mine.length), `calls ${calls}`);
  });

  test('a buffer function gives a fresh buffer per read; returning false pauses until resume()', async () => {
    const payload = randomBytes(512 * 1024);
    const got: Uint8Array[] = [];
    let paused = 0;
    let inPause = false;
    let readWhilePaused = false;
    const s: Socket = connect({
      uri: echoUri,
      rxFifoSize: 16 * 1024,
      txFifoSize: 16 * 1024,
      onread: {
        buffer: () => new Uint8Array(1000),
        callback: (n, buf) => {
          if (inPause) readWhilePaused = true;
          got.push(buf.subarray(0, n));
          if (got.length % 50 === 0) {
            paused++;
            inPause = true;
            setTimeout(() => {
              inPause = false;
              s.resume();
            }, 5);
            return false;
          }
          return true;
        },
      },
    });
    await endAndDrain(s, payload);
    const all = Buffer.concat(got);
    assert.equal(sha(all), sha(payload));
    assert.ok(paused > 0);
    assert.equal(readWhilePaused, false, 'a callback ran while the socket was paused');
  });

  test('accepted sockets of a server created with onread read into its buffer', async () => {
    const received: Buffer[] = [];
    let dataEvents = 0;
    const srvBuf = Buffer.alloc(8192);
    let serverSock: Socket | null = null;
    const srv = createServer(
      {
        onread: {
          buffer: srvBuf,
          callback: (n, buf) => {
            received.push(Buffer.from(buf.subarray(0, n)));
            return true;
          },
        },
      },
      (sock) => {
        serverSock = sock;
        sock.on('data', () => dataEvents++);
        sock.on('end', () => sock.end('done'));
      },
    );
    await new Promise<void>((resolve) => srv.listen('tcp://127.0.0.1:0', resolve));
    try {
      const payload = randomBytes(200_000);
      const c = connect(srv.address()?.uri ?? '');
      const reply: Buffer[] = [];
      c.on('data', (b: Buffer) => reply.push(b));
      c.end(payload);
      await closed(c);
      assert.equal(Buffer.concat(reply).toString(), 'done');
      assert.equal(sha(Buffer.concat(received)), sha(payload));
      assert.equal(dataEvents, 0);
      assert.equal((serverSock as Socket | null)?.bytesRead, payload.length);
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()));
    }
  });

  test('bad onread options are refused with ERR_INVALID_ARG_TYPE; a buffer function giving nothing destroys the socket', async () => {
    for (const bad of [{ buffer: 'x', callback: () => true }, { buffer: Buffer.alloc(8) }, null]) {
      assert.throws(
        () => connect({ uri: echoUri, onread: bad as never }),
        (e: FerryError) => e.code === 'ERR_INVALID_ARG_TYPE',
      );
    }
    assert.throws(
      () => createServer({ onread: { buffer: 42 } as never }),
      (e: FerryError) => e.code === 'ERR_INVALID_ARG_TYPE',
    );
    const s = connect({
      uri: echoUri,
      onread: { buffer: () => new Uint8Array(0), callback: () => true },
    });
    s.on('close', () => {});
    // The echo's bytes ask the function for a buffer.
    s.write('x');
    const err = await new Promise<FerryError>((resolve) => s.once('error', resolve));
    assert.equal(err.code, 'ERR_INVALID_ARG_TYPE');
    assert.match(err.message, /non-empty/);
  });
});
