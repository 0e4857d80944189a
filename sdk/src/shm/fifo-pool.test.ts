// The pool and reuse words of fast-connect pairs: every value read is hostile and every offset is
// checked before a view is made; a pair is taken again only when both ends let go and nothing locked
// it, and re-arming touches nothing but a real fifo's two index lines.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { fifoFootprint, initFifo, rearmFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import {
  POOL_FREE,
  POOL_TAKEN,
  poolEnd,
  poolLend,
  poolLock,
  poolRetake,
  poolReuseWord,
  poolSwap,
  REUSE_CLIENT_DONE,
  REUSE_GEN_SHIFT,
  REUSE_LOCKED,
  REUSE_SERVER_DONE,
  reuseGen,
} from './fifo-pool.js';
import { FifoProducer } from './fifo-producer.js';

const SIZE = 4096;

function pair(): { buf: SharedArrayBuffer; tx: number; rx: number } {
  const buf = new SharedArrayBuffer(2 * fifoFootprint(SIZE) + 128);
  const tx = 64;
  const rx = tx + fifoFootprint(SIZE);
  initFifo(buf, tx, SIZE);
  initFifo(buf, rx, SIZE);
  poolLend(buf, tx);
  return { buf, tx, rx };
}

const word = (buf: SharedArrayBuffer, off: number) => new Uint32Array(buf, off, 4);

test('bad offsets: nothing is viewed, every call says no', () => {
  const { buf } = pair();
  for (const off of [-64, 1, 63, buf.byteLength, buf.byteLength - 64, 2 ** 53, Number.NaN, 1.5]) {
    assert.equal(poolReuseWord(buf, off), -1, `${off}`);
    assert.equal(poolLock(buf, off), -1, `${off}`);
    assert.equal(poolEnd(buf, off, 0, REUSE_CLIENT_DONE), false, `${off}`);
    assert.equal(
      poolRetake(buf, off, off, () => assert.fail('re-armed at a bad offset')),
      -1,
    );
    assert.equal(rearmFifo(buf, off, SIZE), false, `${off}`);
  }
});

test('the reuse cycle: both ends let go, the client takes it again in the next generation', () => {
  const { buf, tx, rx } = pair();
  assert.equal(poolSwap(buf, tx, POOL_TAKEN), POOL_FREE);
  const p = new FifoProducer(buf, tx, SIZE);
  p.enqueue(new Uint8Array(300));
  p.fin();
  // Not idle yet: no re-arm, no new generation.
  let rearmed = 0;
  const rearm = () => {
    rearmed++;
    assert.equal(rearmFifo(buf, tx, SIZE), true);
    assert.equal(rearmFifo(buf, rx, SIZE), true);
  };
  assert.equal(poolRetake(buf, tx, rx, rearm), -1);
  assert.equal(poolEnd(buf, rx, 0, REUSE_CLIENT_DONE), true);
  assert.equal(poolEnd(buf, rx, 0, REUSE_CLIENT_DONE), false, 'an end lets go once');
  assert.equal(poolEnd(buf, rx, 1, REUSE_SERVER_DONE), false, 'another generation');
  assert.equal(poolRetake(buf, tx, rx, rearm), -1);
  assert.equal(poolEnd(buf, rx, 0, REUSE_SERVER_DONE), true);
  assert.equal(poolRetake(buf, tx, rx, rearm), 1);
  assert.equal(rearmed, 1);
  assert.equal(poolReuseWord(buf, rx), 1 << REUSE_GEN_SHIFT);
  // Empty again, no FIN: a new consumer reads nothing; the pool word is kept.
  const c = new FifoConsumer(buf, tx, SIZE);
  assert.equal(c.readable(), 0);
  assert.equal(c.fin, false);
  assert.equal(new Uint32Array(buf, tx, 4)[2], POOL_TAKEN);
});

test('a lock wins over both ends and over a retake', () => {
  const { buf, tx, rx } = pair();
  poolSwap(buf, tx, POOL_TAKEN);
  assert.equal(poolLock(buf, rx), 0);
  assert.equal(poolEnd(buf, rx, 0, REUSE_CLIENT_DONE), false);
  word(buf, rx)[2] = REUSE_CLIENT_DONE | REUSE_SERVER_DONE | REUSE_LOCKED;
  assert.equal(
    poolRetake(buf, tx, rx, () => assert.fail('re-armed a locked pair')),
    -1,
  );
  // A lock that lands between the re-arm and the swap makes the swap fail.
  word(buf, rx)[2] = REUSE_CLIENT_DONE | REUSE_SERVER_DONE;
  assert.equal(
    poolRetake(buf, tx, rx, () => poolLock(buf, rx)),
    -1,
  );
  assert.equal(poolReuseWord(buf, rx) & REUSE_LOCKED, REUSE_LOCKED);
});

test('generations wrap at 24 bits', () => {
  const { buf, tx, rx } = pair();
  poolSwap(buf, tx, POOL_TAKEN);
  word(buf, rx)[2] = ((0xff_ffff << REUSE_GEN_SHIFT) | REUSE_CLIENT_DONE | REUSE_SERVER_DONE) >>> 0;
  assert.equal(
    poolRetake(buf, tx, rx, () => {}),
    0,
  );
  assert.equal(reuseGen(poolReuseWord(buf, rx)), 0);
});

test('rearmFifo leaves anything that is not a fifo of that size untouched', () => {
  const { buf, tx } = pair();
  const before = new Uint8Array(buf).slice();
  word(buf, tx)[0] = 0x1234;
  assert.equal(rearmFifo(buf, tx, SIZE), false, 'bad magic');
  word(buf, tx)[0] = before[tx] ?? 0;
  const { buf: b2, tx: t2 } = pair();
  assert.equal(rearmFifo(b2, t2, SIZE * 2), false, 'size other than the header says');
  assert.equal(rearmFifo(b2, t2, 100), false, 'not a power of two');
});

test('any reuse word found: no throw, retake only from an idle unlocked word with the pool word TAKEN', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 0xffff_ffff }),
      fc.integer({ min: 0, max: 0xffff_ffff }),
      (pool, reuse) => {
        const { buf, tx, rx } = pair();
        word(buf, tx)[2] = pool;
        word(buf, rx)[2] = reuse;
        let rearmed = false;
        const gen = poolRetake(buf, tx, rx, () => {
          rearmed = true;
        });
        const idle =
          pool === POOL_TAKEN &&
          (reuse & (REUSE_CLIENT_DONE | REUSE_SERVER_DONE | REUSE_LOCKED)) ===
            (REUSE_CLIENT_DONE | REUSE_SERVER_DONE);
        assert.equal(rearmed, idle);
        assert.equal(gen >= 0, idle);
        if (idle) assert.equal(gen, (reuseGen(reuse) + 1) & 0xff_ffff);
      },
    ),
  );
});
