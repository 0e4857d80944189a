import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fifoFootprint, initFifo } from './fifo.js';
import { FifoConsumer } from './fifo-consumer.js';
import {
  FIFO_HEAD_OFFSET,
  FIFO_MAGIC_OFFSET,
  FIFO_POLL_ID_OFFSET,
  FIFO_SIZE_OFFSET,
  FIFO_TAIL_OFFSET,
  FIFO_WANT_DATA_OFFSET,
  FIFO_WANT_SPACE_BYTES_OFFSET,
  FIFO_WANT_SPACE_OFFSET,
} from './fifo-layout.js';
import { FifoProducer } from './fifo-producer.js';

const OFFSET = 128;

function makeFifo(size = 256, buf: ArrayBufferLike = new SharedArrayBuffer(OFFSET + fifoFootprint(size))) {
  initFifo(buf, OFFSET, size);
  return { buf, p: new FifoProducer(buf, OFFSET, size), c: new FifoConsumer(buf, OFFSET, size) };
}

const bytes = (n: number, start = 0) => Uint8Array.from({ length: n }, (_, i) => (start + i) & 0xff);
const u32 = (buf: ArrayBufferLike) => new Uint32Array(buf, OFFSET, 48);

test('enqueue, dequeue, and partial writes when nearly full', () => {
  const { p, c } = makeFifo(256);
  assert.equal(p.freeSpace(), 256);
  assert.equal(p.enqueue(bytes(200)), 200);
  assert.equal(p.enqueue(bytes(100, 200)), 56, 'partial write');
  assert.equal(p.enqueue(bytes(1)), 0, 'full');
  assert.equal(c.readable(), 256);
  const out = new Uint8Array(300);
  assert.equal(c.dequeue(out), 256);
  assert.deepEqual(out.subarray(0, 256), bytes(256));
  assert.equal(c.dequeue(out), 0);
  assert.equal(p.freeSpace(), 256);
});

test('peek with skip, drop, and zero-copy views across the wrap', () => {
  const { p, c } = makeFifo(64);
  p.enqueue(bytes(48));
  c.drop(40); // head at 40
  assert.equal(p.enqueue(bytes(50, 100)), 50); // 8 old bytes + 50 new, wraps at 64
  const peeked = new Uint8Array(10);
  assert.equal(c.peek(peeked, 8), 10);
  assert.deepEqual(peeked, bytes(10, 100));
  assert.equal(c.peek(new Uint8Array(100), 55), 3);
  assert.equal(c.peek(new Uint8Array(4), 58), 0);
  const views = c.readableViews();
  assert.equal(views.length, 2);
  const joined = Uint8Array.from([...(views[0] ?? []), ...(views[1] ?? [])]);
  assert.deepEqual(joined, Uint8Array.from([...bytes(8, 40), ...bytes(50, 100)]));
  assert.equal(c.drop(1000), 58);
  assert.equal(c.readable(), 0);
  assert.equal(c.readableViews()[0]?.length, 0);
});

test("strings across the ring's end are encoded in place when each character is one byte", () => {
  // A fresh fifo with its tail 200 bytes into the ring and nothing unread: a 100-byte string has
  // 56 bytes before the ring's end.
  const at200 = () => {
    const f = makeFifo(256);
    assert.equal(f.p.enqueue(bytes(200)), 200);
    assert.equal(f.c.dequeue(new Uint8Array(256)), 200);
    return f;
  };
  const readAll = (c: FifoConsumer) => {
    const out = new Uint8Array(256);
    return Buffer.from(out.subarray(0, c.dequeue(out)));
  };
  const latin1 = 'caf\u00e9 \u00ff'.repeat(12).padEnd(100, 'x');
  const a = at200();
  assert.equal(a.p.enqueueString(latin1, 'latin1', 100), 100);
  assert.deepEqual(readAll(a.c), Buffer.from(latin1, 'latin1'));
  const ascii = 'GET /index.html HTTP/1.1\r\n'.repeat(4).slice(0, 100);
  for (const enc of ['utf8', 'ascii'] as const) {
    const f = at200();
    assert.equal(f.p.enqueueString(ascii, enc, 100), 100, enc);
    assert.equal(readAll(f.c).toString('latin1'), ascii, enc);
  }
  // Where a character may take two bytes the split could fall inside one: left to the caller.
  const u = at200();
  assert.equal(u.p.enqueueString('\u00e9'.repeat(50), 'utf8', 100), 0);
  assert.equal(u.c.readable(), 0, 'nothing published');
  assert.equal(u.p.enqueueString('\u00e9'.repeat(28), 'utf8', 56), 56, 'up to the end it fits in place');
  assert.equal(readAll(u.c).toString('utf8'), '\u00e9'.repeat(28));
});

test('traffic across the u32 index wrap (indices start near 0xFFFFFF00)', () => {
  const size = 256;
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  const ctl = u32(buf);
  ctl[FIFO_HEAD_OFFSET / 4] = 0xffff_ff00;
  ctl[FIFO_TAIL_OFFSET / 4] = 0xffff_ff00;
  const p = new FifoProducer(buf, OFFSET, size);
  const c = new FifoConsumer(buf, OFFSET, size);
  const out = new Uint8Array(97);
  let sent = 0;
  let got = 0;
  for (let round = 0; round < 200; round++) {
    const chunk = bytes(1 + ((round * 37) % 97), sent);
    sent += p.enqueue(chunk);
    const n = c.dequeue(out.subarray(0, 1 + ((round * 53) % 97)));
    for (let i = 0; i < n; i++) assert.equal(out[i], (got + i) & 0xff);
    got += n;
  }
  while (c.readable() > 0) got += c.dequeue(out);
  assert.equal(got, sent);
  assert.ok(sent > 0x100, 'traffic crossed the wrap');
  assert.ok((ctl[FIFO_TAIL_OFFSET / 4] as number) < 0x1_0000, 'tail wrapped past 2^32');
  assert.equal(p.error, null);
  assert.equal(c.error, null);
});

test('notifications: exactly one notify per arming, and arm re-checks', () => {
  const { buf, p, c } = makeFifo(128);
  const ctl = u32(buf);
  assert.equal(c.armData(), false, 'empty: may sleep');
  assert.equal(ctl[FIFO_WANT_DATA_OFFSET / 4], 1);
  p.enqueue(bytes(10));
  assert.equal(p.notifyNeeded(), true);
  p.enqueue(bytes(10));
  assert.equal(p.notifyNeeded(), false, 'coalesced');
  assert.equal(c.armData(), true, 'data is there: do not sleep');
  p.enqueue(bytes(108));
  assert.equal(p.armSpace(), false, 'full: may sleep');
  assert.equal(ctl[FIFO_WANT_SPACE_OFFSET / 4], 1);
  c.drop(1);
  assert.equal(c.spaceNotifyNeeded(), true);
  c.drop(1);
  assert.equal(c.spaceNotifyNeeded(), false);
  assert.equal(p.armSpace(), true, 'space is there');
  assert.equal(p.armSpace(10), false, 'not enough space');
});

test('a producer waiting for n free bytes is rung once n are free, once per arming', () => {
  const { buf, p, c } = makeFifo(128);
  const ctl = u32(buf);
  assert.equal(p.enqueue(bytes(128)), 128);
  assert.equal(p.armSpace(64), false, 'full: may sleep');
  assert.equal(ctl[FIFO_WANT_SPACE_BYTES_OFFSET / 4], 64);
  assert.equal(c.drop(40), 40);
  assert.equal(c.spaceNotifyNeeded(), false, '40 of 64 free: not yet');
  assert.equal(ctl[FIFO_WANT_SPACE_OFFSET / 4], 1, 'still armed');
  assert.equal(c.drop(24), 24);
  assert.equal(c.spaceNotifyNeeded(), true, '64 free: ring');
  assert.equal(c.drop(1), 1);
  assert.equal(c.spaceNotifyNeeded(), false, 'one ring per arming');
  // 64 free when it arms: the producer does not sleep.
  assert.equal(p.enqueue(bytes(1)), 1);
  assert.equal(p.armSpace(64), true);
  assert.equal(p.armSpace(65), false);
  // More than the size is taken as the size: an emptied fifo rings.
  assert.equal(p.enqueue(bytes(64)), 64);
  assert.equal(p.armSpace(1000), false);
  assert.equal(ctl[FIFO_WANT_SPACE_BYTES_OFFSET / 4], 128);
});

test('the free-space hint is only a hint: a peer that writes no amount, or a hostile one, is rung safely', () => {
  const { buf, p, c } = makeFifo(128);
  const ctl = u32(buf);
  // A producer that knows only the flag (amount 0): rung at the first free byte, as before.
  assert.equal(p.enqueue(bytes(128)), 128);
  Atomics.store(ctl, FIFO_WANT_SPACE_BYTES_OFFSET / 4, 0);
  Atomics.store(ctl, FIFO_WANT_SPACE_OFFSET / 4, 1);
  assert.equal(c.drop(1), 1);
  assert.equal(c.spaceNotifyNeeded(), true);
  // A hostile amount (above the size): no ring until the fifo is empty, then exactly one.
  Atomics.store(ctl, FIFO_WANT_SPACE_BYTES_OFFSET / 4, 0xffff_ffff);
  Atomics.store(ctl, FIFO_WANT_SPACE_OFFSET / 4, 1);
  assert.equal(c.drop(126), 126);
  assert.equal(c.spaceNotifyNeeded(), false);
  assert.equal(c.drop(1), 1);
  assert.equal(c.readable(), 0);
  assert.equal(c.spaceNotifyNeeded(), true);
  assert.equal(c.spaceNotifyNeeded(), false);
});

test('fin, reset and close are seen by the peer', () => {
  const { p, c } = makeFifo(64);
  p.enqueue(bytes(5));
  p.fin();
  assert.equal(p.enqueue(bytes(1)), -1, 'no writes after fin');
  assert.equal(c.fin, false, 'data still unread');
  assert.equal(c.armData(), true);
  c.drop(5);
  assert.equal(c.fin, true);
  assert.equal(c.peerReset, false);
  p.reset();
  assert.equal(c.peerReset, true);
  assert.equal(p.peerClosed, false);
  c.close();
  assert.equal(p.peerClosed, true);
});

test('construction validates the control plane size, offset and header', () => {
  const size = 128;
  const buf = new SharedArrayBuffer(OFFSET + fifoFootprint(size));
  initFifo(buf, OFFSET, size);
  const bad = { code: 'ERR_FERRY_SHM_BAD_LAYOUT' };
  assert.throws(() => new FifoProducer(buf, OFFSET, 256), bad); // does not fit / size mismatch
  assert.throws(() => new FifoConsumer(buf, OFFSET, 100), bad); // not a power of two
  assert.throws(() => new FifoConsumer(buf, OFFSET + 4, size), bad); // misaligned
  assert.throws(() => new FifoConsumer(buf, 0, size), bad); // no magic there
  const ctl = u32(buf);
  ctl[FIFO_SIZE_OFFSET / 4] = 64;
  assert.throws(() => new FifoConsumer(buf, OFFSET, size), /header says 64/);
  initFifo(buf, OFFSET, size);
  ctl[FIFO_MAGIC_OFFSET / 4] = 0;
  assert.throws(() => new FifoProducer(buf, OFFSET, size), /magic/);
  initFifo(buf, OFFSET, size);
  ctl[FIFO_TAIL_OFFSET / 4] = 1000;
  assert.throws(() => new FifoConsumer(buf, OFFSET, size), /inconsistent/);
});

test('a hostile producer index fails the consumer with ERR_FERRY_FIFO_CORRUPT, never a hang', () => {
  const cases = [
    (t: number) => (t + 1000) >>> 0, // beyond head + size
    (t: number) => (t - 1) >>> 0, // backwards
    () => 0x8000_0000, // wild
  ];
  for (const corrupt of cases) {
    const { buf, p, c } = makeFifo(256);
    p.enqueue(bytes(100));
    c.drop(50);
    const ctl = u32(buf);
    ctl[FIFO_TAIL_OFFSET / 4] = corrupt(ctl[FIFO_TAIL_OFFSET / 4] as number);
    const out = new Uint8Array(512);
    assert.equal(c.dequeue(out), -1);
    assert.equal(c.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
    assert.equal(c.readable(), 0);
    assert.equal(c.peek(out), -1);
    assert.equal(c.drop(1), -1);
    assert.equal(c.armData(), true, 'a failed fifo must not let its owner sleep');
  }
});

test('a hostile consumer index fails the producer, which then returns -1', () => {
  const { buf, p, c } = makeFifo(256);
  p.enqueue(bytes(256));
  c.drop(10);
  const ctl = u32(buf);
  ctl[FIFO_HEAD_OFFSET / 4] = 300; // past the tail
  assert.equal(p.enqueue(bytes(20)), -1);
  assert.equal(p.error?.code, 'ERR_FERRY_FIFO_CORRUPT');
  assert.equal(p.freeSpace(), 0);
  assert.equal(p.armSpace(), true);
});

test('a corrupted static line after construction changes nothing (private size copy)', () => {
  const { buf, p, c } = makeFifo(128);
  const ctl = u32(buf);
  ctl[FIFO_SIZE_OFFSET / 4] = 0xffff_ffff;
  ctl[FIFO_MAGIC_OFFSET / 4] = 0;
  assert.equal(p.enqueue(bytes(200)), 128);
  assert.equal(c.dequeue(new Uint8Array(200)), 128);
});

test('works over a plain ArrayBuffer too', () => {
  const size = 64;
  const { p, c } = makeFifo(size, new ArrayBuffer(OFFSET + fifoFootprint(size)));
  assert.equal(p.enqueue(bytes(10)), 10);
  const out = new Uint8Array(10);
  assert.equal(c.dequeue(out), 10);
  assert.deepEqual(out, bytes(10));
});

test('the consumer announces what it polls for; the producer reads any value a peer wrote', () => {
  const { buf, p, c } = makeFifo(256);
  assert.equal(p.peerPollId(), 0, 'a new fifo announces nothing');
  c.announcePoll(7);
  assert.equal(p.peerPollId(), 7);
  assert.equal(u32(buf)[FIFO_POLL_ID_OFFSET / 4], 7, 'in the consumer line');
  c.announcePoll(0);
  assert.equal(p.peerPollId(), 0);
  // A hostile or dead peer's word is only a number to compare with an id: nothing is validated.
  for (const junk of [0xffffffff, 0x80000000, 12345678]) {
    u32(buf)[FIFO_POLL_ID_OFFSET / 4] = junk;
    assert.equal(p.peerPollId(), junk);
  }
  // The data path does not look at it.
  assert.equal(p.enqueue(bytes(10)), 10);
  assert.equal(c.readable(), 10);
});
