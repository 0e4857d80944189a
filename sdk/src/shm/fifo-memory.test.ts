import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FerryError } from '../errors.js';
import { fifoFootprint, fifoMemory, initFifo, openFifo, rearmFifoAt } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import { FIFO_MAGIC_OFFSET, FIFO_TAIL_OFFSET } from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';

const SIZE = 256;
const A = 128;
const B = A + fifoFootprint(SIZE);

function twoFifos(): ArrayBuffer {
  const buf = new ArrayBuffer(B + fifoFootprint(SIZE));
  initFifo(buf, A, SIZE);
  initFifo(buf, B, SIZE);
  return buf;
}

test('fifoMemory refuses what cannot be a fifo in the buffer', () => {
  const buf = twoFifos();
  assert.equal(fifoMemory(buf, A + 4, SIZE), null, 'unaligned');
  assert.equal(fifoMemory(buf, B, SIZE * 2), null, 'runs past the end');
  assert.equal(fifoMemory(buf, A, 100), null, 'not a power of two');
  assert.equal(fifoMemory(buf, -64, SIZE), null, 'negative');
  assert.notEqual(fifoMemory(buf, B, SIZE), null);
});

test('kept views serve the next end of the same fifo, and only of it', () => {
  const buf = twoFifos();
  const mem = fifoMemory(buf, A, SIZE);
  assert.ok(mem);
  const p = new FifoProducer(buf, A, SIZE, mem);
  const c = new FifoConsumer(buf, A, SIZE, mem);
  assert.equal(p.memory.ctl, mem.ctl, 'the producer took the kept header view');
  assert.equal(c.memory.data, mem.data, 'the consumer took the kept data view');
  assert.equal(p.enqueue(Uint8Array.of(1, 2, 3)), 3);
  const out = new Uint8Array(8);
  assert.equal(c.dequeue(out), 3);
  assert.deepEqual(out.subarray(0, 3), Uint8Array.of(1, 2, 3));
  // Views of fifo A given for fifo B are not used: B gets its own.
  const other = openFifo(buf, B, SIZE, mem);
  assert.notEqual(other.ctl, mem.ctl);
  assert.equal(other.ctl.byteOffset, B);
  // Nor for another buffer of the same layout.
  const buf2 = twoFifos();
  assert.notEqual(openFifo(buf2, A, SIZE, mem).ctl, mem.ctl);
});

test('a fifo opened again with kept views is checked as a new one: hostile header words still fail', () => {
  const buf = twoFifos();
  const mem = fifoMemory(buf, A, SIZE);
  assert.ok(mem);
  new FifoProducer(buf, A, SIZE, mem);
  mem.ctl[FIFO_TAIL_OFFSET / 4] = SIZE * 3;
  assert.throws(
    () => new FifoConsumer(buf, A, SIZE, mem),
    (e: unknown) => {
      return (
        e instanceof FerryError && e.code === 'ERR_FERRY_SHM_BAD_LAYOUT' && /inconsistent/.test(e.message)
      );
    },
  );
  assert.equal(rearmFifoAt(mem.ctl, SIZE), true, 're-armed: indices back to 0');
  assert.equal(new FifoConsumer(buf, A, SIZE, mem).readable(), 0);
  mem.ctl[FIFO_MAGIC_OFFSET / 4] = 0xdead;
  assert.equal(rearmFifoAt(mem.ctl, SIZE), false, 'no magic: not re-armed');
  assert.throws(() => new FifoProducer(buf, A, SIZE, mem), /magic/);
  assert.equal(rearmFifoAt(new Uint32Array(buf, A, 4), SIZE), false, 'a view shorter than a header');
});
