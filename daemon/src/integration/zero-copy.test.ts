/**
 * Zero-copy access (Socket#onView, Socket#reserve): read views valid until released, write
 * reservations filled in place and committed, and misuse failing loudly. In this process, against
 * a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
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

function connected(s: Socket): Promise<void> {
  return new Promise((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
}

describe('zero-copy reads (onView)', () => {
  test('3 MiB through a 64 KiB fifo: views released now, later and in part give every byte in order', async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 321);
    const got: Buffer[] = [];
    let views = 0;
    let wrapped = 0;
    let dataEvents = 0;
    const s = connect({ uri: echoUri, rxFifoSize: 64 * 1024 });
    s.onView((view) => {
      views++;
      assert.ok(view.length > 0);
      if (view.chunks.length === 2) wrapped++;
      const mode = views % 3;
      // Release all now, all a turn later, or half now (the rest comes again with newer bytes).
      const n = mode === 2 && view.length > 1 ? view.length >> 1 : view.length;
      got.push(view.toBuffer().subarray(0, n));
      if (mode === 1) setImmediate(() => view.release(n));
      else view.release(n);
    });
    s.on('data', () => dataEvents++);
    const ended = once(s, 'end');
    const closed = once(s, 'close');
    s.end(payload);
    await ended;
    await closed;
    const all = Buffer.concat(got);
    assert.equal(all.length, payload.length);
    assert.equal(sha(all), sha(payload));
    assert.equal(s.bytesRead, payload.length);
    assert.equal(dataEvents, 0);
    assert.ok(wrapped > 0, 'some views wrapped around the fifo end (two chunks)');
  });

  test('misuse fails loudly: a released view, a second release, an oversized release, a late onView', async () => {
    const s = connect({ uri: echoUri });
    await connected(s);
    const seen = new Promise<void>((resolve) => {
      s.onView((view) => {
        const n = view.length;
        assert.throws(() => view.release(n + 1), { code: 'ERR_OUT_OF_RANGE' });
        assert.throws(() => view.release(-1), { code: 'ERR_OUT_OF_RANGE' });
        view.release();
        assert.equal(view.released, true);
        assert.throws(() => view.chunks, { code: 'ERR_FERRY_VIEW_RELEASED' });
        assert.throws(() => view.length, { code: 'ERR_FERRY_VIEW_RELEASED' });
        assert.throws(() => view.toBuffer(), { code: 'ERR_FERRY_VIEW_RELEASED' });
        assert.throws(() => view.release(), { code: 'ERR_FERRY_VIEW_RELEASED' });
        resolve();
      });
    });
    assert.throws(() => s.onView(() => {}), { code: 'ERR_FERRY_SESSION_STATE' });
    s.write('hello');
    await seen;
    s.destroy();
    // 'data' already flowing: onView would reorder bytes, so it is refused.
    const t = connect({ uri: echoUri });
    await connected(t);
    t.write('x');
    await once(t, 'data');
    assert.throws(() => t.onView(() => {}), { code: 'ERR_FERRY_SESSION_STATE' });
    assert.throws(() => t.onView('no' as never), { code: 'ERR_INVALID_ARG_TYPE' });
    t.destroy();
  });
});

describe('zero-copy writes (reserve)', () => {
  test('2 MiB written in place through a 16 KiB fifo, waiting for drain when full, echoed intact', async () => {
    const payload = randomBytes(2 * 1024 * 1024 + 77);
    const s = connect({ uri: echoUri, txFifoSize: 16 * 1024 });
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    const ended = once(s, 'end');
    await connected(s);
    let off = 0;
    let waits = 0;
    while (off < payload.length) {
      const r = s.reserve(Math.min(5000, payload.length - off));
      if (r === null) {
        waits++;
        await once(s, 'drain');
        continue;
      }
      const n = r.bytes.length;
      assert.ok(n > 0 && n <= 5000);
      r.bytes.set(payload.subarray(off, off + n));
      r.commit();
      off += n;
    }
    assert.ok(waits > 0, 'the fifo filled at least once');
    assert.equal(s.bytesWritten, payload.length);
    s.end();
    await ended;
    assert.equal(sha(Buffer.concat(got)), sha(payload));
    s.destroy();
  });

  test('commits made while the peer sleeps wake it: one message at a time, and several in one tick', async () => {
    const s = connect({ uri: echoUri });
    s.on('error', () => {});
    await connected(s);
    let got = Buffer.alloc(0);
    s.on('data', (b: Buffer) => {
      got = Buffer.concat([got, b]);
    });
    let sent = Buffer.alloc(0);
    for (let round = 0; round < 20; round++) {
      // Idle long enough for an adaptive notifier on both ends to stop polling and sleep: only a
      // ring (sent at the end of the tick of the commits) wakes the echo server, and then us.
      await new Promise((resolve) => setTimeout(resolve, 5));
      const pieces = round % 2 === 0 ? 1 : 3;
      for (let i = 0; i < pieces; i++) {
        const msg = Buffer.from(`round ${round} piece ${i};`);
        const r = s.reserve(msg.length);
        assert.ok(r !== null && r.bytes.length === msg.length);
        r.bytes.set(msg);
        r.commit();
        sent = Buffer.concat([sent, msg]);
      }
      while (got.length < sent.length) await once(s, 'data');
      assert.equal(got.toString(), sent.toString());
    }
    s.destroy();
  });

  test('misuse fails loudly and publishes nothing: commit twice, commit too much, a write in between, queued writes', async () => {
    const s = connect({ uri: echoUri });
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    const ended = once(s, 'end');
    await connected(s);
    const r = s.reserve(8);
    assert.ok(r);
    r.bytes.set(Buffer.from('AAAA'));
    assert.throws(() => r.commit(9), { code: 'ERR_OUT_OF_RANGE' });
    r.commit(4);
    assert.throws(() => r.commit(0), { code: 'ERR_FERRY_VIEW_RELEASED' });
    assert.throws(() => r.bytes, { code: 'ERR_FERRY_VIEW_RELEASED' });
    // A write overtakes a reservation: its commit must fail, or bytes would land out of order.
    const late = s.reserve(4);
    assert.ok(late);
    late.bytes.set(Buffer.from('XXXX'));
    s.write('BB');
    assert.throws(() => late.commit(4), { code: 'ERR_FERRY_VIEW_RELEASED' });
    // So does a newer reservation.
    const first = s.reserve(4);
    const second = s.reserve(4);
    assert.ok(first && second);
    assert.throws(() => first.commit(1), { code: 'ERR_FERRY_VIEW_RELEASED' });
    second.bytes.set(Buffer.from('CC'));
    second.commit(2);
    assert.throws(() => s.reserve(0), { code: 'ERR_OUT_OF_RANGE' });
    s.end();
    assert.throws(() => s.reserve(4), { code: 'ERR_FERRY_SOCKET_CLOSED' });
    await ended;
    assert.equal(Buffer.concat(got).toString(), 'AAAABBCC');
    s.destroy();
  });

  test('reserve while write() has bytes queued is refused (ERR_FERRY_SESSION_STATE)', async () => {
    // A server that never reads: the 4 KiB fifo fills and write() queues the rest.
    const held: Socket[] = [];
    const sink = createServer((c) => {
      c.on('error', () => {});
      c.pause();
      held.push(c);
    });
    await new Promise<void>((resolve) => sink.listen('tcp://127.0.0.1:0', resolve));
    const s = connect({ uri: sink.address()?.uri ?? '', txFifoSize: 4096 });
    s.on('error', () => {});
    await connected(s);
    s.write(Buffer.alloc(64 * 1024));
    assert.ok(s.writableLength > 0);
    assert.throws(() => s.reserve(16), { code: 'ERR_FERRY_SESSION_STATE' });
    s.destroy();
    for (const c of held) c.destroy();
    await new Promise<void>((resolve) => sink.close(() => resolve()));
  });
});
