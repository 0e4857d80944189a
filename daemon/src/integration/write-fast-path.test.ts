/**
 * Socket#write's fast path: which writes skip Writable (a small Buffer, Uint8Array or string on an
 * idle socket) and which go through it (corked, queued, an encoding argument on a Buffer, large or
 * empty chunks, after end), and that either way every byte arrives once, in order, with the
 * stream's state as Writable would leave it. The node:net conformance scenarios
 * (conformance/scenarios-write.ts) pin the callback ticks and errors against node:net itself.
 * In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { Duplex } from 'node:stream';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let sink: Server;
let sinkUri = '';
/** What the sink's accepted sockets received, per connection, and the sockets themselves. */
const received: Buffer[][] = [];
const accepted: Socket[] = [];
/** Accepted sockets start paused while this is set (the fifo then fills). */
let pauseAccepted = false;

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  sink = createServer((s) => {
    const parts: Buffer[] = [];
    received.push(parts);
    accepted.push(s);
    s.on('error', () => {});
    if (pauseAccepted) s.pause();
    s.on('data', (b: Buffer) => parts.push(b));
  });
  await new Promise<void>((resolve) => sink.listen('tcp://127.0.0.1:0', resolve));
  sinkUri = sink.address()?.uri ?? '';
});

after(async () => {
  for (const a of accepted) a.destroy();
  await new Promise<void>((resolve) => sink.close(() => resolve()));
  await d.stop();
});

/** Counts the client socket's calls that reach Writable#write (Socket#write hands the writes it
 *  does not take to it). Other streams of this process (ferryd's control socket) are not counted. */
let viaWritable = 0;
let watched: Socket | null = null;
const writableWrite = Duplex.prototype.write;
beforeEach(() => {
  viaWritable = 0;
  watched = null;
  Duplex.prototype.write = function (this: Duplex, ...args: Parameters<Duplex['write']>) {
    if (this === watched) viaWritable++;
    return writableWrite.apply(this, args);
  } as Duplex['write'];
});
afterEach(() => {
  Duplex.prototype.write = writableWrite;
  watched?.destroy();
});

interface Opened {
  s: Socket;
  got: () => Buffer;
  peer: Socket;
}

async function open(opts: { txFifoSize?: number } = {}): Promise<Opened> {
  const n = received.length;
  const s = connect({ uri: sinkUri, ...opts });
  await once(s, 'connect');
  // The sink's 'connection' for this socket has run once it reads: wait for it to be registered.
  while (received.length === n) await new Promise((r) => setImmediate(r));
  const parts = received[n] as Buffer[];
  watched = s;
  return { s, got: () => Buffer.concat(parts), peer: accepted[n] as Socket };
}

/** Ends the client and resolves with all the peer read, once it read the end. */
async function endAndCollect({ s, got, peer }: Opened): Promise<Buffer> {
  const ended = peer.readableEnded ? Promise.resolve() : once(peer, 'end');
  s.end();
  await ended;
  return got();
}

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

test('a small Buffer, Uint8Array or string on an idle socket skips Writable; state as Writable leaves it', async () => {
  const o = await open();
  const { s } = o;
  const before = s.bytesWritten;
  assert.equal(s.write(Buffer.from('hello')), true);
  assert.equal(s.write(new Uint8Array([0x20, 0x21])), true);
  assert.equal(s.write(' world'), true);
  assert.equal(s.write('\u00e9', 'latin1'), true);
  assert.equal(viaWritable, 0, 'every one of these took the fast path');
  assert.equal(s.writableLength, 0);
  assert.equal(s.writableNeedDrain, false);
  assert.equal(s.bytesWritten - before, 5 + 2 + 6 + 1);
  const calls: string[] = [];
  s.write(Buffer.from('!'), (err) => calls.push(`a:${err}`));
  s.write(Buffer.from('!'), (err) => calls.push(`b:${err}`));
  assert.deepEqual(calls, [], 'callbacks are never called synchronously');
  assert.equal(viaWritable, 0);
  await new Promise((r) => process.nextTick(r));
  assert.deepEqual(calls, ['a:null', 'b:null']);
  const all = await endAndCollect(o);
  assert.equal(all.toString('latin1'), 'hello ! world\u00e9!!');
});

test('corked, queued, encoded, large, empty and ended writes go through Writable', async () => {
  const o = await open();
  const { s } = o;
  s.cork();
  s.write(Buffer.from('a'));
  assert.equal(viaWritable, 1, 'corked');
  s.uncork();
  s.write(Buffer.from('62', 'hex'), 'hex');
  assert.equal(viaWritable, 2, 'an encoding argument with a Buffer (Writable validates it)');
  s.write('63', 'hex');
  assert.equal(viaWritable, 3, 'a string in an encoding the fast path does not encode');
  s.write(Buffer.alloc(4096, 0x64));
  assert.equal(viaWritable, 4, 'larger than a staged chunk');
  s.write(Buffer.alloc(0));
  assert.equal(viaWritable, 5, 'empty');
  s.write(Buffer.from('e'));
  assert.equal(viaWritable, 5, 'idle again: fast');
  const all = await endAndCollect(o);
  assert.equal(all.toString('latin1'), `abc${'d'.repeat(4096)}e`);
  let err: unknown;
  s.on('error', () => {});
  s.write(Buffer.from('x'), (e) => (err = e));
  await new Promise((r) => setImmediate(r));
  assert.equal((err as { code?: string } | undefined)?.code, 'ERR_STREAM_WRITE_AFTER_END');
});

test('2 MiB of mixed small and large writes, fast and not, through a 64 KiB fifo: every byte in order', async () => {
  const o = await open({ txFifoSize: 64 * 1024 });
  const { s } = o;
  const payload = randomBytes(2 * 1024 * 1024);
  let off = 0;
  let i = 0;
  let fast = 0;
  let calledBack = 0;
  let writes = 0;
  // Bounded: the payload runs out.
  while (off < payload.length) {
    const size = [64, 1, 700, 3000, 1024, 17][i++ % 6] as number;
    const piece = payload.subarray(off, Math.min(payload.length, off + size));
    off += piece.length;
    const was = viaWritable;
    writes++;
    const ok = s.write(piece, () => calledBack++);
    if (viaWritable === was) fast++;
    if (!ok) await once(s, 'drain');
    else if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  const all = await endAndCollect(o);
  assert.equal(all.length, payload.length);
  assert.equal(sha(all), sha(payload));
  assert.equal(calledBack, writes);
  assert.ok(fast > 0 && fast < writes, `some writes fast (${fast} of ${writes}), some not`);
});

test('the first write of a tick finds the fifo nearly full: the rest waits in the stage, then goes out', async () => {
  pauseAccepted = true;
  try {
    const o = await open({ txFifoSize: 64 * 1024 });
    const { s } = o;
    // Fill the fifo to 10 bytes short of full, in place, while the peer reads nothing.
    const r = s.reserve(1 << 30);
    assert.ok(r !== null);
    const filled = r.bytes.length - 10;
    r.bytes.fill(0x41, 0, filled);
    r.commit(filled);
    // Exactly 10 bytes are free now (a reservation left uncommitted changes nothing).
    assert.equal(s.reserve(1 << 30)?.bytes.length, 10);
    await new Promise((res) => setImmediate(res));
    const msg = Buffer.alloc(64, 0x42);
    let cb: unknown = 'not called';
    assert.equal(
      s.write(msg, (e) => (cb = e)),
      true,
    );
    assert.equal(viaWritable, 0, 'taken by the fast path, 10 bytes in the fifo and 54 staged');
    assert.equal(s.writableLength, 0);
    await new Promise((res) => setImmediate(res));
    assert.equal(cb, null);
    // The peer reads: the staged rest follows once space appears.
    o.peer.resume();
    const all = await endAndCollect(o);
    assert.equal(all.length, filled + 64);
    assert.ok(all.subarray(0, filled).every((b) => b === 0x41));
    assert.ok(all.subarray(filled).every((b) => b === 0x42));
  } finally {
    pauseAccepted = false;
  }
});

test('after fast writes, cork(), end() and destroy() send the next write through Writable', async () => {
  const o = await open();
  const { s } = o;
  assert.equal(s.write(Buffer.from('a')), true);
  assert.equal(s.write(Buffer.from('b')), true);
  assert.equal(viaWritable, 0, 'both fast');
  s.cork();
  s.write(Buffer.from('c'));
  assert.equal(viaWritable, 1, 'corked right after fast writes');
  assert.equal(s.writableLength, 1, 'held by the cork');
  s.uncork();
  await new Promise((r) => setImmediate(r));
  assert.equal(s.write(Buffer.from('d')), true);
  assert.equal(viaWritable, 1, 'idle again: fast');
  let err: unknown;
  s.on('error', (e) => (err = e));
  const ended = once(o.peer, 'end');
  s.end();
  // Right after end(), without a callback: the kind of write the fast path takes without looking
  // at Writable again. It must fail as Writable fails it, and never reach the peer.
  s.write(Buffer.from('x'));
  assert.equal(viaWritable, 2, 'after end()');
  await ended;
  assert.equal(o.got().toString('latin1'), 'abcd');
  assert.equal((err as { code?: string } | undefined)?.code, 'ERR_STREAM_WRITE_AFTER_END');

  s.destroy();

  const o2 = await open();
  viaWritable = 0;
  assert.equal(o2.s.write(Buffer.from('e')), true);
  assert.equal(viaWritable, 0, 'fast');
  o2.s.on('error', () => {});
  o2.s.destroy();
  let err2: unknown;
  o2.s.write(Buffer.from('y'), (e) => (err2 = e));
  assert.equal(viaWritable, 1, 'after destroy()');
  await new Promise((r) => setImmediate(r));
  assert.equal((err2 as { code?: string } | undefined)?.code, 'ERR_STREAM_DESTROYED');
});
