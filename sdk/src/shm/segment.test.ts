import assert from 'node:assert/strict';
import { test } from 'node:test';
import { addSeals, close, dup, ftruncate, getSeals, Mapping, memfdCreate, SEAL } from '../sys/index.js';
import { fifoFootprint, initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import { FifoProducer } from './fifo-producer.js';
import { SEGMENT_REQUIRED_SEALS, Segment } from './segment.js';
import { initSegmentHeader } from './segment-header.js';

const SIZE = 64 * 1024;

test('create seals the memfd, attach maps the same bytes', () => {
  const seg = Segment.create('ferry-test-seg', SIZE, { id: 42 });
  const peer = Segment.attach(dup(seg.fd), SIZE);
  try {
    assert.equal(getSeals(seg.fd) & SEGMENT_REQUIRED_SEALS, SEGMENT_REQUIRED_SEALS);
    assert.throws(() => ftruncate(seg.fd, SIZE / 2), { code: 'EPERM' });
    assert.equal(peer.id, 42);
    assert.equal(peer.isCreator, false);
    const off = seg.alloc(fifoFootprint(4096));
    assert.ok(off >= 64 && off % 64 === 0);
    initFifo(seg.buffer, off, 4096);
    const p = new FifoProducer(seg.buffer, off, 4096);
    const c = new FifoConsumer(peer.buffer, off, 4096);
    assert.equal(p.enqueue(new Uint8Array([1, 2, 3])), 3);
    const out = new Uint8Array(3);
    assert.equal(c.dequeue(out), 3);
    assert.deepEqual([...out], [1, 2, 3]);
    assert.throws(() => peer.alloc(64), { code: 'ERR_FERRY_NOT_SUPPORTED' });
    seg.free(off);
    assert.equal(seg.usedBytes, 0);
  } finally {
    peer.release();
    seg.release();
  }
  seg.release();
  assert.equal(seg.released, true);
  assert.throws(() => seg.buffer, { code: 'ERR_FERRY_MAPPING_RELEASED' });
});

function rawMemfd(seals: number, writeHeader = true): number {
  const fd = memfdCreate('ferry-test-raw', { allowSealing: true });
  ftruncate(fd, SIZE);
  if (writeHeader) {
    const m = Mapping.map(fd, SIZE);
    initSegmentHeader(m.buffer, SIZE, 1);
    m.release();
  }
  if (seals !== 0) addSeals(fd, seals);
  return fd;
}

test('attach rejects a memfd without SHRINK|GROW|SEAL seals', () => {
  for (const seals of [0, SEAL.SHRINK, SEAL.SHRINK | SEAL.GROW, SEAL.GROW | SEAL.SEAL]) {
    const fd = rawMemfd(seals);
    try {
      assert.throws(() => Segment.attach(fd, SIZE), { code: 'ERR_FERRY_SHM_NOT_SEALED' });
    } finally {
      close(fd);
    }
  }
});

test('attach rejects a wrong size or a bad header', () => {
  const fd = rawMemfd(SEGMENT_REQUIRED_SEALS);
  const blank = rawMemfd(SEGMENT_REQUIRED_SEALS, false);
  try {
    assert.throws(() => Segment.attach(fd, SIZE * 2), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
    assert.throws(() => Segment.attach(blank, SIZE), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
    const ok = Segment.attach(fd, SIZE);
    assert.equal(ok.size, SIZE);
    ok.release();
  } finally {
    close(blank);
  }
});
