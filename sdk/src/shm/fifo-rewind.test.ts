import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { fifoFootprint, initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import {
  FIFO_CONS_FEATURES_OFFSET,
  FIFO_DATA_OFFSET,
  FIFO_FEATURE_REWIND,
  FIFO_HEAD_OFFSET,
  FIFO_REWIND_FROM_OFFSET,
  FIFO_REWIND_MIN_POS,
  FIFO_REWIND_SEEN_OFFSET,
  FIFO_REWIND_SEQ_OFFSET,
  FIFO_SKIPPED_OFFSET,
  FIFO_TAIL_OFFSET,
} from './fifo-layout.js';
import { emptyFifoProbe, fifoHeaderView, readFifoProbe } from './fifo-probe.js';
import { FifoProducer } from './fifo-producer.js';
import { type StressResult, StressWriter } from './stress-traffic.js';

const OFFSET = 64;
const SIZE = 16 * 1024;

function makeFifo(
  size = SIZE,
  opts: { producer?: { rewind?: boolean }; consumer?: { rewind?: boolean }; start?: number } = {},
) {
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  const ctl = new Uint32Array(buf, OFFSET, 48);
  if (opts.start !== undefined) {
    ctl[FIFO_HEAD_OFFSET / 4] = opts.start;
    ctl[FIFO_TAIL_OFFSET / 4] = opts.start;
  }
  const p = new FifoProducer(buf, OFFSET, size, opts.producer ?? { rewind: true });
  const c = new FifoConsumer(buf, OFFSET, size, opts.consumer ?? { rewind: true });
  const ring = new Uint8Array(buf, OFFSET + FIFO_DATA_OFFSET, size);
  return { buf, ctl, p, c, ring };
}

/** Deterministic bytes: message `seq`'s i-th byte. */
const pattern = (n: number, seq: number) =>
  Uint8Array.from({ length: n }, (_, i) => (seq * 131 + i * 7) & 0xff);

function drain(c: FifoConsumer): Uint8Array {
  const out = new Uint8Array(Math.max(0, c.readable()));
  assert.equal(c.dequeue(out), out.length);
  return out;
}

test('an emptied fifo deep in the ring rewinds: the next write lands at offset 0, whole, and the consumer reads it', () => {
  const { ctl, p, c, ring, buf } = makeFifo();
  assert.equal(ctl[FIFO_CONS_FEATURES_OFFSET / 4], FIFO_FEATURE_REWIND, 'the consumer announces it follows');
  assert.equal(p.enqueue(pattern(5000, 1)), 5000);
  assert.deepEqual(drain(c), pattern(5000, 1));
  assert.equal(p.rewinds, 0, 'no rewind while writing the first message');
  assert.equal(p.enqueue(pattern(1000, 2)), 1000);
  assert.equal(p.rewinds, 1);
  assert.deepEqual(ring.subarray(0, 1000), pattern(1000, 2), 'written at the ring start');
  assert.equal(ctl[FIFO_REWIND_FROM_OFFSET / 4], 5000);
  assert.equal(ctl[FIFO_SKIPPED_OFFSET / 4], SIZE - 5000);
  const views = c.readableViews();
  assert.equal(views.length, 1);
  assert.deepEqual(views[0], pattern(1000, 2));
  assert.equal(ctl[FIFO_REWIND_SEEN_OFFSET / 4], 1, 'applied once its tail was seen');
  assert.equal(ctl[FIFO_HEAD_OFFSET / 4], SIZE, 'the head skipped to the ring end');
  assert.equal(c.drop(1000), 1000);
  assert.equal(p.freeSpace(), SIZE);
  // A supervisor counting bytes by the indices subtracts the skip.
  const probe = readFifoProbe(fifoHeaderView(buf, OFFSET), emptyFifoProbe());
  assert.equal((probe.tail - probe.skipped) >>> 0, 6000);
  assert.equal(c.error, null);
  assert.equal(p.error, null);
});

test('no rewind while bytes are unread, near the ring start, for a write longer than the position, by default, or when either end opts out', () => {
  {
    const { p, c } = makeFifo();
    p.enqueue(pattern(5000, 1));
    c.drop(4999);
    p.enqueue(pattern(10, 2));
    assert.equal(p.rewinds, 0, 'one byte unread');
    c.drop(1);
    assert.deepEqual(drain(c), pattern(10, 2));
  }
  {
    const { p, c } = makeFifo();
    p.enqueue(pattern(FIFO_REWIND_MIN_POS - 1, 1));
    drain(c);
    p.enqueue(pattern(10, 2));
    assert.equal(p.rewinds, 0, 'below FIFO_REWIND_MIN_POS');
  }
  {
    const { p, c } = makeFifo();
    p.enqueue(pattern(5000, 1));
    drain(c);
    assert.equal(p.enqueue(pattern(6000, 2)), 6000);
    assert.equal(p.rewinds, 0, 'would not fit before the old position');
    assert.deepEqual(drain(c), pattern(6000, 2));
  }
  // Ends made without options (the default) neither announce nor make rewinds.
  for (const opts of [
    { consumer: {} },
    { producer: {} },
    { consumer: { rewind: false } },
    { producer: { rewind: false } },
  ]) {
    const { p, c, ctl } = makeFifo(SIZE, opts);
    for (let i = 0; i < 20; i++) {
      assert.equal(p.enqueue(pattern(3000, i)), 3000);
      assert.deepEqual(drain(c), pattern(3000, i));
    }
    assert.equal(p.rewinds, 0, JSON.stringify(opts));
    assert.equal(ctl[FIFO_SKIPPED_OFFSET / 4], 0);
  }
});

test('after a rewind the free space is the old position until the consumer applies it; partial writes keep order', () => {
  const { p, c } = makeFifo();
  p.enqueue(pattern(8192, 1));
  drain(c);
  assert.equal(p.enqueue(pattern(100, 2)), 100);
  assert.equal(p.rewinds, 1);
  assert.equal(p.freeSpace(), 8192 - 100);
  const big = pattern(10_000, 3);
  const n = p.enqueue(big);
  assert.equal(n, 8092, 'partial: up to the skipped bytes');
  assert.equal(p.enqueue(big.subarray(n)), 0, 'full until the consumer moves');
  assert.deepEqual(drain(c), Uint8Array.from([...pattern(100, 2), ...big.subarray(0, n)]));
  assert.equal(p.enqueue(big.subarray(n)), 10_000 - n);
  assert.deepEqual(drain(c), big.subarray(n));
  assert.equal(c.error, null);
});

test('strings, atomic frames and reservations rewind too; a reservation never committed leaves the consumer waiting, not misled', () => {
  const { p, c, ring } = makeFifo();
  p.enqueue(pattern(6000, 1));
  drain(c);
  assert.equal(p.enqueueString('hello', 'latin1', 5), 5);
  assert.equal(p.rewinds, 1);
  assert.equal(Buffer.from(ring.subarray(0, 5)).toString('latin1'), 'hello');
  assert.equal(Buffer.from(drain(c)).toString('latin1'), 'hello');

  p.enqueue(pattern(6000, 2));
  drain(c);
  assert.equal(p.enqueueAtomic([pattern(7, 3), pattern(9, 4)]), 16);
  assert.equal(p.rewinds, 2);
  assert.deepEqual(drain(c), Uint8Array.from([...pattern(7, 3), ...pattern(9, 4)]));

  p.enqueue(pattern(6000, 5));
  drain(c);
  const view = p.writableView(2048);
  assert.equal(p.rewinds, 3);
  assert.equal(view.byteOffset - ring.byteOffset, 0, 'the reservation starts at the ring start');
  // The rewind is published, its tail not yet: the consumer sees nothing and no error.
  assert.equal(c.readable(), 0);
  assert.equal(c.error, null);
  view.set(pattern(2048, 6));
  assert.equal(p.commit(2048), 2048);
  assert.deepEqual(drain(c), pattern(2048, 6));

  p.enqueue(pattern(6000, 7));
  drain(c);
  p.writableView(100); // rewinds, never committed
  assert.equal(p.rewinds, 4);
  p.fin();
  assert.equal(c.readable(), 0);
  assert.equal(c.fin, true, 'FIN after a rewind with nothing behind it');
  assert.equal(c.error, null);
});

test('rewinds across the u32 index wrap and a second consumer over the same fifo: every byte in order', () => {
  const { buf, p, c: first } = makeFifo(SIZE, { start: 0xffff_c000 });
  let c = first;
  const sent: number[] = [];
  const got: number[] = [];
  const out = new Uint8Array(SIZE);
  for (let i = 0; i < 400; i++) {
    const msg = pattern(1 + ((i * 977) % 7000), i);
    let off = 0;
    while (off < msg.length) {
      const n = p.enqueue(msg.subarray(off));
      assert.ok(n >= 0, `enqueue failed: ${p.error?.message}`);
      for (let k = off; k < off + n; k++) sent.push(msg[k] as number);
      off += n;
      // Every third message the reader takes only part of what is there: the next write then
      // finds the fifo not empty (no rewind), or full (a partial write).
      const want = i % 3 === 0 ? Math.min(1 + ((i * 389) % 5000), SIZE) : SIZE;
      const r = c.dequeue(out.subarray(0, want));
      assert.ok(r >= 0, `dequeue failed: ${c.error?.message}`);
      for (let k = 0; k < r; k++) got.push(out[k] as number);
    }
    if (i === 200) c = new FifoConsumer(buf, OFFSET, SIZE, { rewind: true }); // picks up REWIND_SEEN
  }
  for (let r = c.dequeue(out); r > 0; r = c.dequeue(out))
    for (let k = 0; k < r; k++) got.push(out[k] as number);
  assert.ok(p.rewinds > 50, `rewinds ${p.rewinds}`);
  assert.equal(c.error, null);
  assert.equal(p.error, null);
  assert.equal(got.length, sent.length);
  assert.ok(Buffer.from(got).equals(Buffer.from(sent)), 'every byte in order');
});

test('a hostile producer rewind fails the consumer with ERR_FERRY_FIFO_CORRUPT and nothing else', () => {
  const cases: [string, (ctl: Uint32Array) => void][] = [
    ['two rewinds at once', (ctl) => (ctl[FIFO_REWIND_SEQ_OFFSET / 4] = 2)],
    ['from not at the head', (ctl) => (ctl[FIFO_REWIND_FROM_OFFSET / 4] = 4000)],
    ['from at a ring start', (ctl) => (ctl[FIFO_REWIND_FROM_OFFSET / 4] = SIZE)],
    ['a tail inside the skip', (ctl) => (ctl[FIFO_TAIL_OFFSET / 4] = 5100)],
  ];
  for (const [what, spoil] of cases) {
    const { ctl, p, c } = makeFifo();
    p.enqueue(pattern(5000, 1));
    drain(c);
    // What an honest rewind of 5000 followed by 100 bytes publishes; then one word spoiled.
    ctl[FIFO_REWIND_FROM_OFFSET / 4] = 5000;
    ctl[FIFO_REWIND_SEQ_OFFSET / 4] = 1;
    ctl[FIFO_TAIL_OFFSET / 4] = SIZE + 100;
    spoil(ctl);
    assert.equal(c.readable(), 0, what);
    assert.equal(c.error?.code, 'ERR_FERRY_FIFO_CORRUPT', what);
    assert.equal(c.dequeue(new Uint8Array(10)), -1, what);
    assert.equal(c.armData(), true, what);
  }
  // The honest version of the same words is read as the 100 bytes at the ring start.
  const { ctl, p, c, ring } = makeFifo();
  p.enqueue(pattern(5000, 1));
  drain(c);
  ring.set(pattern(100, 9), 0);
  ctl[FIFO_REWIND_FROM_OFFSET / 4] = 5000;
  ctl[FIFO_REWIND_SEQ_OFFSET / 4] = 1;
  ctl[FIFO_TAIL_OFFSET / 4] = SIZE + 100;
  assert.deepEqual(drain(c), pattern(100, 9));
  assert.equal(c.error, null);
});

test('worker_threads: 50k checksummed messages with the writer waiting for an empty fifo every few, so it rewinds', async () => {
  const size = 64 * 1024;
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  const timeLimitMs = 60_000;
  const worker = new Worker(new URL('./stress-worker.js', import.meta.url), {
    workerData: { buf, offset: OFFSET, sizeBytes: size, timeLimitMs, rewind: true },
  });
  try {
    const done = new Promise<StressResult & { timedOut: boolean }>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    const ctl = new Uint32Array(buf, OFFSET, 48);
    const deadline = performance.now() + timeLimitMs;
    // The consumer announces rewinds when the worker constructs it.
    while (ctl[FIFO_CONS_FEATURES_OFFSET / 4] === 0 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    const producer = new FifoProducer(buf, OFFSET, size, { rewind: true });
    const messages = 50_000;
    const writer = new StressWriter(producer, messages, size);
    let bursts = 0;
    while (!writer.done && performance.now() < deadline) {
      // A burst of up to ~20 KiB, then wait (bounded) for the reader to empty the fifo, as a
      // request/response exchange does; sometimes not, so rewinds also meet a busy reader.
      if (writer.send(64) < 0) break;
      // The reader consumes whole messages only: a burst that ended in a partial write never
      // empties the fifo, hence the bounded wait.
      if (++bursts % 3 !== 0) {
        for (let spins = 0; spins < 200_000 && producer.freeSpace() < size; spins++) {
          /* the worker reads meanwhile */
        }
      }
    }
    producer.fin();
    const received = await done;
    assert.equal(producer.error, null);
    assert.equal(received.timedOut, false);
    assert.equal(received.error, null);
    assert.equal(received.messages, messages);
    assert.equal(received.payloadBytes, writer.result.payloadBytes);
    assert.equal(received.checksum, writer.result.checksum);
    assert.ok(producer.rewinds > 10, `rewinds ${producer.rewinds}`);
  } finally {
    await worker.terminate();
  }
});
