import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unpack } from 'msgpackr';
import { frameBytes, MSG_HEADER_BYTES, MSG_KIND } from '../proto/message-frame.js';
import { type FrameSink, FrameWriter, type FrameWriterOptions } from './frame-writer.js';

/** A fifo of `size` bytes as a flat log: what was published, and how much room is left. */
class FakeSink implements FrameSink {
  readonly log: number[] = [];
  free: number;
  readonly txSize: number;
  #resv: Buffer | null = null;
  constructor(size: number) {
    this.txSize = size;
    this.free = size;
  }
  get writableBytes(): number {
    return this.free;
  }
  reserve(): Uint8Array {
    this.#resv = Buffer.alloc(Math.min(this.free, 4096));
    return this.#resv;
  }
  commit(n: number): number {
    const r = this.#resv as Buffer;
    for (let i = 0; i < n; i++) this.log.push(r[i] as number);
    this.free -= n;
    this.#resv = null;
    return n;
  }
  write(chunk: Uint8Array): number {
    const n = Math.min(this.free, chunk.length);
    for (let i = 0; i < n; i++) this.log.push(chunk[i] as number);
    this.free -= n;
    return n;
  }
  waitForSpace(): boolean {
    return false;
  }
  peerStoppedReading = false;
}

/** Frame sizes in a published log (headers read in order). */
/** A writer over `sink` with 1 MiB limits that defers nothing and fails the test on an error. */
function writerOn(sink: FrameSink, opts: Partial<FrameWriterOptions> = {}): FrameWriter {
  return new FrameWriter(sink, {
    maxBodyBytes: 1 << 20,
    maxQueuedBytes: 1 << 20,
    defer: () => {},
    onDrain: () => {},
    onError: (err) => assert.fail(err),
    ...opts,
  });
}

function frameSizes(log: number[]): number[] {
  const b = Buffer.from(log);
  const out: number[] = [];
  let off = 0;
  while (off + MSG_HEADER_BYTES <= b.length) {
    const size = frameBytes(b.readUInt32LE(off));
    out.push(size);
    off += size;
  }
  assert.equal(off, b.length, 'the log ends on a frame boundary');
  return out;
}

test('a small frame goes into a full fifo whole or not at all, and in order once there is room', () => {
  const sink = new FakeSink(4096);
  let drained = 0;
  const w = writerOn(sink, { onDrain: () => drained++ });
  // msgpackr values (no shape records): strings whose frames take 24-40 bytes.
  let sent = 0;
  while (sink.free >= 64) assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, `v${sent++}`), true);
  // Less room than the next frame: nothing of it may be published.
  sink.free = 20;
  const before = sink.log.length;
  assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'x'.repeat(12)), false);
  assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'y'), false);
  w.flush();
  assert.equal(sink.log.length, before, 'no part of a waiting frame was written');
  assert.ok(w.queuedBytes > 0);
  sink.free = 4096;
  assert.equal(w.flush(), true);
  assert.equal(drained, 1);
  const sizes = frameSizes(sink.log);
  assert.equal(sizes.length, sent + 2);
  // The last two are the ones that waited, whole and in order.
  const log = Buffer.from(sink.log);
  const body = (at: number) =>
    unpack(log.subarray(at + MSG_HEADER_BYTES, at + MSG_HEADER_BYTES + log.readUInt32LE(at)));
  const last = log.length - (sizes.at(-1) as number);
  const second = last - (sizes.at(-2) as number);
  assert.equal(body(second), 'x'.repeat(12));
  assert.equal(body(last), 'y');
});

test('a frame larger than half the fifo still streams through in pieces', () => {
  const sink = new FakeSink(4096);
  const w = writerOn(sink);
  sink.free = 1000;
  assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'z'.repeat(3000)), false);
  assert.equal(sink.log.length, 1000, 'the part that fit was written');
  sink.free = 4096;
  assert.equal(w.flush(), true);
  assert.deepEqual(frameSizes(sink.log), [frameBytes(sink.log.length - MSG_HEADER_BYTES)]);
});

test('a small frame waiting on a fifo that then fails ends in ERR_FERRY_FIFO_CORRUPT, not an endless retry', async () => {
  // A failed fifo (a peer that moved its head out of range) reads 0 bytes free, answers writes
  // with -1 and says "space is there" to waitForSpace (so that the writer looks again and finds out).
  const sink = new FakeSink(4096);
  let failed = false;
  let spaceAsks = 0;
  const write = sink.write.bind(sink);
  sink.write = (chunk) => (failed ? -1 : write(chunk));
  sink.waitForSpace = () => {
    spaceAsks++;
    return failed;
  };
  const errors: string[] = [];
  const w = writerOn(sink, {
    onError: (err) => errors.push((err as { code?: string }).code ?? String(err)),
  });
  sink.free = 20;
  assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'x'.repeat(40)), false, 'queued whole: no room');
  failed = true;
  sink.free = 0;
  w.flush();
  try {
    // Bounded: a writer that never learns of the failure keeps retrying, one turn after another.
    for (let i = 0; i < 20 && errors.length === 0; i++) await new Promise((r) => setImmediate(r));
    assert.deepEqual(errors, ['ERR_FERRY_FIFO_CORRUPT']);
    const asks = spaceAsks;
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.equal(spaceAsks, asks, 'no retries after the failure');
  } finally {
    // Stops the retries when the assertions failed (else they keep the process alive).
    w.discard();
  }
});

test('frames waiting on a fifo whose reader closed its end wait (no retry every turn) until the channel ends', async () => {
  // A closed reader: no room ever comes, and waitForSpace says "look again" (as for a failure).
  const sink = new FakeSink(4096);
  let writes = 0;
  const write = sink.write.bind(sink);
  sink.write = (chunk) => {
    writes++;
    return write(chunk);
  };
  sink.waitForSpace = () => true;
  const w = writerOn(sink);
  try {
    sink.free = 20;
    sink.peerStoppedReading = true;
    assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'x'.repeat(40)), false);
    const before = writes;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    assert.equal(writes, before, 'not looked at again');
    assert.ok(w.queuedBytes > 0, 'the frame still waits');
  } finally {
    w.discard();
  }
});

/**
 * A ring fifo of `size` bytes inside a larger memory (guard bytes either side), with its ring as
 * txRing: reservations are views of the ring (or, with lend(), lengths from txTailOffset), from the
 * tail up to the head or the ring's end.
 */
class RingSink implements FrameSink {
  readonly mem: Buffer;
  readonly txRing: Buffer;
  readonly txSize: number;
  head: number;
  tail: number;
  #lent = 0;
  constructor(size: number, head: number, tail: number) {
    this.mem = Buffer.alloc(size + 64, 0xee);
    this.txRing = this.mem.subarray(32, 32 + size);
    this.txSize = size;
    this.head = head;
    this.tail = tail;
  }
  get writableBytes(): number {
    return this.txSize - (this.tail - this.head);
  }
  reserve(): Uint8Array {
    const pos = this.tail % this.txSize;
    this.#lent = Math.min(this.writableBytes, this.txSize - pos);
    return this.txRing.subarray(pos, pos + this.#lent);
  }
  lendOne(): number {
    this.reserve();
    return this.#lent;
  }
  get txTailOffset(): number {
    return this.tail % this.txSize;
  }
  commit(n: number): number {
    if (n > this.#lent) return -1;
    this.#lent = 0;
    this.tail += n;
    return n;
  }
  write(chunk: Uint8Array): number {
    this.#lent = 0;
    const n = Math.min(this.writableBytes, chunk.length);
    for (let i = 0; i < n; i++) this.txRing[(this.tail + i) % this.txSize] = chunk[i] as number;
    this.tail += n;
    return n;
  }
  waitForSpace(): boolean {
    return false;
  }
  peerStoppedReading = false;
}

for (const lends of [false, true]) {
  test(`through the whole tx ring, nothing is written outside the reservation: unread bytes and the memory around the ring stay as they were (${lends ? 'lend()' : 'reserve() views'})`, () => {
    const size = 16384;
    // The reservation is [1000, 5096): the fifo's free space ends at the head, not at the ring's end.
    const start = 1000;
    const head = start + 4096;
    const sink = new RingSink(size, head, size + start);
    if (lends) (sink as FrameSink & { lend?: () => number }).lend = () => sink.lendOne();
    // Unread bytes: [head, size) and [0, start) of the ring.
    for (let i = head; i < size + start; i++) sink.txRing[i % size] = 0xab;
    const intact = (what: string) => {
      for (let i = 0; i < 32; i++) {
        assert.equal(sink.mem[i], 0xee, `${what}: the guard before the ring`);
        assert.equal(sink.mem[32 + size + i], 0xee, `${what}: the guard after the ring`);
      }
      for (let i = head; i < size + start; i++) {
        if (sink.txRing[i % size] !== 0xab) assert.fail(`${what}: unread byte ${i % size} was overwritten`);
      }
    };
    const w = writerOn(sink);
    w.enableShapes();
    // A shape record (in place, through the ring's Buffer), then values too large for what is left of
    // the reservation: a shape record with a long string field, and a msgpackr string (msgpackr is
    // given fifo space when 2.3 KiB or more is left: a target bounded by the ring's end instead of the
    // reservation's would let either write over the unread bytes).
    const small = { id: 1, name: 'sensor-7', vals: [1, 2, 3] };
    assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, small), true);
    intact('a small record');
    const firstEnd = sink.tail;
    assert.ok(firstEnd > size + start, 'the first frame went into the ring at once');
    w.writeValue(MSG_KIND.REQUEST, 7, { id: 2, name: 'y'.repeat(4200), vals: [] });
    intact('a record larger than the reservation');
    w.writeValue(MSG_KIND.MESSAGE, 0, 'x'.repeat(4500));
    intact('a msgpackr string larger than the reservation');
    // What went in: the small record's frame whole, at the reservation's start.
    const at = start;
    const body = sink.txRing.readUInt32LE(at);
    assert.equal(sink.txRing.readUInt32LE(at + 4), MSG_KIND.MESSAGE);
    assert.equal(firstEnd - (size + start), frameBytes(body));
    assert.equal(sink.txRing[at + MSG_HEADER_BYTES], 0xc1, 'a shape record');
    assert.ok(w.queuedBytes > 0, 'what did not fit waits');
    w.discard();
  });
}

test('a sink that lends without saying where its tail is gets its frames through reserve() views, at the tail, not at the ring start', () => {
  const size = 16384;
  // An empty fifo whose tail (and head) sit 1000 bytes into the ring.
  const ring = new RingSink(size, 1000, 1000);
  const sink: FrameSink = {
    reserve: () => ring.reserve(),
    commit: (n) => ring.commit(n),
    get writableBytes() {
      return ring.writableBytes;
    },
    txSize: size,
    write: (c) => ring.write(c),
    waitForSpace: () => false,
    peerStoppedReading: false,
    txRing: ring.txRing,
    // lend() without txTailOffset: the offset of what it lends is unknown.
    lend: () => ring.lendOne(),
  };
  const w = writerOn(sink);
  assert.equal(w.writeValue(MSG_KIND.MESSAGE, 0, 'hello'), true);
  assert.equal(ring.tail - 1000, frameBytes(ring.txRing.readUInt32LE(1000)), 'one frame, committed');
  assert.equal(ring.txRing.readUInt32LE(1004), MSG_KIND.MESSAGE, 'the frame lies at the tail');
  for (let i = 0; i < 64; i++) assert.equal(ring.txRing[i], 0xee, `ring byte ${i} untouched`);
  const body = ring.txRing.readUInt32LE(1000);
  assert.equal(
    unpack(ring.txRing.subarray(1000 + MSG_HEADER_BYTES, 1000 + MSG_HEADER_BYTES + body)),
    'hello',
  );
});
