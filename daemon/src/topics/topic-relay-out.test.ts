// ferryd's relay reader of a topic, against a real topic segment and a socket that keeps what it
// is given: what it forwards when a publisher slot changes hands.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import {
  createTopicDecoder,
  encodePlain,
  RELAY_KIND,
  RelayDecoder,
  TOPIC_WAKE0_OFFSET,
  TopicRingWriter,
} from '@ferry/sdk/internal';
import fc from 'fast-check';
// The SDK's topic test-kit, by path: test helpers are not in its package, nor among its exports.
import {
  leaveOpensOdd,
  runScribbleOp,
  scribbleFreeEpoch,
  scribblePrograms,
} from '../../../sdk/dist/messages/testing/topic-scribbles.js';
import { Topic } from './topic.js';
import { RelayOut } from './topic-relay-out.js';

/** A socket that never backs up and keeps every byte written. */
function keepingSocket(): { socket: Socket; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const s = Object.assign(new EventEmitter(), {
    remoteAddress: '198.18.0.2',
    remotePort: 1,
    writableLength: 0,
    write(b: Uint8Array) {
      chunks.push(Buffer.from(b));
      return true;
    },
    end() {},
    destroy() {},
  });
  return { socket: s as unknown as Socket, chunks };
}

/**
 * A relay (wake bit 0) of `topic`, whose publisher in slot 0 wrote { o: 1 }, which the relay has
 * forwarded: the socket's chunks, and that publisher's writer.
 */
async function relayAfterFirstRecord(topic: Topic): Promise<{ chunks: Buffer[]; w: TopicRingWriter }> {
  topic.addPublisher({ app: null, sessionId: 1, index: 0 });
  const { socket, chunks } = keepingSocket();
  new RelayOut(topic, socket, 0, true, () => {});
  const w = new TopicRingWriter(topic.seg, 0);
  w.write(encodePlain({ o: 1 }));
  await turn();
  return { chunks, w };
}

/** The values of the RECORD frames in what the relay wrote. */
function relayedValues(chunks: Buffer[]): unknown[] {
  const decode = createTopicDecoder();
  return new RelayDecoder(4096)
    .push(Buffer.concat(chunks))
    .flatMap((f) => (f.kind === RELAY_KIND.RECORD ? [decode(f.payload)] : []));
}

describe('a topic relay and a publisher slot given to another publisher', () => {
  it('what the previous publisher wrote and the relay had not read goes as a gap before the next one’s first record', async () => {
    const topic = new Topic('ns', 't', 4096, { slow: 'lose-oldest', maxLagBytes: 1 << 20 });
    try {
      const { chunks, w } = await relayAfterFirstRecord(topic);
      // Three more, then the publisher leaves and the next takes its slot before the relay drains.
      for (let i = 2; i <= 4; i++) w.write(encodePlain({ o: i }));
      topic.removePublisher(0);
      topic.addPublisher({ app: null, sessionId: 2, index: 0 });
      new TopicRingWriter(topic.seg, 0).write(encodePlain({ n: 1 }));
      await turn();
      await turn();
      const frames = new RelayDecoder(4096).push(Buffer.concat(chunks));
      const decode = createTopicDecoder();
      const records = frames.flatMap((f) =>
        f.kind === RELAY_KIND.RECORD ? [{ gap: f.gap, value: decode(f.payload) }] : [],
      );
      assert.deepEqual(records, [
        { gap: 0, value: { o: 1 } },
        { gap: 3, value: { n: 1 } },
      ]);
    } finally {
      topic.release();
    }
  });
});

describe('a topic relay and an OPENS left odd', () => {
  it('ferryd’s relay takes a new publisher over at once: no hand-over can be under way while it runs', async () => {
    const topic = new Topic('ns', 't', 4096, { slow: 'lose-oldest', maxLagBytes: 1 << 20 });
    try {
      const { chunks } = await relayAfterFirstRecord(topic);
      // A member leaves OPENS odd, as if ferryd were giving a slot away for good.
      leaveOpensOdd(topic.seg);
      topic.removePublisher(0);
      topic.addPublisher({ app: null, sessionId: 2, index: 0 });
      new TopicRingWriter(topic.seg, 0).write(encodePlain({ n: 1 }));
      await turn();
      await turn();
      assert.deepEqual(relayedValues(chunks), [{ o: 1 }, { n: 1 }]);
    } finally {
      topic.release();
    }
  });
});

describe('a topic relay and hostile slot words', () => {
  it('garbage in OPENS, FLAGS and the slots’ STATE, EPOCH, PREV_SEQ and SEQ_BEFORE never makes ferryd’s relay throw or break its stream', async () => {
    // A topic member can write the words ferryd owns; the relay runs inside ferryd, where a throw
    // would take down every app's daemon. What it forwards may be wrong (garbage says anything),
    // but it keeps running or says BYE, and its stream stays well framed.
    await fc.assert(
      fc.asyncProperty(scribblePrograms('turn', 30), fc.boolean(), async (ops, disconnect) => {
        const topic = new Topic('ns', 't', 4096, {
          slow: disconnect ? 'disconnect' : 'lose-oldest',
          maxLagBytes: 1 << 20,
        });
        try {
          const seg = topic.seg;
          let session = 1;
          const writers: TopicRingWriter[] = [];
          for (const slot of [0, 1]) {
            topic.addPublisher({ app: null, sessionId: session++, index: slot });
            writers[slot] = new TopicRingWriter(seg, slot);
          }
          const { socket, chunks } = keepingSocket();
          let closed = false;
          new RelayOut(topic, socket, 0, true, () => {
            closed = true;
          });
          for (const o of ops) {
            if (o.t === 'turn') {
              await turn();
            } else {
              runScribbleOp(seg, writers, o, (slot) => {
                topic.removePublisher(slot);
                topic.addPublisher({ app: null, sessionId: session++, index: slot });
                return new TopicRingWriter(seg, slot);
              });
            }
          }
          for (let i = 0; i < 4; i++) await turn();
          const frames = new RelayDecoder(1 << 20).push(Buffer.concat(chunks));
          assert.ok(
            frames.every((f) => f.kind === RELAY_KIND.RECORD),
            'only records (a BYE goes by end())',
          );
          if (!disconnect) assert.equal(closed, false, 'lose-oldest: the relay goes on');
        } finally {
          topic.release();
        }
      }),
      { numRuns: 600 },
    );
  });
});

describe('a topic relay and the EPOCH of a slot never given', () => {
  it('ferryd’s relay takes it (its hand-overs run on ferryd’s thread: no opening is under way) and sleeps, not draining for good', async () => {
    const topic = new Topic('ns', 't', 4096, { slow: 'lose-oldest', maxLagBytes: 1 << 20 });
    try {
      const { chunks } = await relayAfterFirstRecord(topic);
      // A member writes slot 1's EPOCH (slot 1 was never given), and the relay is woken.
      scribbleFreeEpoch(topic.seg, 1);
      topic.published();
      for (let i = 0; i < 8; i++) await turn();
      const asleep = (Atomics.load(topic.seg.words, TOPIC_WAKE0_OFFSET / 4) & 1) !== 0;
      assert.ok(asleep, 'the relay armed its wake bit (it was rescheduling its drain every turn)');
      // ferryd gives slot 1 to a publisher: the relay forwards its first record.
      topic.addPublisher({ app: null, sessionId: 2, index: 1 });
      new TopicRingWriter(topic.seg, 1).write(encodePlain({ n: 1 }));
      topic.published();
      await turn();
      await turn();
      assert.deepEqual(relayedValues(chunks), [{ o: 1 }, { n: 1 }]);
    } finally {
      topic.release();
    }
  });
});
