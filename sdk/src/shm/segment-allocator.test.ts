import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SegmentAllocator } from './segment-allocator.js';

test('allocates aligned, first fit, and reports used/free bytes', () => {
  const a = new SegmentAllocator(64, 64 + 4096);
  const x = a.alloc(100);
  const y = a.alloc(10, 256);
  assert.equal(x, 64);
  assert.equal(y % 256, 0);
  assert.equal(y, 256);
  assert.equal(a.usedBytes, 110);
  assert.equal(a.freeBytes, 4096 - 110);
  // The padding between x's end (164) and y (256) is still free and used by a small first fit.
  assert.equal(a.alloc(64, 64), 192);
});

test('coalesces neighbours back into one block', () => {
  const a = new SegmentAllocator(0, 1024);
  const blocks = [a.alloc(256), a.alloc(256), a.alloc(256), a.alloc(256)];
  assert.deepEqual(blocks, [0, 256, 512, 768]);
  assert.equal(a.alloc(1), -1);
  a.free(256);
  a.free(768);
  assert.equal(a.freeBlockCount, 2);
  a.free(512); // merges with both neighbours
  assert.equal(a.freeBlockCount, 1);
  assert.equal(a.alloc(768), 256);
  a.free(0);
  a.free(256);
  assert.equal(a.freeBlockCount, 1);
  assert.equal(a.usedBytes, 0);
  assert.equal(a.alloc(1024), 0);
});

test('exhaustion returns -1 and recovers after free', () => {
  const a = new SegmentAllocator(0, 64 * 10);
  const got: number[] = [];
  for (let i = 0; i < 20; i++) {
    const o = a.alloc(64);
    if (o === -1) break;
    got.push(o);
  }
  assert.equal(got.length, 10);
  assert.equal(a.alloc(64), -1);
  assert.equal(a.freeBytes, 0);
  a.free(got[3] as number);
  assert.equal(a.alloc(64), got[3]);
  assert.equal(a.alloc(65), -1);
});

test('double free and unknown offsets throw; bad arguments throw', () => {
  const a = new SegmentAllocator(0, 1024);
  const o = a.alloc(128);
  a.free(o);
  assert.throws(() => a.free(o), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => a.free(12), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => a.alloc(0), { code: 'ERR_OUT_OF_RANGE' });
  assert.throws(() => a.alloc(8, 3), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => new SegmentAllocator(10, 5), { code: 'ERR_OUT_OF_RANGE' });
});

test('random alloc/free keeps the accounting exact and ends fully coalesced', () => {
  const a = new SegmentAllocator(0, 1 << 20);
  const live = new Map<number, number>();
  let seed = 12345;
  const rnd = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    if (live.size > 0 && rnd(3) === 0) {
      const keys = [...live.keys()];
      const k = keys[rnd(keys.length)] as number;
      a.free(k);
      live.delete(k);
    } else {
      const bytes = 1 + rnd(4000);
      const o = a.alloc(bytes, 1 << rnd(8));
      if (o !== -1) {
        for (const [lo, n] of live) assert.ok(o + bytes <= lo || lo + n <= o, 'allocations overlap');
        live.set(o, bytes);
      }
    }
    if (live.size > 200) {
      for (const k of [...live.keys()].slice(0, 100)) {
        a.free(k);
        live.delete(k);
      }
    }
  }
  let used = 0;
  for (const n of live.values()) used += n;
  assert.equal(a.usedBytes, used);
  for (const k of [...live.keys()]) a.free(k);
  assert.equal(a.freeBlockCount, 1);
  assert.equal(a.freeBytes, 1 << 20);
});
