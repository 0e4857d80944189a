// CtrlChannel over a real SEQPACKET socketpair and real wake pipes: when the peer is rung, and
// what the peer reads before it fails when the sender goes away.
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import type { FerryError } from '../errors.js';
import type { CtrlMessage } from '../proto/ctrl/messages.js';
import { Doorbell, dup, socketpair } from '../sys/index.js';
import { CtrlChannel, LAZY_RING_MS } from './channel.js';

interface End {
  ch: CtrlChannel;
  wake: Doorbell;
  got: CtrlMessage[];
  rings: number;
  closed: FerryError | null | undefined;
}

const opened: End[] = [];
afterEach(() => {
  for (const e of opened.splice(0)) {
    e.ch.close();
    e.wake.close();
  }
});

/** Two channel ends joined like an app and ferryd: each rings the other's wake pipe. */
function pair(): [End, End] {
  const [fa, fb] = socketpair('seqpacket', { nonblock: true });
  const mk = (fd: number): End => {
    const end: End = {
      ch: undefined as unknown as CtrlChannel,
      wake: Doorbell.create(),
      got: [],
      rings: 0,
      closed: undefined,
    };
    end.ch = new CtrlChannel(fd, {
      onMessage: (m) => end.got.push(m),
      onBadMessage: (err) => assert.fail(err),
      onClose: (err) => {
        end.closed = err;
      },
    });
    end.wake.onRing(() => end.rings++);
    return end;
  };
  const a = mk(fa);
  const b = mk(fb);
  // Each channel owns a copy of the other's ring end; the doorbell drops its own, so that the
  // owner's death closes the last writer and the other side sees 'end'.
  a.ch.useWakePipes(a.wake, dup(b.wake.ringFd));
  b.ch.useWakePipes(b.wake, dup(a.wake.ringFd));
  a.wake.dropRingFd();
  b.wake.dropRingFd();
  opened.push(a, b);
  return [a, b];
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

const close = (session: number): CtrlMessage => ({ t: 'close', id: 0, session });

describe('CtrlChannel rings', () => {
  it("'lazy' rings once, no sooner than LAZY_RING_MS, when nothing else rings", async () => {
    const [a, b] = pair();
    const t0 = performance.now();
    a.ch.send(close(1), [], 'lazy');
    a.ch.send(close(2), [], 'lazy');
    await until(() => b.got.length === 2, 'the lazy notices');
    assert.ok(performance.now() - t0 >= LAZY_RING_MS - 2, 'read before the lazy ring was due');
    assert.deepEqual(
      b.got.map((m) => m.t === 'close' && m.session),
      [1, 2],
    );
    await new Promise((r) => setTimeout(r, 3 * LAZY_RING_MS));
    assert.equal(b.rings, 1);
  });

  it("a 'now' send rings for the lazy ones before it, in order, and the lazy timer adds no ring", async () => {
    const [a, b] = pair();
    a.ch.send(close(1), [], 'lazy');
    a.ch.send({ t: 'ping', id: 7 });
    await until(() => b.got.length === 2, 'both messages');
    assert.deepEqual(
      b.got.map((m) => m.t),
      ['close', 'ping'],
    );
    await new Promise((r) => setTimeout(r, 3 * LAZY_RING_MS));
    assert.equal(b.rings, 1);
  });

  it('a peer that goes away is read to the end before the channel fails', async () => {
    const [a, b] = pair();
    a.ch.send(close(1), [], 'lazy');
    a.ch.send(close(2), [], 'lazy');
    // Gone before its lazy ring: its socket and its copy of b's ring end close.
    a.ch.close();
    await until(() => b.closed !== undefined, 'the channel to fail');
    assert.deepEqual(
      b.got.map((m) => m.t === 'close' && m.session),
      [1, 2],
    );
    assert.equal(b.closed?.code, 'ECONNRESET');
  });
});
