// Tests for memfd.ts: creation, size, and seals.

import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FerryError } from '../errors.js';
import { close } from './fd.js';
import { addSeals, fstatSize, ftruncate, getSeals, memfdCreate, SEAL } from './memfd.js';

describe('memfd', () => {
  it('creates a named memfd and reports its size', () => {
    const fd = memfdCreate('ferry-test');
    try {
      assert.match(readlinkSync(`/proc/self/fd/${fd}`), /^\/memfd:ferry-test/);
      assert.equal(fstatSize(fd), 0);
      ftruncate(fd, 1 << 20);
      assert.equal(fstatSize(fd), 1 << 20);
    } finally {
      close(fd);
    }
  });

  it('without allowSealing the memfd is sealed against sealing', () => {
    const fd = memfdCreate('ferry-nosealing');
    try {
      assert.equal(getSeals(fd) & SEAL.SEAL, SEAL.SEAL);
      assert.throws(() => addSeals(fd, SEAL.GROW), { code: 'EPERM', syscall: 'fcntl' });
    } finally {
      close(fd);
    }
  });

  it('after SHRINK|GROW|SEAL, ftruncate and addSeals fail with EPERM', () => {
    const fd = memfdCreate('ferry-sealed', { allowSealing: true });
    try {
      ftruncate(fd, 65536);
      assert.equal(getSeals(fd), 0);
      addSeals(fd, SEAL.SHRINK | SEAL.GROW | SEAL.SEAL);
      assert.equal(getSeals(fd), SEAL.SHRINK | SEAL.GROW | SEAL.SEAL);
      for (const size of [4096, 1 << 20]) {
        assert.throws(
          () => ftruncate(fd, size),
          (err: unknown) =>
            err instanceof FerryError &&
            err.code === 'EPERM' &&
            err.errno === 1 &&
            err.syscall === 'ftruncate',
        );
      }
      assert.equal(fstatSize(fd), 65536);
      assert.throws(() => addSeals(fd, SEAL.WRITE), { code: 'EPERM' });
    } finally {
      close(fd);
    }
  });

  it('rejects names the kernel would refuse', () => {
    assert.throws(() => memfdCreate('x'.repeat(250)), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => memfdCreate('a\0b'), { code: 'ERR_INVALID_ARG_VALUE' });
  });
});
