// A subscriber against a topic segment with no ferryd: the interleavings of ferryd opening a
// publisher slot that a subscriber in another process can observe, replayed step by step.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { Attachment } from '../app/attachment.js';
import { encodePlain } from '../proto/message-values.js';
import { storeRelease } from '../shm/atomics.js';
import {
  SLOT_EPOCH,
  SLOT_GONE,
  SLOT_LAST,
  SLOT_LIVE,
  SLOT_SEQ,
  SLOT_STATE,
  SLOT_TAIL,
  TOPIC_FLAGS_OFFSET,
  TOPIC_OPENS_OFFSET,
  TOPIC_POLICY,
} from '../shm/topic-layout.js';
import { TopicRingWriter, TopicSegment } from '../shm/topic-ring.js';
import { dup } from '../sys/fd.js';
import {
  leaveOpensOdd,
  runScribbleOp,
  scribbleFreeEpoch,
  scribblePrograms,
} from './testing/topic-scribbles.js';
import { Subscriber } from './topics.js';

/** Just what a Subscriber asks of its attachment; notices go nowhere. */
function fakeAttachment(): Attachment {
  const fake = {
    ref() {},
    unref() {},
    addPoller() {},
    removePoller() {},
    kick() {},
    on() {},
    off() {},
    notify() {},
  };
  return fake as unknown as Attachment;
}

function subscriberOn(seg: TopicSegment): Subscriber {
  return new Subscriber('t', { att: fakeAttachment(), session: 1, seg, index: 0, fds: [] }, {});
}

/** A subscriber of `seg` (wake bit 0) that puts each value it takes into `got`. */
function collectingSubscriber(seg: TopicSegment): { sub: Subscriber; got: unknown[] } {
  const got: unknown[] = [];
  const link = { att: fakeAttachment(), session: 1, seg, index: 0, fds: [] };
  return { sub: new Subscriber('t', link, { onMessage: (v) => got.push(v) }), got };
}

describe('a subscriber and OPENS (slots given to publishers, kept by ferryd)', () => {
  it('while OPENS is unchanged a poll loads no EPOCH; a slot given away bumps it and is read from its first message', () => {
    const seg = TopicSegment.create('t', 8, 4096);
    try {
      const { sub, got } = collectingSubscriber(seg);
      let loads = 0;
      const slotEpoch = seg.slotEpoch.bind(seg);
      seg.slotEpoch = (i: number) => {
        loads++;
        return slotEpoch(i);
      };
      seg.openSlot(3);
      new TopicRingWriter(seg, 3).write(encodePlain({ v: 1 }));
      assert.equal(sub.poll(), 1);
      assert.equal(loads, 8, 'OPENS moved: every slot looked at once');
      loads = 0;
      for (let k = 0; k < 5; k++) sub.poll();
      assert.equal(sub.arm(), false);
      assert.equal(loads, 0, 'OPENS unchanged: no EPOCH loaded');
      seg.closeSlot(3, SLOT_GONE);
      seg.openSlot(3);
      new TopicRingWriter(seg, 3).write(encodePlain({ v: 2 }));
      assert.equal(sub.arm(), true, 'a slot given away is work');
      assert.equal(sub.poll(), 1);
      assert.deepEqual(got, [{ v: 1 }, { v: 2 }]);
      assert.equal(sub.dropped, 0);
    } finally {
      seg.release();
    }
  });

  it('a segment of a ferryd that does not keep OPENS (no flag): every poll looks at every EPOCH', () => {
    const made = TopicSegment.create('t', 2, 4096);
    made.words[TOPIC_FLAGS_OFFSET / 4] = 0;
    const seg = TopicSegment.attach(dup(made.fd));
    try {
      assert.equal(seg.tracksOpens, false);
      const got: unknown[] = [];
      const sub = new Subscriber(
        't',
        { att: fakeAttachment(), session: 1, seg, index: 0, fds: [] },
        {
          onMessage: (v) => got.push(v),
        },
      );
      sub.poll();
      // Such a ferryd's openSlot: EPOCH and LIVE, OPENS untouched.
      const slot = seg.slotWord(1);
      Atomics.add(seg.words, slot + SLOT_EPOCH / 4, 1);
      storeRelease(seg.words, slot + SLOT_STATE / 4, SLOT_LIVE);
      new TopicRingWriter(seg, 1).write(encodePlain({ v: 'old ferryd' }));
      assert.equal(sub.arm(), true);
      assert.equal(sub.poll(), 1);
      assert.deepEqual(got, [{ v: 'old ferryd' }]);
    } finally {
      seg.release();
      made.release();
    }
  });
});

describe('a subscriber and a publisher slot being opened', () => {
  it('polled between the slot’s new epoch and its LIVE state, it still reads the new publisher from its first message', async () => {
    const seg = TopicSegment.create('t', 2, 4096);
    try {
      const sub = subscriberOn(seg);
      // ferryd's openSlot bumps EPOCH (inside OPENS's odd bracket), then stores STATE = LIVE. A
      // subscriber in another process may poll in between (CI: ferryd lost its CPU right there
      // while the test process polled).
      const slot = seg.slotWord(0);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      Atomics.add(seg.words, slot + SLOT_EPOCH / 4, 1);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      assert.equal(sub.poll(), 0);
      assert.equal(sub.arm(), true, 'a slot still being opened is work pending, not a reason to sleep');
      storeRelease(seg.words, slot + SLOT_STATE / 4, SLOT_LIVE);
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ v: 1 }));
      w.write(encodePlain({ v: 2 }));
      assert.equal(sub.poll(), 2);
      const it = sub[Symbol.asyncIterator]();
      assert.deepEqual(await it.next(), { done: false, value: { v: 1 } });
      assert.deepEqual(await it.next(), { done: false, value: { v: 2 } });
      assert.equal(sub.dropped, 0);
      assert.equal(sub.arm(), false, 'nothing pending once read');
    } finally {
      seg.release();
    }
  });

  it('subscribing between a slot’s new epoch and its LIVE state, it reads that publisher from its first message', async () => {
    const seg = TopicSegment.create('t', 2, 4096);
    try {
      const slot = seg.slotWord(0);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      Atomics.add(seg.words, slot + SLOT_EPOCH / 4, 1);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      const sub = subscriberOn(seg);
      storeRelease(seg.words, slot + SLOT_STATE / 4, SLOT_LIVE);
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ v: 'first' }));
      assert.equal(sub.poll(), 1);
      const it = sub[Symbol.asyncIterator]();
      assert.deepEqual(await it.next(), { done: false, value: { v: 'first' } });
    } finally {
      seg.release();
    }
  });

  it('what a subscriber lost to a publisher stays counted after a new publisher takes that slot', () => {
    const seg = TopicSegment.create('t', 1, 4096);
    try {
      seg.openSlot(0);
      const sub = subscriberOn(seg);
      const drops: number[] = [];
      sub.on('drop', (n: number) => drops.push(n));
      const w = new TopicRingWriter(seg, 0);
      for (let i = 0; i < 500; i++) w.write(encodePlain({ i }));
      sub.poll();
      const lost = sub.dropped;
      assert.ok(lost > 0, 'lapped');
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      const w2 = new TopicRingWriter(seg, 0);
      w2.write(encodePlain({ again: 1 }));
      sub.poll();
      assert.equal(sub.dropped, lost);
      assert.deepEqual(drops, [lost], "one 'drop', never a negative one");
    } finally {
      seg.release();
    }
  });

  it('a slot given to a new publisher after its last one left, polled between its new epoch and LIVE: read from the first message, nothing lost or repeated', async () => {
    const seg = TopicSegment.create('t', 1, 4096);
    try {
      seg.openSlot(0);
      const sub = subscriberOn(seg);
      const it = sub[Symbol.asyncIterator]();
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ old: 1 }));
      assert.equal(sub.poll(), 1);
      assert.deepEqual(await it.next(), { done: false, value: { old: 1 } });
      seg.closeSlot(0, SLOT_GONE);
      // openSlot step by step: OPENS odd, indices zeroed, EPOCH bumped, OPENS even, then LIVE. The
      // slot reads GONE, not FREE, in between: the subscriber takes the new epoch at once, with a
      // reader at the start of indices already zeroed (which is why they are zeroed before the bump).
      const slot = seg.slotWord(0);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      for (const word of [SLOT_TAIL, SLOT_SEQ, SLOT_LAST]) Atomics.store(seg.words, slot + word / 4, 0);
      Atomics.add(seg.words, slot + SLOT_EPOCH / 4, 1);
      Atomics.add(seg.words, TOPIC_OPENS_OFFSET / 4, 1);
      assert.equal(sub.poll(), 0);
      storeRelease(seg.words, slot + SLOT_STATE / 4, SLOT_LIVE);
      const w2 = new TopicRingWriter(seg, 0);
      w2.write(encodePlain({ v: 1 }));
      w2.write(encodePlain({ v: 2 }));
      assert.equal(sub.poll(), 2);
      assert.deepEqual(await it.next(), { done: false, value: { v: 1 } });
      assert.deepEqual(await it.next(), { done: false, value: { v: 2 } });
      assert.equal(sub.poll(), 0, 'nothing read twice');
      assert.equal(sub.dropped, 0);
    } finally {
      seg.release();
    }
  });

  it('a slot opened whole before the first poll is read from its first message', async () => {
    const seg = TopicSegment.create('t', 2, 4096);
    try {
      const sub = subscriberOn(seg);
      seg.openSlot(1);
      const w = new TopicRingWriter(seg, 1);
      w.write(encodePlain({ v: 'a' }));
      assert.equal(sub.poll(), 1);
      const it = sub[Symbol.asyncIterator]();
      assert.deepEqual(await it.next(), { done: false, value: { v: 'a' } });
    } finally {
      seg.release();
    }
  });

  it('arm() with a record already waiting does not touch the wake words; with none it arms', () => {
    const seg = TopicSegment.create('t', 2, 4096);
    try {
      seg.openSlot(0);
      const sub = subscriberOn(seg);
      const w = new TopicRingWriter(seg, 0);
      let armed = 0;
      const armWake = seg.armWake.bind(seg);
      seg.armWake = (bit: number) => {
        armed++;
        armWake(bit);
      };
      w.write(encodePlain(1));
      assert.equal(sub.arm(), true, 'work: do not sleep');
      assert.equal(armed, 0, 'and no arming for it');
      assert.equal(sub.poll(), 1);
      assert.equal(sub.arm(), false, 'nothing: sleep');
      assert.equal(armed, 1);
      assert.ok(seg.wakeNeeded(), 'armed: a publisher sees the bit');
    } finally {
      seg.release();
    }
  });
});

/**
 * A subscriber whose poll loads slot 0's EPOCH (or OPENS, which it loads first, and then skips the
 * EPOCHs when it reads as before) and then loses its CPU: meanwhile ferryd takes the slot from its
 * publisher and gives it to a new one, which writes `write`'s records. Replayed by running those
 * steps inside the poll's first load of either, after the value is read.
 */
function takeoverAfterEpochLoad(seg: TopicSegment, write: (w: TopicRingWriter) => void): void {
  const slotEpoch = seg.slotEpoch.bind(seg);
  let done = false;
  const takeover = () => {
    if (done) return;
    done = true;
    seg.closeSlot(0, SLOT_GONE);
    seg.openSlot(0);
    write(new TopicRingWriter(seg, 0));
  };
  seg.slotEpoch = (i: number) => {
    const epoch = slotEpoch(i);
    takeover();
    return epoch;
  };
  Object.defineProperty(seg, 'opens', {
    configurable: true,
    get: () => {
      const opens = Atomics.load(seg.words, TOPIC_OPENS_OFFSET / 4);
      takeover();
      return opens;
    },
  });
}

describe('a subscriber descheduled between a slot’s EPOCH and its ring', () => {
  for (const [what, olds, news] of [
    ['the new publisher wrote past where the old one stopped', 2, 4],
    ['the new publisher wrote less than the old one (the reader sees a lap)', 6, 2],
  ] as const) {
    it(`${what}: each of its messages is delivered once, nothing counted lost`, () => {
      const seg = TopicSegment.create('t', 1, 4096);
      try {
        seg.openSlot(0);
        const { sub, got } = collectingSubscriber(seg);
        const w = new TopicRingWriter(seg, 0);
        // Records of one size for both publishers (16 bytes each), so the old reader's position
        // falls on a record boundary of the new one's: what it read there would decode cleanly.
        for (let i = 1; i <= olds; i++) w.write(encodePlain({ o: i }));
        assert.equal(sub.poll(), olds);
        got.length = 0;
        takeoverAfterEpochLoad(seg, (w2) => {
          for (let i = 1; i <= news; i++) w2.write(encodePlain({ n: i }));
        });
        for (let polls = 0; polls < 4; polls++) sub.poll();
        const want = Array.from({ length: news }, (_, i) => ({ n: i + 1 }));
        assert.deepEqual(got, want);
        assert.equal(sub.dropped, 0);
      } finally {
        seg.release();
      }
    });
  }
});

describe('a subscriber and a publisher that left before it was read to the end', () => {
  it('what the previous publisher wrote and the subscriber had not read is counted lost once the slot changes hands', () => {
    const seg = TopicSegment.create('t', 1, 4096);
    try {
      seg.openSlot(0);
      const { sub, got } = collectingSubscriber(seg);
      const drops: number[] = [];
      sub.on('drop', (n: number) => drops.push(n));
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ o: 1 }));
      assert.equal(sub.poll(), 1);
      for (let i = 2; i <= 4; i++) w.write(encodePlain({ o: i }));
      // The publisher leaves and ferryd gives its slot to the next before the subscriber polls:
      // the indices are zeroed, so the old publisher's last three cannot be read any more.
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      new TopicRingWriter(seg, 0).write(encodePlain({ n: 1 }));
      sub.poll();
      assert.deepEqual(got, [{ o: 1 }, { n: 1 }]);
      assert.equal(sub.dropped, 3);
      assert.deepEqual(drops, [3]);
      // A slot that changes hands after the subscriber read everything counts nothing.
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      new TopicRingWriter(seg, 0).write(encodePlain({ m: 1 }));
      sub.poll();
      assert.deepEqual(got.at(-1), { m: 1 });
      assert.equal(sub.dropped, 3);
    } finally {
      seg.release();
    }
  });

  it('a slot that changed hands twice between two polls: the middle publisher’s messages are counted lost too', () => {
    const seg = TopicSegment.create('t', 1, 4096);
    try {
      seg.openSlot(0);
      const { sub, got } = collectingSubscriber(seg);
      const a = new TopicRingWriter(seg, 0);
      a.write(encodePlain({ a: 1 }));
      assert.equal(sub.poll(), 1);
      a.write(encodePlain({ a: 2 }));
      a.write(encodePlain({ a: 3 }));
      // A leaves with 2 unread; B gets the slot, writes 5 and leaves; C gets it: all before the
      // subscriber polls again. The epoch moved by two: PREV_SEQ alone knows only B's count.
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      const b = new TopicRingWriter(seg, 0);
      for (let i = 1; i <= 5; i++) b.write(encodePlain({ b: i }));
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      new TopicRingWriter(seg, 0).write(encodePlain({ c: 1 }));
      sub.poll();
      assert.deepEqual(got, [{ a: 1 }, { c: 1 }]);
      assert.equal(sub.dropped, 2 + 5, "A's two unread and B's five");
    } finally {
      seg.release();
    }
  });

  it('policy disconnect: the subscriber ends after what it had read, with nothing of the next publisher', () => {
    const seg = TopicSegment.create('t', 1, 4096, TOPIC_POLICY.DISCONNECT);
    let ended = false;
    try {
      seg.openSlot(0);
      const { sub, got } = collectingSubscriber(seg);
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ o: 1 }));
      assert.equal(sub.poll(), 1);
      w.write(encodePlain({ o: 2 }));
      seg.closeSlot(0, SLOT_GONE);
      seg.openSlot(0);
      new TopicRingWriter(seg, 0).write(encodePlain({ n: 1 }));
      sub.poll();
      ended = sub.error !== null;
      assert.equal(sub.error?.code, 'ERR_FERRY_SLOW_SUBSCRIBER');
      assert.deepEqual(got, [{ o: 1 }]);
    } finally {
      // An ended subscription released the segment (its link's) already.
      if (!ended) seg.release();
    }
  });
});

describe('a subscriber polled while ferryd is opening a slot its old publisher filled to near 2^32', () => {
  it('polled right after openSlot zeroes TAIL, it delivers nothing twice', () => {
    const seg = TopicSegment.create('t', 1, 4096);
    const store = Atomics.store;
    try {
      seg.openSlot(0);
      const slot = seg.slotWord(0);
      // The old publisher has written 4 GiB less 64 bytes (TAIL is a free-running u32): its
      // newest record then sits within a quarter ring below 2^32, where a TAIL of 0 is "just
      // ahead" of it.
      Atomics.store(seg.words, slot + SLOT_TAIL / 4, 2 ** 32 - 64);
      Atomics.store(seg.words, slot + SLOT_SEQ / 4, 100);
      const { sub, got } = collectingSubscriber(seg);
      const w = new TopicRingWriter(seg, 0);
      w.write(encodePlain({ o: 1 }));
      w.write(encodePlain({ o: 2 }));
      assert.equal(sub.poll(), 2);
      seg.closeSlot(0, SLOT_GONE);
      // openSlot, with the subscriber's poll run right after its store of TAIL = 0 (before the
      // epoch is bumped: the epoch check cannot tell).
      let polled = false;
      Atomics.store = ((view: Uint32Array, index: number, value: number) => {
        const r = store(view, index, value);
        if (!polled && view === seg.words && index === slot + SLOT_TAIL / 4 && value === 0) {
          polled = true;
          sub.poll();
        }
        return r;
      }) as typeof Atomics.store;
      seg.openSlot(0);
      Atomics.store = store;
      assert.ok(polled);
      sub.poll();
      assert.deepEqual(got, [{ o: 1 }, { o: 2 }]);
    } finally {
      Atomics.store = store;
      seg.release();
    }
  });
});

describe('a subscriber and hostile slot words', () => {
  it('garbage in OPENS, FLAGS and the slots’ STATE, EPOCH, PREV_SEQ and SEQ_BEFORE never makes a poll throw or loop', () => {
    // A topic member writing the words ferryd owns: what the subscriber delivers and counts may be
    // wrong (a garbage EPOCH reads as a hand-over, and the slot is read again from its start), but
    // a poll returns, delivers at most two rings' worth of records, and the subscriber at worst ends.
    fc.assert(
      fc.property(scribblePrograms('poll', 40), fc.boolean(), (ops, disconnect) => {
        const seg = TopicSegment.create(
          't',
          2,
          4096,
          disconnect ? TOPIC_POLICY.DISCONNECT : TOPIC_POLICY.LOSE_OLDEST,
        );
        seg.openSlot(0);
        seg.openSlot(1);
        let got = 0;
        let polled = 0;
        const sub = new Subscriber(
          't',
          { att: fakeAttachment(), session: 1, seg, index: 0, fds: [] },
          { onMessage: () => got++ },
        );
        const writers = [new TopicRingWriter(seg, 0), new TopicRingWriter(seg, 1)];
        try {
          for (const o of ops) {
            if (o.t === 'poll') {
              const n = sub.poll();
              // Records are 8 bytes at least: a 4 KiB ring holds at most 512 of them.
              assert.ok(Number.isInteger(n) && n >= 0 && n <= 2 * 512, `poll returned ${n}`);
              polled += n;
            } else {
              runScribbleOp(seg, writers, o, (slot) => {
                seg.closeSlot(slot, SLOT_GONE);
                seg.openSlot(slot);
                return new TopicRingWriter(seg, slot);
              });
            }
            if (sub.error !== null) {
              // Ended (disconnect): it let go of the segment, which nothing may touch now.
              assert.equal(sub.error.code, 'ERR_FERRY_SLOW_SUBSCRIBER');
              break;
            }
          }
          if (sub.error === null) polled += sub.poll();
          // A poll counts the records it took, delivered or (disconnect, lapped) not.
          assert.ok(got <= polled, `${got} delivered, ${polled} counted by the polls`);
          assert.ok(Number.isFinite(sub.dropped) && sub.dropped >= 0, `dropped ${sub.dropped}`);
        } finally {
          // An ended subscription released the segment (its link's) already.
          if (sub.error === null) seg.release();
        }
      }),
      { numRuns: 1000 },
    );
  });
});

/**
 * Every message of every publisher a slot had is delivered once or counted lost once, never both
 * and never neither: what a subscriber's dropped count and its values must add up to.
 */
function assertAccounted(got: unknown[], dropped: number, written: number): void {
  const seen = new Set(got.map((v) => JSON.stringify(v)));
  assert.equal(seen.size, got.length, `delivered twice: ${JSON.stringify(got)}`);
  assert.equal(got.length + dropped, written, `${got.length} delivered + ${dropped} lost`);
}

/** A slot hand-over as ferryd makes it, and `n` messages from the new publisher (tagged `p`). */
function handOver(seg: TopicSegment, p: string, n: number): void {
  seg.closeSlot(0, SLOT_GONE);
  seg.openSlot(0);
  const w = new TopicRingWriter(seg, 0);
  for (let i = 1; i <= n; i++) w.write(encodePlain({ [p]: i }));
}

/**
 * A subscriber of slot 0 whose publisher A wrote 5 messages (the subscriber read 2) before ferryd
 * gave the slot to B, which wrote 2 the subscriber has not seen.
 */
function readTwoOfA(seg: TopicSegment): { sub: Subscriber; got: unknown[] } {
  seg.openSlot(0);
  const { sub, got } = collectingSubscriber(seg);
  const a = new TopicRingWriter(seg, 0);
  for (let i = 1; i <= 2; i++) a.write(encodePlain({ a: i }));
  assert.equal(sub.poll(), 2);
  for (let i = 3; i <= 5; i++) a.write(encodePlain({ a: i }));
  handOver(seg, 'b', 2);
  return { sub, got };
}

describe('a subscriber and hand-overs racing its poll (SEQ_BEFORE and PREV_SEQ)', () => {
  // Every point a poll can lose its CPU at: ferryd runs whole hand-overs after the poll's k-th load
  // of a word of the slot's line a or the header (where it decides whether and how a slot changed
  // hands), for each k the poll has.
  for (let k = 0; k < 24; k++) {
    it(`two hand-overs after the poll's load ${k}: nothing counted twice or missed`, () => {
      const seg = TopicSegment.create('t', 1, 4096);
      const load = Atomics.load;
      try {
        const { sub, got } = readTwoOfA(seg);
        const lineA = seg.slotWord(0);
        let loads = 0;
        let fired = false;
        const fire = () => {
          fired = true;
          handOver(seg, 'c', 1);
          handOver(seg, 'd', 1);
        };
        Atomics.load = ((view: Uint32Array, index: number) => {
          const v = load(view, index);
          const watched = index < 16 || (index >= lineA && index < lineA + 16);
          if (!fired && view === seg.words && watched && loads++ === k) fire();
          return v;
        }) as typeof Atomics.load;
        sub.poll();
        Atomics.load = load;
        if (!fired) fire();
        for (let polls = 0; polls < 4; polls++) sub.poll();
        assertAccounted(got, sub.dropped, 5 + 2 + 1 + 1);
      } finally {
        Atomics.load = load;
        seg.release();
      }
    });
  }

  // The other way round: the poll runs inside ferryd's hand-over, after its k-th store (17 of
  // them at least: closeSlot's, then openSlot's counts, indices, marks, EPOCH, OPENS, STATE).
  for (let k = 0; k < 17; k++) {
    it(`a poll after ferryd's store ${k} of a hand-over: nothing counted twice or missed`, () => {
      const seg = TopicSegment.create('t', 1, 4096);
      const store = Atomics.store;
      const add = Atomics.add;
      try {
        const { sub, got } = readTwoOfA(seg);
        // Then ferryd gives the slot to C, with the poll inside.
        let stores = 0;
        let polled = false;
        const after = () => {
          if (!polled && stores++ === k) {
            polled = true;
            sub.poll();
          }
        };
        Atomics.store = ((view: Uint32Array, index: number, value: number) => {
          const r = store(view, index, value);
          if (view === seg.words) after();
          return r;
        }) as typeof Atomics.store;
        Atomics.add = ((view: Uint32Array, index: number, value: number) => {
          const r = add(view, index, value);
          if (view === seg.words) after();
          return r;
        }) as typeof Atomics.add;
        seg.closeSlot(0, SLOT_GONE);
        seg.openSlot(0);
        Atomics.store = store;
        Atomics.add = add;
        assert.ok(polled);
        new TopicRingWriter(seg, 0).write(encodePlain({ c: 1 }));
        for (let polls = 0; polls < 4; polls++) sub.poll();
        assertAccounted(got, sub.dropped, 5 + 2 + 1);
      } finally {
        Atomics.store = store;
        Atomics.add = add;
        seg.release();
      }
    });
  }
});

describe('a subscriber and an OPENS left odd (a member scribbling ferryd’s word)', () => {
  it('a new publisher is still read, after a bounded number of polls that wait for the hand-over to end', () => {
    const seg = TopicSegment.create('t', 1, 4096);
    try {
      seg.openSlot(0);
      const { sub, got } = collectingSubscriber(seg);
      new TopicRingWriter(seg, 0).write(encodePlain({ a: 1 }));
      assert.equal(sub.poll(), 1);
      leaveOpensOdd(seg);
      handOver(seg, 'b', 1);
      let polls = 0;
      while (got.length < 2 && polls < 100_000) {
        sub.poll();
        polls++;
      }
      assert.deepEqual(got, [{ a: 1 }, { b: 1 }]);
      // It waits (OPENS_PATIENCE, 1,024 polls) for a hand-over that may be under way, then reads.
      assert.ok(polls > 100 && polls <= 2_000, `${polls} polls`);
      assert.equal(sub.dropped, 0);
    } finally {
      seg.release();
    }
  });
});

describe('a subscriber and the EPOCH of a slot never given (a member scribbling ferryd’s word)', () => {
  it('it sleeps again after a bounded number of polls, and still reads a publisher the slot gets later', () => {
    const seg = TopicSegment.create('t', 2, 4096);
    try {
      seg.openSlot(0);
      const { sub, got } = collectingSubscriber(seg);
      new TopicRingWriter(seg, 0).write(encodePlain({ a: 1 }));
      assert.equal(sub.poll(), 1);
      scribbleFreeEpoch(seg, 1);
      // A slot FREE with a new EPOCH is one ferryd is opening (it marks it LIVE next), and that is
      // waited for, up to OPENS_PATIENCE polls; a FREE slot waited for without end kept arm()
      // finding work, and the subscriber polled for good.
      let polls = 0;
      let slept = false;
      while (!slept && polls < 100_000) {
        sub.poll();
        polls++;
        slept = !sub.arm();
      }
      assert.ok(slept, `still polling after ${polls} polls`);
      assert.ok(polls <= 2_000, `${polls} polls`);
      // ferryd gives the slot to a publisher now: read from its first message.
      seg.openSlot(1);
      new TopicRingWriter(seg, 1).write(encodePlain({ b: 1 }));
      for (let i = 0; i < 4; i++) sub.poll();
      assert.deepEqual(got, [{ a: 1 }, { b: 1 }]);
      assert.equal(sub.dropped, 0);
    } finally {
      seg.release();
    }
  });
});
