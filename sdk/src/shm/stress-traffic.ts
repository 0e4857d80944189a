// Test helper: length-prefixed, sequence-numbered, checksummed messages of random sizes over a fifo.

import type { FifoConsumer } from './fifo-consumer.js';
import type { FifoProducer } from './fifo-producer.js';

const HEADER_BYTES = 8;
export const STRESS_MAX_PAYLOAD = 300;
const POOL_BYTES = 1 << 16;
const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

function makePool(seed: number): Uint8Array {
  const pool = new Uint8Array(POOL_BYTES + STRESS_MAX_PAYLOAD);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < pool.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    pool[i] = x & 0xff;
  }
  return pool;
}

function fnv(h: number, bytes: Uint8Array, start: number, end: number): number {
  for (let i = start; i < end; i++) h = Math.imul(h ^ (bytes[i] as number), FNV_PRIME);
  return h >>> 0;
}

export interface StressResult {
  messages: number;
  payloadBytes: number;
  checksum: number;
  error: string | null;
}

/** Writes `count` messages, resuming partial writes; send() returns bytes enqueued this call. */
export class StressWriter {
  readonly #p: FifoProducer;
  readonly #count: number;
  readonly #pool: Uint8Array;
  readonly #msg = new Uint8Array(HEADER_BYTES + STRESS_MAX_PAYLOAD);
  readonly #hdr = new DataView(this.#msg.buffer);
  #rng: number;
  #seq = 0;
  #pendOff = 0;
  #pendLen = 0;
  readonly result: StressResult = { messages: 0, payloadBytes: 0, checksum: FNV_OFFSET, error: null };

  constructor(p: FifoProducer, count: number, seed: number) {
    this.#p = p;
    this.#count = count;
    this.#pool = makePool(seed);
    this.#rng = (seed * 2654435761) >>> 0 || 7;
  }

  get done(): boolean {
    return this.#seq === this.#count && this.#pendOff === this.#pendLen;
  }

  /** Enqueues up to `maxMessages` messages; returns bytes written (0 when full or done, -1 failed). */
  send(maxMessages: number): number {
    let total = 0;
    for (let m = 0; m < maxMessages; m++) {
      if (this.#pendOff === this.#pendLen) {
        if (this.#seq === this.#count) break;
        this.#next();
      }
      const n = this.#p.enqueue(this.#msg.subarray(this.#pendOff, this.#pendLen));
      if (n < 0) return -1;
      this.#pendOff += n;
      total += n;
      if (this.#pendOff !== this.#pendLen) break;
    }
    return total;
  }

  #next(): void {
    let x = this.#rng;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#rng = x >>> 0;
    const len = this.#rng % (STRESS_MAX_PAYLOAD + 1);
    const from = (this.#rng >>> 9) % POOL_BYTES;
    this.#hdr.setUint32(0, len, true);
    this.#hdr.setUint32(4, this.#seq, true);
    this.#msg.set(this.#pool.subarray(from, from + len), HEADER_BYTES);
    this.result.checksum = fnv(this.result.checksum, this.#msg, HEADER_BYTES, HEADER_BYTES + len);
    this.result.messages++;
    this.result.payloadBytes += len;
    this.#seq++;
    this.#pendOff = 0;
    this.#pendLen = HEADER_BYTES + len;
  }
}

/** Reads and verifies messages; receive() returns messages read this call. */
export class StressReader {
  readonly #c: FifoConsumer;
  readonly #msg = new Uint8Array(HEADER_BYTES + STRESS_MAX_PAYLOAD);
  readonly #hdr = new DataView(this.#msg.buffer);
  readonly result: StressResult = { messages: 0, payloadBytes: 0, checksum: FNV_OFFSET, error: null };

  constructor(c: FifoConsumer) {
    this.#c = c;
  }

  receive(maxMessages: number): number {
    let got = 0;
    const hdr = this.#msg.subarray(0, HEADER_BYTES);
    while (got < maxMessages && this.result.error === null) {
      if (this.#c.peek(hdr) < HEADER_BYTES) break;
      const len = this.#hdr.getUint32(0, true);
      const seq = this.#hdr.getUint32(4, true);
      if (len > STRESS_MAX_PAYLOAD || seq !== this.result.messages) {
        this.result.error = `bad message header len ${len} seq ${seq}, expected seq ${this.result.messages}`;
        break;
      }
      if (this.#c.readable() < HEADER_BYTES + len) break;
      const n = this.#c.dequeue(this.#msg.subarray(0, HEADER_BYTES + len));
      if (n !== HEADER_BYTES + len) {
        this.result.error = `short dequeue ${n}`;
        break;
      }
      this.result.checksum = fnv(this.result.checksum, this.#msg, HEADER_BYTES, n);
      this.result.messages++;
      this.result.payloadBytes += len;
      got++;
    }
    if (this.#c.error !== null) this.result.error = this.#c.error.message;
    return got;
  }
}
