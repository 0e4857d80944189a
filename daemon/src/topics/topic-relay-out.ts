/**
 * The exporting side of a topic relay: ferryd reads a local topic as one more subscriber (a wake
 * bit of its own, woken as apps are) and writes every message into one TCP stream to the ferryd
 * that imports it, batched (one socket write per drain, not per message). Messages are forwarded
 * as their publishers encoded them: nothing is decoded here.
 *
 * Slow stream: once more than `maxLagBytes` wait unsent in the socket, lose-oldest stops reading
 * until the socket drains (the ring laps this reader; the loss travels as the next record's gap,
 * so the other host's subscribers count it as drops); disconnect says BYE
 * (ERR_FERRY_SLOW_SUBSCRIBER) and closes, as it does when this reader is lapped.
 */
import type { Socket } from 'node:net';
import {
  createTopicDecoder,
  encodePlain,
  encodeRelayJson,
  RELAY_KIND,
  relayRecordBytes,
  SHAPE_MARK,
  TopicRingReader,
  writeRelayRecordHeader,
} from '@ferry/sdk/internal';
import type { Topic, TopicMember } from './topic.js';

/** Records read per slot per drain before yielding to the event loop. */
const READ_BUDGET = 1024;
const BATCH_BYTES = 64 * 1024;

export class RelayOut {
  readonly peer: string;
  /** Messages forwarded, and messages this reader lost to laps. */
  forwarded = 0;
  readonly #topic: Topic;
  readonly #socket: Socket;
  readonly #member: TopicMember;
  readonly #readers: (TopicRingReader | null)[] = [];
  readonly #epochs: number[] = [];
  readonly #reported: number[] = [];
  #batch: Buffer = Buffer.allocUnsafe(BATCH_BYTES);
  #off = 0;
  /** Where the record being decoded was placed in the batch. */
  #at = 0;
  #slot = 0;
  #scheduled = false;
  #closed = false;
  readonly #onClose: () => void;
  /**
   * The importer does not read shape records (an older ferryd, whose subscribers would drop every
   * one as undecodable): records that are shape records are decoded here and sent as msgpack.
   */
  readonly #transcode: boolean;
  /** Its decoders, one per publisher slot (shape ids are each publisher's own). */
  readonly #decoders: (((src: Buffer, start: number, end: number) => unknown) | undefined)[] = [];
  /** Records re-encoded for an older importer. */
  transcoded = 0;

  constructor(topic: Topic, socket: Socket, bit: number, shapes: boolean, onClose: () => void) {
    this.#topic = topic;
    this.#transcode = !shapes;
    this.#socket = socket;
    this.#onClose = onClose;
    this.peer = `${socket.remoteAddress}:${socket.remotePort}`;
    const seg = topic.seg;
    for (let i = 0; i < seg.maxPubs; i++) {
      const reader = TopicRingReader.join(seg, i, 'newest');
      this.#epochs.push(reader?.epoch ?? 0);
      this.#readers.push(reader);
      this.#reported.push(0);
      this.#decoders.push(undefined);
    }
    this.#member = { app: null, sessionId: 0, index: bit, wake: () => this.#schedule() };
    seg.clearSubscriber(bit);
    topic.subscribers.set(bit, this.#member);
    topic.relays.add(this);
    socket.on('drain', () => this.#schedule());
    socket.on('close', () => this.close());
    socket.on('error', () => this.close());
    this.#schedule();
  }

  get dropped(): number {
    let n = 0;
    for (const r of this.#readers) if (r) n += r.dropped;
    return n;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const t = this.#topic;
    if (t.subscribers.get(this.#member.index) === this.#member) t.subscribers.delete(this.#member.index);
    t.relays.delete(this);
    this.#socket.destroy();
    this.#onClose();
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(this.#drain);
  }

  readonly #drain = (): void => {
    this.#scheduled = false;
    if (this.#closed) return;
    const policy = this.#topic.policy;
    if (this.#socket.writableLength > policy.maxLagBytes) {
      if (policy.slow === 'disconnect')
        this.#bye('ERR_FERRY_SLOW_SUBSCRIBER', 'the relay stream fell behind');
      // lose-oldest: 'drain' reschedules; meanwhile the publishers lap this reader.
      return;
    }
    const seg = this.#topic.seg;
    let more = false;
    for (let i = 0; i < this.#readers.length; i++) {
      const epoch = seg.slotEpoch(i);
      if (epoch !== this.#epochs[i]) {
        // What the previous publisher wrote that this relay had not read is gone (and all that any
        // publisher the slot had in between wrote): forwarded as a gap before the new publisher's
        // first record. Still being opened, or given away again meanwhile: the next drain looks.
        // OPENS is not waited for: ferryd's hand-overs run on this thread, never during this
        // drain, so an odd one was left by a member and would stop the relay for good.
        const next = TopicRingReader.takeOver(seg, i, epoch, this.#readers[i], false);
        if (next === null) {
          more = true;
          continue;
        }
        this.#epochs[i] = epoch;
        this.#reported[i] = -next.unread;
        this.#readers[i] = next.reader;
        this.#decoders[i] = undefined;
      }
      const r = this.#readers[i];
      if (!r) continue;
      this.#slot = i;
      if (r.read(READ_BUDGET, this.#copy, this.#commit) === READ_BUDGET) more = true;
      if (policy.slow === 'disconnect' && r.dropped > 0) {
        this.#flush();
        this.#bye('ERR_FERRY_SLOW_SUBSCRIBER', `the relay was lapped (${r.dropped} messages)`);
        return;
      }
    }
    this.#flush();
    if (more) {
      this.#schedule();
      return;
    }
    const bit = this.#member.index;
    seg.armWake(bit);
    for (let i = 0; i < this.#readers.length; i++) {
      if (seg.slotEpoch(i) !== this.#epochs[i] || this.#readers[i]?.hasData) {
        seg.disarmWake(bit);
        this.#schedule();
        return;
      }
    }
  };

  /** The reader's decode: copies the record into the batch as a RECORD frame (gap set at commit). */
  readonly #copy = (src: Buffer, range: { start: number; end: number }): number => {
    if (this.#transcode && src[range.start] === SHAPE_MARK) {
      // Throws for a record torn by the publisher meanwhile: the reader counts it as a lap.
      let decode = this.#decoders[this.#slot];
      if (decode === undefined) {
        decode = createTopicDecoder();
        this.#decoders[this.#slot] = decode;
      }
      const plain = encodePlain(decode(src, range.start, range.end));
      this.transcoded++;
      return this.#place(plain, 0, plain.length);
    }
    return this.#place(src, range.start, range.end);
  };

  /** Copies [start, end) of `src` into the batch as a RECORD frame's payload (gap set at commit). */
  #place(src: Uint8Array, start: number, end: number): number {
    const n = end - start;
    const need = relayRecordBytes(n);
    if (this.#batch.length - this.#off < need) {
      this.#flush();
      if (this.#batch.length < need) this.#batch = Buffer.allocUnsafe(need);
    }
    this.#at = this.#off;
    this.#batch.set(src.subarray(start, end), this.#at + relayRecordBytes(0));
    return n;
  }

  /** The record was intact (the reader's check after the copy): keep it, with the loss before it. */
  readonly #commit = (n: unknown): void => {
    const r = this.#readers[this.#slot] as TopicRingReader;
    const gap = r.dropped - (this.#reported[this.#slot] ?? 0);
    this.#reported[this.#slot] = r.dropped;
    writeRelayRecordHeader(this.#batch, this.#at, n as number, gap);
    this.#off = this.#at + relayRecordBytes(n as number);
    this.forwarded++;
  };

  #flush(): void {
    if (this.#off === 0) return;
    // The socket keeps the bytes until written: a fresh batch for what follows.
    this.#socket.write(this.#batch.subarray(0, this.#off));
    this.#batch = Buffer.allocUnsafe(Math.max(BATCH_BYTES, this.#batch.length));
    this.#off = 0;
  }

  #bye(code: string, message: string): void {
    if (this.#closed) return;
    this.#socket.end(encodeRelayJson(RELAY_KIND.BYE, { code, message }));
    this.#closed = true;
    const t = this.#topic;
    if (t.subscribers.get(this.#member.index) === this.#member) t.subscribers.delete(this.#member.index);
    t.relays.delete(this);
    this.#onClose();
  }
}
