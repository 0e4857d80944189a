// Tests for doorbell.ts: rings coalesce per batch, 'end' when every writer is gone, exit behaviour.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Doorbell, ring } from './doorbell.js';
import { close, dup } from './fd.js';
import { runExitCheck } from './testing/peer.js';

describe('Doorbell', () => {
  it('calls onRing once for a burst of rings', async () => {
    const bell = Doorbell.create();
    try {
      let calls = 0;
      const rung = new Promise<void>((resolve) =>
        bell.onRing(() => {
          calls++;
          resolve();
        }),
      );
      for (let i = 0; i < 100; i++) assert.equal(ring(bell.ringFd), true);
      await rung;
      await new Promise((resolve) => setTimeout(resolve, 20));
      assert.equal(calls, 1);
    } finally {
      bell.close();
    }
  });

  it('ring() keeps returning true when the pipe is full (already rung)', () => {
    const bell = Doorbell.create({ unref: true });
    try {
      // 64 KiB pipe, one byte per ring: the loop cannot drain during this synchronous burst.
      for (let i = 0; i < 70_000; i++) assert.equal(ring(bell.ringFd), true);
    } finally {
      bell.close();
    }
  });

  it('onEnd runs once every write end is closed; ring() then reports false on EPIPE', async () => {
    const bell = Doorbell.create();
    const peerCopy = dup(bell.ringFd);
    try {
      const ended = new Promise<void>((resolve) => bell.onEnd(resolve));
      bell.dropRingFd();
      assert.equal(bell.ringFd, -1);
      assert.equal(ring(peerCopy), true);
      close(peerCopy);
      await ended;
    } finally {
      bell.close();
    }
    const gone = Doorbell.create();
    const w = dup(gone.ringFd);
    gone.close();
    try {
      assert.equal(ring(w), false);
    } finally {
      close(w);
    }
    assert.throws(() => ring(-1), { code: 'EBADF' });
  });

  it('does not keep the process alive after close()', async () => {
    assert.deepEqual(await runExitCheck('doorbell-close'), { out: 'woke\n', code: 0 });
  });

  it('with unref: true does not keep the process alive at all', async () => {
    assert.deepEqual(await runExitCheck('doorbell-unref'), { out: 'woke\n', code: 0 });
  });
});
