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
  TopicRingWriter,
} from '@ferry/sdk/internal';
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

describe('a topic relay and a publisher slot given to another publisher', () => {
  it('what the previous publisher wrote and the relay had not read goes as a gap before the next one’s first record', async () => {
    const topic = new Topic('ns', 't', 4096, { slow: 'lose-oldest', maxLagBytes: 1 << 20 });
    try {
      topic.addPublisher({ app: null, sessionId: 1, index: 0 });
      const { socket, chunks } = keepingSocket();
      new RelayOut(topic, socket, 0, true, () => {});
      const w = new TopicRingWriter(topic.seg, 0);
      w.write(encodePlain({ o: 1 }));
      await turn();
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
