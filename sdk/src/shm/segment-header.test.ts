import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  SEGMENT_HEADER_SIZE_OFFSET,
  SEGMENT_MAGIC_OFFSET,
  SEGMENT_SIZE_OFFSET,
  SEGMENT_VERSION_OFFSET,
} from './layout.js';
import { checkSegmentHeader, initSegmentHeader } from './segment-header.js';

function fresh(size = 4096): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(size);
  initSegmentHeader(buf, size, 7);
  return buf;
}

test('a written header validates and reports size and id', () => {
  assert.deepEqual(checkSegmentHeader(fresh(), 4096), { sizeBytes: 4096, headerBytes: 64, id: 7 });
});

test('bad magic, version, header size or segment size -> ERR_FERRY_SHM_BAD_LAYOUT', () => {
  for (const [offset, value, re] of [
    [SEGMENT_MAGIC_OFFSET, 0xdeadbeef, /magic/],
    [SEGMENT_VERSION_OFFSET, 2, /version/],
    [SEGMENT_HEADER_SIZE_OFFSET, 128, /header size/],
    [SEGMENT_SIZE_OFFSET, 8192, /size 8192/],
  ] as const) {
    const buf = fresh();
    new DataView(buf).setUint32(offset, value, true);
    assert.throws(
      () => checkSegmentHeader(buf, 4096),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_FERRY_SHM_BAD_LAYOUT');
        assert.match(err.message, re);
        return true;
      },
    );
  }
});

test('expected sizes that do not match the mapping or are invalid are rejected', () => {
  const buf = fresh();
  assert.throws(() => checkSegmentHeader(buf, 8192), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
  assert.throws(() => checkSegmentHeader(buf, 4000), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
  assert.throws(() => checkSegmentHeader(new ArrayBuffer(4096), 4096), { code: 'ERR_FERRY_SHM_BAD_LAYOUT' });
  assert.throws(() => initSegmentHeader(new ArrayBuffer(64), 64, 1), { code: 'ERR_OUT_OF_RANGE' });
});
