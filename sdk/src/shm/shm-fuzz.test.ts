// Property-based tests of everything read from shared memory: the segment header, fifo headers and
// indices, and event queue headers, indices and entries. A peer may write anything at any time, so
// random and mutated input must only ever give typed errors (FerryError with a shared-memory code)
// or a consistent refusal (-1, a `error`), never another exception, an out-of-range result or a
// hang. Each property runs a bounded number of cases; the test timeout catches a hang.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../errors.js';
import { EVENT_QUEUE_RESCAN, EventQueueConsumer, EventQueueProducer, initEventQueue } from './event-queue.js';
import { EVENT_QUEUE_HEADER_BYTES } from './event-queue-layout.js';
import { initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import { FIFO_HEADER_BYTES } from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';
import { SEGMENT_HEADER_BYTES } from './layout.js';
import { checkSegmentHeader, initSegmentHeader } from './segment-header.js';

const SEED = 0x5eed_54a7;
const RUNS = 400;
const LAYOUT_CODES = new Set(['ERR_FERRY_SHM_BAD_LAYOUT', 'ERR_OUT_OF_RANGE']);
const OPTS = { seed: SEED, numRuns: RUNS } as const;

/** Runs `fn`; any throw must be a FerryError with one of `codes`. Returns whether it threw. */
function typed(codes: Set<string>, fn: () => void): boolean {
  try {
    fn();
    return false;
  } catch (e) {
    if (!(e instanceof FerryError) || !codes.has(e.code)) {
      assert.fail(
        `unexpected ${e instanceof Error ? `${e.name} ${(e as FerryError).code}: ${e.message}` : String(e)}`,
      );
    }
    return true;
  }
}

/** A hostile write: a u32 at a word of the region, or a byte, or a flipped bit. */
// Words 0-1 (magic, size), 16-18 (consumer line: head, flags, want) and 32-34 (producer line:
// tail, flags, want) are the header fields of fifos and event queues: aimed at half the time.
const scribble = fc.record({
  word: fc.oneof(fc.constantFrom(0, 1, 16, 17, 18, 32, 33, 34), fc.nat()),
  value: fc.oneof(
    fc.constantFrom(0, 1, 2, 3, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0xffff_fff0),
    fc.integer({ min: 0, max: 10_000 }),
    fc.integer({ min: 0, max: 0xffff_ffff }),
  ),
});
type Scribble = { word: number; value: number };

function applyScribble(u32: Uint32Array, s: Scribble): void {
  u32[s.word % u32.length] = s.value >>> 0;
}

test('segment header: random bytes and mutations of a valid header give a header or BAD_LAYOUT', {
  timeout: 30_000,
}, () => {
  const SIZE = 64 * 1024;
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 0, maxLength: SEGMENT_HEADER_BYTES }),
      fc.array(scribble, { maxLength: 6 }),
      fc.oneof(fc.constant(SIZE), fc.integer({ min: -1, max: 2 * SIZE })),
      fc.boolean(),
      (bytes, scribbles, expected, startValid) => {
        const buf = new ArrayBuffer(SIZE);
        if (startValid) initSegmentHeader(buf, SIZE, 7);
        else new Uint8Array(buf).set(bytes);
        const head = new Uint32Array(buf, 0, SEGMENT_HEADER_BYTES / 4);
        for (const s of scribbles) applyScribble(head, s);
        typed(LAYOUT_CODES, () => {
          const h = checkSegmentHeader(buf, expected);
          assert.equal(h.sizeBytes, expected);
          assert.equal(h.sizeBytes <= buf.byteLength, true);
        });
      },
    ),
    OPTS,
  );
});

test('fifo: opening a random or mutated header gives an end or BAD_LAYOUT', { timeout: 30_000 }, () => {
  const SIZE = 4096;
  fc.assert(
    fc.property(
      fc.array(scribble, { maxLength: 8 }),
      fc.integer({ min: 0, max: 3 }),
      fc.oneof(fc.constant(SIZE), fc.integer({ min: -64, max: 1 << 20 })),
      (scribbles, offsetLines, size) => {
        const buf = new ArrayBuffer(FIFO_HEADER_BYTES + SIZE + 4 * 64);
        const offset = offsetLines * 64;
        initFifo(buf, offset, SIZE);
        const ctl = new Uint32Array(buf, offset, FIFO_HEADER_BYTES / 4);
        for (const s of scribbles) applyScribble(ctl, s);
        typed(LAYOUT_CODES, () => {
          const c = new FifoConsumer(buf, offset, size);
          assert.ok(c.readable() <= size);
        });
        typed(LAYOUT_CODES, () => {
          const p = new FifoProducer(buf, offset, size);
          assert.ok(p.freeSpace() <= size);
        });
      },
    ),
    OPTS,
  );
});

type FifoOp =
  | { op: 'write'; n: number }
  | { op: 'read'; n: number }
  | { op: 'peek'; n: number; skip: number }
  | { op: 'drop'; n: number }
  | { op: 'views' }
  | { op: 'arm' }
  | { op: 'fin' }
  | { op: 'hostile'; s: Scribble };

const fifoOp: fc.Arbitrary<FifoOp> = fc.oneof(
  fc.record({ op: fc.constant('write' as const), n: fc.integer({ min: 0, max: 9000 }) }),
  fc.record({ op: fc.constant('read' as const), n: fc.integer({ min: 0, max: 9000 }) }),
  fc.record({
    op: fc.constant('peek' as const),
    n: fc.integer({ min: 0, max: 9000 }),
    skip: fc.integer({ min: 0, max: 9000 }),
  }),
  fc.record({ op: fc.constant('drop' as const), n: fc.integer({ min: 0, max: 9000 }) }),
  fc.constant({ op: 'views' as const }),
  fc.constant({ op: 'arm' as const }),
  fc.constant({ op: 'fin' as const }),
  fc.record({ op: fc.constant('hostile' as const), s: scribble }),
);

test('fifo: traffic with a peer scribbling over the header and indices never throws, never overreads', {
  timeout: 30_000,
}, () => {
  const SIZE = 4096;
  const seen = { corrupt: 0, bytes: 0 };
  fc.assert(
    fc.property(fc.array(fifoOp, { maxLength: 60 }), fc.boolean(), (ops, scribbleHeaderOnly) => {
      const buf = new ArrayBuffer(FIFO_HEADER_BYTES + SIZE);
      initFifo(buf, 0, SIZE);
      const p = new FifoProducer(buf, 0, SIZE);
      const c = new FifoConsumer(buf, 0, SIZE);
      const ctl = new Uint32Array(buf, 0, FIFO_HEADER_BYTES / 4);
      const all = new Uint32Array(buf);
      const src = new Uint8Array(9000).fill(0xab);
      const dst = new Uint8Array(9000);
      let finished = false;
      for (const o of ops) {
        switch (o.op) {
          case 'write': {
            const n = p.enqueue(src.subarray(0, o.n));
            assert.ok(n === -1 || (n >= 0 && n <= Math.min(o.n, SIZE)), `enqueue gave ${n}`);
            // -1: the fifo failed, or this end already sent FIN (documented).
            if (n === -1 && !finished) assert.equal(p.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
            p.notifyNeeded();
            break;
          }
          case 'read': {
            const n = c.dequeue(dst.subarray(0, o.n));
            assert.ok(n === -1 || (n >= 0 && n <= Math.min(o.n, SIZE)), `dequeue gave ${n}`);
            if (n > 0) seen.bytes += n;
            if (n === -1) assert.equal(c.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
            c.spaceNotifyNeeded();
            break;
          }
          case 'peek': {
            const n = c.peek(dst.subarray(0, o.n), o.skip);
            assert.ok(n >= -1 && n <= Math.min(o.n, SIZE), `peek gave ${n}`);
            break;
          }
          case 'drop': {
            const n = c.drop(o.n);
            assert.ok(n >= -1 && n <= Math.min(o.n, SIZE), `drop gave ${n}`);
            break;
          }
          case 'views': {
            const v = c.readableViews();
            let total = 0;
            for (const x of v) total += x.length;
            assert.ok(total <= SIZE, `views cover ${total} B`);
            break;
          }
          case 'arm':
            c.armData();
            p.armSpace();
            break;
          case 'fin':
            p.fin();
            finished = true;
            break;
          case 'hostile':
            applyScribble(scribbleHeaderOnly ? ctl : all, o.s);
            break;
        }
        assert.ok(c.readable() <= SIZE);
        assert.ok(p.freeSpace() <= SIZE);
        // Reading the flags never throws either.
        void c.fin;
        void c.peerReset;
        void p.peerClosed;
      }
      if (c.error || p.error) seen.corrupt++;
    }),
    OPTS,
  );
  // Not vacuous: the runs both moved bytes and reached the corrupt-index paths.
  assert.ok(seen.corrupt > 10 && seen.bytes > 0, JSON.stringify(seen));
});

test('event queue: opening a random or mutated header gives an end or BAD_LAYOUT', {
  timeout: 30_000,
}, () => {
  const CAP = 64;
  fc.assert(
    fc.property(
      fc.array(scribble, { maxLength: 8 }),
      fc.oneof(fc.constant(CAP), fc.integer({ min: -1, max: 1 << 25 })),
      fc.integer({ min: -1, max: 0x1_0000_0000 }),
      (scribbles, capacity, maxEntry) => {
        const buf = new ArrayBuffer(EVENT_QUEUE_HEADER_BYTES + CAP * 4 + 64);
        initEventQueue(buf, 0, CAP);
        const ctl = new Uint32Array(buf, 0, EVENT_QUEUE_HEADER_BYTES / 4);
        for (const s of scribbles) applyScribble(ctl, s);
        typed(LAYOUT_CODES, () => void new EventQueueConsumer(buf, 0, capacity, maxEntry));
        typed(LAYOUT_CODES, () => void new EventQueueProducer(buf, 0, capacity));
      },
    ),
    OPTS,
  );
});

type QueueOp =
  | { op: 'push'; v: number }
  | { op: 'drain'; max: number }
  | { op: 'arm' }
  | { op: 'hostile'; s: Scribble };

const queueOp: fc.Arbitrary<QueueOp> = fc.oneof(
  fc.record({ op: fc.constant('push' as const), v: fc.integer({ min: 0, max: 100 }) }),
  fc.record({ op: fc.constant('drain' as const), max: fc.integer({ min: 0, max: 300 }) }),
  fc.constant({ op: 'arm' as const }),
  fc.record({ op: fc.constant('hostile' as const), s: scribble }),
);

test('event queue: a peer scribbling over indices and entries yields only valid slots, rescan or -1', {
  timeout: 30_000,
}, () => {
  const CAP = 64;
  const MAX_SLOT = 63;
  const seen = { failed: 0, rescans: 0, entries: 0 };
  fc.assert(
    fc.property(fc.array(queueOp, { maxLength: 80 }), (ops) => {
      const buf = new ArrayBuffer(EVENT_QUEUE_HEADER_BYTES + CAP * 4);
      initEventQueue(buf, 0, CAP);
      const prod = new EventQueueProducer(buf, 0, CAP);
      const cons = new EventQueueConsumer(buf, 0, CAP, MAX_SLOT);
      const all = new Uint32Array(buf);
      let failed = false;
      for (const o of ops) {
        switch (o.op) {
          case 'push':
            prod.push(o.v % (MAX_SLOT + 1));
            prod.wakeNeeded();
            break;
          case 'drain': {
            let delivered = 0;
            const r = cons.drain((slot) => {
              delivered++;
              assert.ok(Number.isInteger(slot) && slot >= 0 && slot <= MAX_SLOT, `slot ${slot}`);
            }, o.max);
            if (r === -1) {
              if (!failed) seen.failed++;
              failed = true;
              assert.equal(cons.error?.code, 'ERR_FERRY_QUEUE_CORRUPT');
            } else if (r === EVENT_QUEUE_RESCAN) {
              seen.rescans++;
              assert.equal(delivered, 0);
            } else {
              seen.entries += r;
              assert.equal(r, delivered);
              assert.ok(r <= Math.min(o.max, CAP), `drained ${r}`);
            }
            if (failed)
              assert.equal(
                cons.drain(() => assert.fail('a failed queue delivers nothing')),
                -1,
              );
            break;
          }
          case 'arm':
            assert.equal(typeof cons.armWake(), 'boolean');
            break;
          case 'hostile':
            applyScribble(all, o.s);
            break;
        }
      }
    }),
    OPTS,
  );
  assert.ok(seen.failed > 10 && seen.rescans > 0 && seen.entries > 100, JSON.stringify(seen));
});
