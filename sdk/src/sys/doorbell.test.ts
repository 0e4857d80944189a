// Tests for doorbell.ts: rings coalesce per batch, 'end' when every writer is gone, exit behaviour.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Doorbell, RING_RECORD_BYTES, RING_TAG, ring } from './doorbell.js';
import { close, dup, pipe2, read, write } from './fd.js';
import { monoNs32 } from './mono-clock.js';
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
      // 64 KiB pipe, 8 bytes per ring: the loop cannot drain during this synchronous burst.
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

  it('a ring is a tagged 8-byte record; one ring in 32 carries the clock', () => {
    const [r, w] = pipe2({ nonblock: true });
    try {
      for (let i = 0; i < 64; i++) assert.equal(ring(w), true);
      const buf = new Uint8Array(1024);
      assert.equal(read(r, buf), 64 * RING_RECORD_BYTES);
      const words = new Uint32Array(buf.buffer, 0, 128);
      const stamps: number[] = [];
      for (let i = 0; i < 64; i++) {
        assert.equal(words[2 * i], RING_TAG);
        const s = words[2 * i + 1] ?? 0;
        if (s !== 0) stamps.push(((monoNs32() - s) >>> 0) / 1e6);
      }
      assert.equal(stamps.length, 2, 'two of 64 rings stamped');
      // Their age is on this process's clock: stamped a moment ago, not from the future (which
      // would read as ~4,295 ms).
      for (const ms of stamps) assert.ok(ms >= 0 && ms < 1000, `${ms} ms`);
    } finally {
      close(r);
      close(w);
    }
  });

  /** Writes `bytes` into a fresh doorbell and returns ringAgeMs as its onRing callback saw it. */
  const ageSeen = async (bytes: Uint8Array): Promise<number> => {
    const bell = Doorbell.create();
    try {
      const seen = new Promise<number>((resolve) => bell.onRing(() => resolve(bell.ringAgeMs)));
      assert.equal(write(bell.ringFd, bytes), bytes.byteLength);
      return await seen;
    } finally {
      bell.close();
    }
  };
  const record = (tag: number, stamp: number) => new Uint8Array(new Uint32Array([tag, stamp]).buffer);

  it('ringAgeMs: the age of a stamped first record; NaN for unstamped, foreign or short ones', async () => {
    const age = await ageSeen(record(RING_TAG, monoNs32()));
    assert.ok(age >= 0 && age < 1000, `${age} ms`);
    assert.ok(Number.isNaN(await ageSeen(record(RING_TAG, 0))), 'unstamped');
    assert.ok(Number.isNaN(await ageSeen(new Uint8Array([1]))), 'a one-byte ring of an older build');
    assert.ok(Number.isNaN(await ageSeen(record(0x01010101, monoNs32()))), 'not tagged');
    // A stamp from the future reads as about 4.3 s: bounded, and far above what WakeCost believes.
    const future = await ageSeen(record(RING_TAG, (monoNs32() + 5_000_000) >>> 0));
    assert.ok(future > 4000 && future < 4295, `${future} ms`);
  });

  it('any bytes a peer writes still ring, and ringAgeMs is NaN or within 0..4,295 ms', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.boolean(),
        async (bytes, tagged) => {
          if (tagged && bytes.byteLength >= 4) new DataView(bytes.buffer).setUint32(0, RING_TAG, true);
          const age = await ageSeen(bytes);
          assert.ok(Number.isNaN(age) || (age >= 0 && age <= 4295), `${age}`);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('does not keep the process alive after close()', async () => {
    assert.deepEqual(await runExitCheck('doorbell-close'), { out: 'woke\n', code: 0 });
  });

  it('with unref: true does not keep the process alive at all', async () => {
    assert.deepEqual(await runExitCheck('doorbell-unref'), { out: 'woke\n', code: 0 });
  });
});
