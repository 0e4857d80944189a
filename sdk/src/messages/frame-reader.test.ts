import assert from 'node:assert/strict';
import { test } from 'node:test';
import { frameBytes, MSG_HEADER_BYTES, MSG_KIND, MSG_PROTO_VERSION } from '../proto/message-frame.js';
import { type FrameHandler, FrameReader, type FrameSource } from './frame-reader.js';
import { type FrameSink, FrameWriter } from './frame-writer.js';

/** Collects what a FrameWriter publishes, as one flat log of frame bytes. */
class LogSink implements FrameSink {
  readonly log: number[] = [];
  readonly txSize = 1 << 20;
  readonly writableBytes = 1 << 20;
  readonly peerStoppedReading = false;
  #resv: Buffer | null = null;
  reserve(): Uint8Array {
    this.#resv = Buffer.alloc(4096);
    return this.#resv;
  }
  commit(n: number): number {
    for (let i = 0; i < n; i++) this.log.push((this.#resv as Buffer)[i] as number);
    this.#resv = null;
    return n;
  }
  write(chunk: Uint8Array): number {
    for (const b of chunk) this.log.push(b);
    return chunk.length;
  }
  waitForSpace(): boolean {
    return false;
  }
}

/** A writer into `sink` that has written a HELLO saying the reader takes shape records. */
function helloWriter(sink: LogSink): FrameWriter {
  const w = new FrameWriter(sink, {
    maxBodyBytes: 1 << 20,
    maxQueuedBytes: 1 << 20,
    defer: () => {},
    onDrain: () => {},
    onError: (err) => assert.fail(err),
  });
  w.writeValue(MSG_KIND.HELLO, 0, { v: MSG_PROTO_VERSION, maxBytes: 1 << 20, shapes: 1 });
  w.enableShapes();
  return w;
}

/** A HELLO saying the reader takes shape records, then `n` of the bench's objects, as frames. */
function framesOf(n: number): { bytes: Buffer; sizes: number[] } {
  const sink = new LogSink();
  const w = helloWriter(sink);
  for (let i = 0; i < n; i++)
    w.writeValue(MSG_KIND.MESSAGE, 0, { id: i, ts: 1.7e12 + i, name: 'sensor-7', vals: [1, 2, 3] });
  w.flush();
  const bytes = Buffer.from(sink.log);
  const sizes: number[] = [];
  for (let off = 0; off < bytes.length; off += sizes.at(-1) as number)
    sizes.push(frameBytes(bytes.readUInt32LE(off)));
  return { bytes, sizes };
}

/**
 * The fifo as the reader sees it after a wrap: the bytes from its head to the ring's end, then
 * those from the ring's start (`split` bytes into `bytes`).
 */
class WrappedSource implements FrameSource {
  readonly rxSize = 1 << 20;
  consumed = 0;
  readonly #bytes: Buffer;
  readonly #split: number;
  constructor(bytes: Buffer, split: number) {
    this.#bytes = bytes;
    this.#split = split;
  }
  get readableBytes(): number {
    return this.#bytes.length - this.consumed;
  }
  readableViews(): [Uint8Array] | [Uint8Array, Uint8Array] {
    const c = this.consumed;
    if (c >= this.#split) return [this.#bytes.subarray(c)];
    return [this.#bytes.subarray(c, this.#split), this.#bytes.subarray(this.#split)];
  }
  consume(n: number): number {
    this.consumed += n;
    return n;
  }
}

/** Reads `src` once; which ids arrived by the MESSAGE fast path and which by the general one. */
function readAll(src: FrameSource): { fast: number[]; general: number[]; hello: number } {
  const fast: number[] = [];
  const general: number[] = [];
  let hello = 0;
  const handler: FrameHandler = {
    onFrame: (kind, _id, value) => {
      if (kind === MSG_KIND.HELLO) hello++;
      else if (kind === MSG_KIND.MESSAGE) general.push((value as { id: number }).id);
    },
    onMessage: (value) => fast.push((value as { id: number }).id),
    onLoan: () => assert.fail('no loans here'),
    onFailure: (err) => assert.fail(err),
  };
  const reader = new FrameReader(src, handler, { maxBodyBytes: 1 << 20, paused: () => false });
  // As a channel does: the HELLO first (alone), then everything readable in one pull.
  reader.takeHello();
  assert.equal(reader.sawHello, true);
  assert.equal(reader.pull(), 'empty');
  return { fast, general, hello };
}

const N = 40;
const ids = Array.from({ length: N }, (_, i) => i);

test('MESSAGE frames past the ring end are taken by the fast path too, in order', () => {
  const { bytes, sizes } = framesOf(N);
  // The ring ends right after the HELLO and 10 messages.
  const split = sizes.slice(0, 11).reduce((a, b) => a + b, 0);
  const src = new WrappedSource(bytes, split);
  const r = readAll(src);
  assert.equal(r.hello, 1);
  assert.deepEqual(
    [...r.general, ...r.fast].sort((a, b) => a - b),
    ids,
    'each value once',
  );
  assert.deepEqual(r.general, [], 'none through the general path');
  assert.deepEqual(r.fast, ids);
  assert.equal(src.consumed, bytes.length);
});

test('a frame across the ring end is read through a copy, and the frames after it by the fast path', () => {
  const { bytes, sizes } = framesOf(N);
  // The ring ends inside message 20's frame (its header and part of its body before the end).
  const at = sizes.slice(0, 21).reduce((a, b) => a + b, 0);
  const src = new WrappedSource(bytes, at + MSG_HEADER_BYTES + 3);
  const r = readAll(src);
  assert.deepEqual(r.general, [20], 'the one across the end');
  assert.deepEqual(
    r.fast,
    ids.filter((i) => i !== 20),
  );
  assert.equal(src.consumed, bytes.length);
});

/**
 * A fifo as FifoConsumer lays it out: the stream written into a ring of `size` bytes from `start`
 * (wrapping), made readable `visible` bytes at a time, with the ring itself as rxRing: the reader
 * then reads through one Buffer over the ring at the views' offsets.
 */
class RingSource implements FrameSource {
  readonly rxRing: Buffer;
  readonly rxSize: number;
  consumed = 0;
  visible = 0;
  protected readonly start: number;
  readonly #total: number;
  constructor(stream: Buffer, size: number, start: number) {
    // Guard bytes either side: a read outside the ring would see 0xee.
    const mem = Buffer.alloc(size + 64, 0xee);
    this.rxRing = mem.subarray(32, 32 + size);
    this.rxSize = size;
    this.start = start;
    this.#total = stream.length;
    for (let i = 0; i < stream.length; i++) this.rxRing[(start + i) % size] = stream[i] as number;
  }
  get readableBytes(): number {
    return Math.min(this.visible, this.#total) - this.consumed;
  }
  readableViews(): [Uint8Array] | [Uint8Array, Uint8Array] {
    const n = this.readableBytes;
    const pos = (this.start + this.consumed) % this.rxSize;
    const first = this.rxSize - pos;
    if (n <= first) return [this.rxRing.subarray(pos, pos + n)];
    return [this.rxRing.subarray(pos, this.rxSize), this.rxRing.subarray(0, n - first)];
  }
  consume(n: number): number {
    this.consumed += n;
    return n;
  }
}

/** As AppSession: where the readable bytes start in the ring (the reader then makes no views). */
class OffsetRingSource extends RingSource {
  get rxHeadOffset(): number {
    return (this.start + this.consumed) % this.rxSize;
  }
}

/** HELLO, then requests and messages alternating (ids 1..n), with strings of varied lengths. */
function mixedFrames(n: number): Buffer {
  const sink = new LogSink();
  const w = helloWriter(sink);
  for (let i = 1; i <= n; i++) {
    const v = { id: i, ts: 1.7e12 + i, name: 'x'.repeat(i % 40), vals: [i, 2, 3] };
    w.writeValue(i % 2 === 0 ? MSG_KIND.MESSAGE : MSG_KIND.REQUEST, i % 2 === 0 ? 0 : i, v);
  }
  w.flush();
  return Buffer.from(sink.log);
}

for (const Source of [RingSource, OffsetRingSource]) {
  test(`read through the ring at every wrap point and in pieces: every value whole, in order (${Source.name})`, () => {
    const stream = mixedFrames(60);
    // The whole stream fits the ring (it is never consumed to make room).
    const size = 2 ** Math.ceil(Math.log2(stream.length + 1));
    // Start positions that put the ring's end at many places in the stream (headers, bodies, gaps).
    for (let start = size - stream.length; start < size; start += 13) {
      for (const step of [7, 100, size]) {
        const src = new Source(stream, size, start);
        const got: [number, number][] = [];
        const handler: FrameHandler = {
          onFrame: (kind, id, value) => {
            if (kind === MSG_KIND.REQUEST) got.push([id, (value as { id: number }).id]);
            else if (kind === MSG_KIND.MESSAGE) got.push([0, (value as { id: number }).id]);
          },
          onMessage: (value) => got.push([0, (value as { id: number }).id]),
          onLoan: () => assert.fail('no loans here'),
          onFailure: (err) => assert.fail(err),
        };
        const reader = new FrameReader(src, handler, { maxBodyBytes: 1 << 20, paused: () => false });
        while (src.consumed < stream.length) {
          src.visible += step;
          const r = reader.pull();
          assert.ok(r === 'empty' || r === 'partial', `start ${start} step ${step}: ${r}`);
        }
        assert.deepEqual(
          got,
          Array.from({ length: 60 }, (_, k) => [(k + 1) % 2 === 0 ? 0 : k + 1, k + 1]),
          `start ${start} step ${step}`,
        );
      }
    }
  });

  test(`through the ring, a hostile frame (a length past the limit, an undecodable body) fails cleanly (${Source.name})`, () => {
    const stream = mixedFrames(4);
    const helloBytes = frameBytes(stream.readUInt32LE(0));
    for (const corrupt of ['length', 'body'] as const) {
      const bad = Buffer.from(stream);
      if (corrupt === 'length') bad.writeUInt32LE(1 << 24, helloBytes);
      else bad.fill(0xc1, helloBytes + MSG_HEADER_BYTES, helloBytes + MSG_HEADER_BYTES + 8);
      const size = 1 << 12;
      const src = new Source(bad, size, size - helloBytes - 10);
      src.visible = bad.length;
      const failures: string[] = [];
      const reader = new FrameReader(
        src,
        {
          onFrame: () => {},
          onMessage: () => {},
          onLoan: () => {},
          onFailure: (err) => failures.push(err.code),
        },
        { maxBodyBytes: 1 << 16, paused: () => false },
      );
      assert.equal(reader.pull(), 'failed', corrupt);
      assert.equal(failures.length, 1, corrupt);
      assert.match(failures[0] as string, /^(ERR_FERRY_MSG_|EMSGSIZE$)/, corrupt);
    }
  });
}
