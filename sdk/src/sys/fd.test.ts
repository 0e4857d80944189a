// Tests for fd.ts: pipes, eventfds, flags, dup, and errno -> FerryError.

import assert from 'node:assert/strict';
import { readlinkSync } from 'node:fs';
import { describe, it } from 'node:test';
import { FerryError } from '../errors.js';
import { F_GETFD, F_GETFL, FD_CLOEXEC, O_NONBLOCK } from './constants.js';
import {
  close,
  dup,
  eventfd,
  eventfdRead,
  eventfdWrite,
  pipe2,
  read,
  setCloexec,
  setNonBlocking,
  write,
} from './fd.js';
import { libc } from './libc.js';

const flags = (fd: number): number => libc.fcntl(fd, F_GETFL);
const fdFlags = (fd: number): number => libc.fcntl(fd, F_GETFD);

describe('fd', () => {
  it('close(-1) throws EBADF with errno and syscall', () => {
    assert.throws(
      () => close(-1),
      (err: unknown) =>
        err instanceof FerryError && err.code === 'EBADF' && err.errno === 9 && err.syscall === 'close',
    );
  });

  it('closing twice reports EBADF the second time', () => {
    const [r, w] = pipe2();
    close(r);
    close(w);
    assert.throws(() => close(r), { code: 'EBADF' });
  });

  it('rejects a non-integer fd as a programmer error', () => {
    assert.throws(() => close(1.5), { code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('pipe2 is always CLOEXEC; read returns -1 on EAGAIN and 0 at EOF', () => {
    const [r, w] = pipe2({ nonblock: true });
    try {
      assert.equal(fdFlags(r) & FD_CLOEXEC, FD_CLOEXEC);
      assert.equal(fdFlags(w) & FD_CLOEXEC, FD_CLOEXEC);
      assert.equal(flags(r) & O_NONBLOCK, O_NONBLOCK);
      const buf = new Uint8Array(8);
      assert.equal(read(r, buf), -1);
      assert.equal(write(w, new Uint8Array([7, 8, 9]).subarray(1)), 2);
      assert.equal(read(r, buf.subarray(4)), 2);
      assert.deepEqual([...buf.subarray(4, 6)], [8, 9]);
      close(w);
      assert.equal(read(r, buf), 0);
    } finally {
      close(r);
    }
  });

  it('write returns -1 when a non-blocking pipe is full', () => {
    const [r, w] = pipe2({ nonblock: true });
    try {
      const chunk = new Uint8Array(64 * 1024);
      let sawFull = false;
      for (let i = 0; i < 64 && !sawFull; i++) sawFull = write(w, chunk) === -1;
      assert.ok(sawFull);
    } finally {
      close(r);
      close(w);
    }
  });

  it('eventfd counts, reads null when empty, and supports semaphore mode', () => {
    const e = eventfd(0, { nonblock: true });
    const s = eventfd(2, { nonblock: true, semaphore: true });
    try {
      assert.equal(fdFlags(e) & FD_CLOEXEC, FD_CLOEXEC);
      assert.equal(eventfdRead(e), null);
      assert.equal(eventfdWrite(e), true);
      assert.equal(eventfdWrite(e, 41n), true);
      assert.equal(eventfdRead(e), 42n);
      assert.equal(eventfdRead(e), null);
      assert.equal(eventfdRead(s), 1n);
      assert.equal(eventfdRead(s), 1n);
      assert.equal(eventfdRead(s), null);
      // The counter saturates at 2^64 - 2: a write that would overflow would block.
      assert.equal(eventfdWrite(e, 0xffff_ffff_ffff_fffen), true);
      assert.equal(eventfdWrite(e, 1n), false);
      assert.throws(() => eventfdWrite(e, 0n), { code: 'ERR_OUT_OF_RANGE' });
    } finally {
      close(e);
      close(s);
    }
  });

  it('setNonBlocking, setCloexec and dup change the flags they say', () => {
    const [r, w] = pipe2();
    try {
      assert.equal(flags(r) & O_NONBLOCK, 0);
      setNonBlocking(r, true);
      assert.equal(flags(r) & O_NONBLOCK, O_NONBLOCK);
      setNonBlocking(r, false);
      assert.equal(flags(r) & O_NONBLOCK, 0);
      setCloexec(r, false);
      assert.equal(fdFlags(r) & FD_CLOEXEC, 0);
      setCloexec(r, true);
      assert.equal(fdFlags(r) & FD_CLOEXEC, FD_CLOEXEC);
      const d = dup(w);
      try {
        assert.notEqual(d, w);
        assert.equal(fdFlags(d) & FD_CLOEXEC, FD_CLOEXEC);
        assert.equal(readlinkSync(`/proc/self/fd/${d}`), readlinkSync(`/proc/self/fd/${w}`));
      } finally {
        close(d);
      }
    } finally {
      close(r);
      close(w);
    }
  });

  it('reports the failing syscall for fcntl-based helpers', () => {
    const [r, w] = pipe2();
    try {
      assert.throws(() => write(r, new Uint8Array(1)), { code: 'EBADF', syscall: 'write' });
      assert.throws(
        () => dup(1 << 30),
        (err: unknown) => err instanceof FerryError && err.code === 'EBADF' && err.syscall === 'fcntl',
      );
    } finally {
      close(r);
      close(w);
    }
  });
});
