/**
 * The importing side of a topic relay: while a local topic named in `topics.import` has
 * subscribers, ferryd holds one TCP stream to the exporting ferryd and publishes what arrives into
 * a publisher slot of its own, so every local subscriber reads it from shared memory as from any
 * publisher. A gap the exporter forwards is written as skipped sequence numbers: subscribers count
 * it in `dropped`. When the stream ends, the topic ends for its subscribers (ECONNRESET, or
 * ERR_FERRY_SLOW_SUBSCRIBER when the exporter disconnected it as slow); there is no reconnect.
 */
import * as net from 'node:net';
import {
  encodeRelayJson,
  RELAY_KIND,
  RELAY_VERSION,
  RelayDecoder,
  type RelayFrame,
  TOPIC_END,
  TopicRingWriter,
} from '@ferry/sdk/internal';
import { parseListenAddress } from '../obs/listen-address.js';
import type { Topic } from './topic.js';

export interface ImportEntry {
  topic: string;
  from: string;
  namespace: string;
  remoteNamespace: string;
}

/** Largest record accepted from an exporter (its ring's quarter at most: 64 MiB). */
const MAX_RECORD = 64 * 1024 * 1024;

export class TopicImport {
  readonly from: string;
  /** Messages received, and messages lost upstream or too large for the local ring. */
  received = 0;
  lost = 0;
  readonly #topic: Topic;
  readonly #socket: net.Socket;
  readonly #slot: number;
  readonly #writer: TopicRingWriter;
  readonly #dec = new RelayDecoder(MAX_RECORD);
  #welcomed = false;
  #byeCode: string | null = null;
  #done = false;
  readonly #onEnd: (reason: string) => void;

  /** Starts the stream; `onEnd` hears why it ended (once), after the topic was ended. */
  constructor(topic: Topic, entry: ImportEntry, onEnd: (reason: string) => void) {
    this.from = entry.from;
    this.#topic = topic;
    this.#onEnd = onEnd;
    const slot = topic.freeSlot();
    if (slot < 0) throw new Error('no publisher slot left for the import');
    this.#slot = slot;
    topic.addPublisher({ app: null, sessionId: 0, index: slot });
    this.#writer = new TopicRingWriter(topic.seg, slot);
    const { host, port } = parseListenAddress(entry.from);
    this.#socket = net.connect({ host, port, noDelay: true });
    this.#socket.write(
      encodeRelayJson(RELAY_KIND.HELLO, {
        v: RELAY_VERSION,
        namespace: entry.remoteNamespace,
        topic: entry.topic,
        // Our subscribers read shape records (an older exporter ignores this and sends msgpack).
        shapes: 1,
      }),
    );
    this.#socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    this.#socket.on('error', (err) => this.#end(`${err.message}`));
    this.#socket.on('close', () => this.#end('the stream closed'));
  }

  /** The topic went (no subscriber left): close the stream without ending anything. */
  stop(): void {
    this.#done = true;
    this.#socket.destroy();
  }

  #onData(chunk: Buffer): void {
    let frames: RelayFrame[];
    try {
      frames = this.#dec.push(chunk);
    } catch (err) {
      this.#end((err as Error).message);
      return;
    }
    let wrote = false;
    let skip = 0;
    for (const f of frames) {
      if (f.kind === RELAY_KIND.RECORD && this.#welcomed) {
        skip += f.gap;
        if (f.payload.length > this.#writer.maxPayload) {
          // Larger than a quarter of the local ring: lost here, counted as a gap.
          skip++;
          continue;
        }
        this.#writer.write(f.payload, skip);
        this.lost += skip;
        skip = 0;
        this.received++;
        wrote = true;
      } else if (f.kind === RELAY_KIND.WELCOME && !this.#welcomed) {
        this.#welcomed = true;
      } else if (f.kind === RELAY_KIND.BYE) {
        this.#byeCode = typeof f.json['code'] === 'string' ? f.json['code'] : 'ECONNRESET';
        this.#end(String(f.json['message'] ?? 'BYE'));
        return;
      } else {
        this.#end(`unexpected relay frame of kind ${f.kind}`);
        return;
      }
    }
    this.lost += skip;
    if (wrote) this.#topic.published();
  }

  #end(reason: string): void {
    if (this.#done) return;
    this.#done = true;
    this.#socket.destroy();
    this.#topic.removePublisher(this.#slot);
    this.#topic.end(this.#byeCode === 'ERR_FERRY_SLOW_SUBSCRIBER' ? TOPIC_END.SLOW : TOPIC_END.RELAY_LOST);
    this.#onEnd(this.#byeCode ? `${this.#byeCode}: ${reason}` : reason);
  }
}
