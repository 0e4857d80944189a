/** The fifo meters over plain memory: exact counts, u32 wrap, and hostile headers. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { FifoConsumer, type FifoPairRef, FifoProducer, fifoFootprint, initFifo } from '@ferry/sdk/internal';
import fc from 'fast-check';
import type { PairSegment } from '../segment/pair-segment.js';
import type { Session } from '../session/session.js';
import { STUCK_AFTER_MS, TrafficLedger } from './traffic.js';

const SIZE = 4096;
const HEAD = 64 / 4;
const TAIL = 128 / 4;

function setup() {
  const buf = new ArrayBuffer(2 * fifoFootprint(SIZE));
  const a2b = 0;
  const b2a = fifoFootprint(SIZE);
  initFifo(buf, a2b, SIZE);
  initFifo(buf, b2a, SIZE);
  // ferryd reads fifo headers through windows of the segment (PairSegment#fifoHeader): here, all of it.
  const seg = {
    id: 7,
    segment: { buffer: buf, released: false },
    fifoHeader: () => ({ buffer: buf, base: 0 }),
  } as unknown as PairSegment;
  const end = (id: number, tx: number, rx: number) => ({
    session: { id, segmentId: 7, transport: 'ct' } as unknown as Session,
    ref: { segment: 7, txOffset: tx, rxOffset: rx, txSize: SIZE, rxSize: SIZE, slot: 0 } as FifoPairRef,
  });
  return { buf, seg, a2b, b2a, a: end(1, a2b, b2a), b: end(2, b2a, a2b) };
}

describe('TrafficLedger', () => {
  test('counts what goes through a cut-through pair, each byte once per direction', () => {
    const { buf, seg, a2b, b2a, a, b } = setup();
    const ledger = new TrafficLedger();
    ledger.open(a.session, seg, a.ref, 0);
    ledger.open(b.session, seg, b.ref, 0);
    const p = new FifoProducer(buf, a2b, SIZE);
    const c = new FifoConsumer(buf, a2b, SIZE);
    const back = new FifoProducer(buf, b2a, SIZE);
    const chunk = new Uint8Array(1000);
    const out = new Uint8Array(4096);
    let sent = 0;
    for (let i = 0; i < 50; i++) {
      sent += p.enqueue(chunk);
      c.dequeue(out);
      if (i % 7 === 0) ledger.sample(i);
    }
    back.enqueue(chunk.subarray(0, 123));
    ledger.sample(100);
    const va = ledger.view(a.session, a.ref, 100);
    assert.equal(va.tx?.bytes, sent);
    assert.equal(va.rx?.bytes, 0, 'a has read nothing of what b sent');
    assert.equal(va.rx?.fill, 123);
    const vb = ledger.view(b.session, b.ref, 100);
    assert.equal(vb.rx?.bytes, sent);
    assert.equal(vb.tx?.bytes, 123);
    assert.deepEqual(ledger.totals().get('ct'), { written: sent + 123, read: sent });
    assert.equal(ledger.queued().get('ct'), 123);
    // Both ends leave: the totals stay, the meters go.
    ledger.close(a.session, a.ref, 200);
    ledger.close(b.session, b.ref, 200);
    assert.equal(ledger.health().fifos, 0);
    assert.deepEqual(ledger.totals().get('ct'), { written: sent + 123, read: sent });
  });

  test('indices going round 2^32 are counted across the wrap', () => {
    const { buf, seg, a } = setup();
    const ledger = new TrafficLedger();
    ledger.open(a.session, seg, a.ref, 0);
    const words = new Uint32Array(buf, a.ref.txOffset, 48);
    let idx = 0;
    for (let i = 1; i <= 6; i++) {
      idx = (idx + 2 ** 30) >>> 0; // a peer moving 1 GiB between samples, reader keeping up
      words[TAIL] = idx;
      words[HEAD] = idx;
      ledger.sample(i);
    }
    assert.equal(ledger.view(a.session, a.ref).tx?.bytes, 6 * 2 ** 30);
    assert.equal(ledger.view(a.session, a.ref).tx?.error, null);
  });

  test('a fifo full with nothing consumed becomes stuck; consuming clears it', () => {
    const { buf, seg, a } = setup();
    const ledger = new TrafficLedger();
    ledger.open(a.session, seg, a.ref, 0);
    const words = new Uint32Array(buf, a.ref.txOffset, 48);
    words[TAIL] = SIZE;
    ledger.sample(1000);
    assert.equal(ledger.view(a.session, a.ref, 1000).tx?.stuck, false);
    ledger.sample(1000 + STUCK_AFTER_MS);
    assert.equal(ledger.view(a.session, a.ref, 1000 + STUCK_AFTER_MS).tx?.stuck, true);
    assert.equal(ledger.health(1000 + STUCK_AFTER_MS).stuck, 1);
    words[HEAD] = 1;
    words[TAIL] = SIZE + 1;
    ledger.sample(1001 + STUCK_AFTER_MS);
    assert.equal(ledger.view(a.session, a.ref, 1001 + STUCK_AFTER_MS).tx?.stuck, false);
  });

  test('inconsistent headers are flagged, counting stops, nothing throws', () => {
    const cases: [string, (w: Uint32Array) => void, RegExp][] = [
      ['magic', (w) => (w[0] = 0xdead), /magic/],
      ['size', (w) => (w[1] = SIZE * 2), /size/],
      ['overfull', (w) => (w[TAIL] = SIZE + 1), /fill/],
      ['tail back', (w) => (w[TAIL] = 0xffff_fff0), /fill|backwards/],
      ['head past tail', (w) => (w[HEAD] = 200), /fill/],
    ];
    for (const [what, scribble, why] of cases) {
      const { buf, seg, a } = setup();
      const ledger = new TrafficLedger();
      ledger.open(a.session, seg, a.ref, 0);
      const w = new Uint32Array(buf, a.ref.txOffset, 48);
      w[TAIL] = 100;
      ledger.sample(1);
      scribble(w);
      ledger.sample(2);
      const v = ledger.view(a.session, a.ref, 2).tx;
      assert.match(v?.error ?? '', why, what);
      assert.equal(v?.bytes, 100, what);
      w[TAIL] = 5000; // no longer counted
      ledger.sample(3);
      assert.equal(ledger.view(a.session, a.ref, 3).tx?.bytes, 100, what);
      assert.equal(ledger.health().corrupt, 1, what);
    }
  });

  test('a released segment is no longer read: the last sample stands', () => {
    const { buf, seg, a } = setup();
    const ledger = new TrafficLedger();
    ledger.open(a.session, seg, a.ref, 0);
    new Uint32Array(buf, a.ref.txOffset, 48)[TAIL] = 10;
    ledger.sample(1);
    (seg.segment as unknown as { released: boolean }).released = true;
    new Uint32Array(buf, a.ref.txOffset, 48)[TAIL] = 20;
    ledger.close(a.session, a.ref, 2);
    assert.equal(ledger.totals().get('ct')?.written, 10);
  });

  test('random header words from a hostile peer: totals stay finite non-negative integers', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 47 }), fc.integer({ min: 0, max: 0xffff_ffff })), {
          maxLength: 40,
        }),
        (writes) => {
          const { buf, seg, a } = setup();
          const ledger = new TrafficLedger();
          ledger.open(a.session, seg, a.ref, 0);
          const w = new Uint32Array(buf, a.ref.txOffset, 48);
          for (const [i, [word, value]] of writes.entries()) {
            w[word] = value;
            ledger.sample(i);
          }
          const t = ledger.totals().get('ct');
          for (const n of [t?.written, t?.read]) assert.ok(Number.isSafeInteger(n) && (n as number) >= 0);
          const v = ledger.view(a.session, a.ref, writes.length).tx;
          assert.ok(v && v.fill >= 0 && (v.error !== null || v.fill <= SIZE));
        },
      ),
      { numRuns: 500 },
    );
  });
});
