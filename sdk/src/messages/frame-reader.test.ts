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

/** A HELLO saying the reader takes shape records, then `n` of the bench's objects, as frames. */
function framesOf(n: number): { bytes: Buffer; sizes: number[] } {
  const sink = new LogSink();
  const w = new FrameWriter(sink, {
    maxBodyBytes: 1 << 20,
    maxQueuedBytes: 1 << 20,
    defer: () => {},
    onDrain: () => {},
    onError: (err) => assert.fail(err),
  });
  w.writeValue(MSG_KIND.HELLO, 0, { v: MSG_PROTO_VERSION, maxBytes: 1 << 20, shapes: 1 });
  w.enableShapes();
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
