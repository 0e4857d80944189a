/**
 * One datagram fifo pair in the app: frames (proto/datagram-frame.ts) in and out, each written
 * whole or not at all. A channel is either the endpoint's relay session with ferryd (frames carry
 * the remote address) or a cut-through pair with one local endpoint (the address is the pair's).
 */
import { FerryError, ferryError } from '../errors.js';
import type { FifoPairRef } from '../proto/ctrl/messages.js';
import {
  DGRAM_HEADER_BYTES,
  DGRAM_MAX_PAYLOAD,
  type DgramAddress,
  decodeDgramHeader,
  encodeDgramHeader,
} from '../proto/datagram-frame.js';
import { FifoConsumer, FifoProducer } from '../shm/index.js';
import type { AppSegment, SlotListener } from './app-segment.js';

/** Frames handled per event before yielding to the loop. */
const FRAMES_PER_TURN = 256;

export interface DatagramSink {
  /** A datagram arrived; `from` is null on a cut-through channel (the peer is `channel.remote`). */
  onDatagram(channel: DatagramChannel, payload: Buffer, from: DgramAddress | null): void;
  /** Space appeared in the tx fifo after waitForSpace(). */
  onWritable(channel: DatagramChannel): void;
  /** The peer closed or reset the channel, or its shared memory went bad (err). */
  onEnd(channel: DatagramChannel, err: FerryError | null): void;
}

/** 'closed': the peer stopped reading (or this side closed); 'failed': the fifo is broken. */
export type SendResult = 'sent' | 'full' | 'closed' | 'failed';

export class DatagramChannel implements SlotListener {
  readonly id: number;
  readonly slot: number;
  readonly segment: AppSegment;
  /** The local peer of a cut-through channel; null for the relay. */
  readonly remote: DgramAddress | null;
  #tx: FifoProducer;
  #rx: FifoConsumer;
  #sink: DatagramSink | null = null;
  #txHeader = new Uint8Array(DGRAM_HEADER_BYTES);
  #rxHeader = new Uint8Array(DGRAM_HEADER_BYTES);
  #waitingSpace = false;
  #drainScheduled = false;
  #ended = false;
  #closed = false;

  constructor(id: number, segment: AppSegment, ref: FifoPairRef, remote: DgramAddress | null) {
    this.id = id;
    this.slot = ref.slot;
    this.segment = segment;
    this.remote = remote;
    // The relay's other party is ferryd: its segment dies with ferryd (see Attachment).
    if (remote === null) segment.daemonPeer = true;
    this.#tx = new FifoProducer(segment.buffer, ref.txOffset, ref.txSize);
    this.#rx = new FifoConsumer(segment.buffer, ref.rxOffset, ref.rxSize);
  }

  /** Largest payload this channel can carry: the UDP limit, or less when the tx fifo is small. */
  get maxPayload(): number {
    return Math.min(DGRAM_MAX_PAYLOAD, this.#tx.sizeBytes - DGRAM_HEADER_BYTES);
  }

  get closed(): boolean {
    return this.#closed || this.#ended;
  }

  open(sink: DatagramSink): void {
    this.#sink = sink;
    this.segment.add(this.slot, this);
    this.onSlotEvent();
  }

  /**
   * Writes one datagram as a frame, whole or not at all. `to` is the destination (relay) or null
   * (cut-through). Throws EMSGSIZE / EINVAL for what can never be sent.
   */
  send(payload: Uint8Array, to: DgramAddress | null): SendResult {
    if (payload.length > this.maxPayload) {
      throw ferryError(
        'EMSGSIZE',
        `datagram of ${payload.length} bytes exceeds ${this.maxPayload} (UDP limit ${DGRAM_MAX_PAYLOAD}, fifo ${this.#tx.sizeBytes})`,
      );
    }
    encodeDgramHeader(this.#txHeader, payload.length, to);
    if (this.#closed || this.#ended || this.#tx.peerClosed) return 'closed';
    const n = this.#tx.enqueueAtomic([this.#txHeader, payload]);
    if (n < 0) return 'failed';
    if (n === 0) return 'full';
    if (this.#tx.notifyNeeded()) this.segment.post(this.slot);
    return 'sent';
  }

  /** After a 'full' send of `frameBytes`: ask to be told when they fit. True = they fit already. */
  waitForSpace(payloadBytes: number): boolean {
    if (this.#tx.armSpace(payloadBytes + DGRAM_HEADER_BYTES)) return true;
    this.#setWaitingSpace(true);
    return false;
  }

  /** No more datagrams from us, and we read no more: the peer ends its side of the pair. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#tx.fin();
    this.#rx.close();
    this.segment.post(this.slot);
  }

  detach(): void {
    this.#setWaitingSpace(false);
    this.segment.remove(this.slot, this);
    this.#sink = null;
  }

  onSegmentFailure(err: FerryError): void {
    this.#end(err);
  }

  onSlotEvent(): void {
    if (!this.#sink || this.#ended) return;
    const err = this.#rx.error ?? this.#tx.error;
    if (err) {
      this.#end(err);
      return;
    }
    if (this.#rx.peerReset) {
      this.#end(ferryError('ECONNRESET', 'peer reset the datagram channel'));
      return;
    }
    if (this.#waitingSpace && (this.#tx.freeSpace() > 0 || this.#tx.peerClosed || this.#tx.armSpace())) {
      this.#setWaitingSpace(false);
      this.#sink.onWritable(this);
    }
    this.#drain();
  }

  #drain(): void {
    for (let i = 0; i < FRAMES_PER_TURN; i++) {
      const sink = this.#sink;
      if (!sink || this.#ended || this.#closed) return;
      const avail = this.#rx.readable();
      if (avail === 0) {
        if (this.#rx.error) {
          this.#end(this.#rx.error);
          return;
        }
        // A peer that stopped reading and writing is gone for good: let the pair go.
        if (this.#rx.fin || this.#tx.peerClosed) {
          this.#end(null);
          return;
        }
        if (!this.#rx.armData()) return;
        continue;
      }
      const got = this.#readFrame(avail);
      if (got instanceof FerryError) {
        this.#end(got);
        return;
      }
      if (this.#rx.spaceNotifyNeeded()) this.segment.post(this.slot);
      sink.onDatagram(this, got.payload, got.from);
    }
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    setImmediate(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  /**
   * Takes one frame out of the rx fifo. The producer publishes whole frames only, so a partial
   * header or payload means the fifo is corrupt (a buggy or hostile peer).
   */
  #readFrame(avail: number): { payload: Buffer; from: DgramAddress | null } | FerryError {
    if (avail < DGRAM_HEADER_BYTES || this.#rx.peek(this.#rxHeader, 0) !== DGRAM_HEADER_BYTES) {
      return ferryError('ERR_FERRY_FIFO_CORRUPT', `partial datagram header (${avail} bytes readable)`);
    }
    let header: ReturnType<typeof decodeDgramHeader>;
    try {
      header = decodeDgramHeader(this.#rxHeader, this.#rx.sizeBytes - DGRAM_HEADER_BYTES);
    } catch (err) {
      return err as FerryError;
    }
    const frame = DGRAM_HEADER_BYTES + header.length;
    if (avail < frame) {
      return ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram of ${header.length} bytes, ${avail} readable`);
    }
    const payload = Buffer.allocUnsafe(header.length);
    if (header.length > 0 && this.#rx.peek(payload, DGRAM_HEADER_BYTES) !== header.length) {
      return ferryError('ERR_FERRY_FIFO_CORRUPT', 'datagram payload vanished');
    }
    this.#rx.drop(frame);
    return { payload, from: header.peer };
  }

  #end(err: FerryError | null): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#setWaitingSpace(false);
    this.#sink?.onEnd(this, err);
  }

  #setWaitingSpace(waiting: boolean): void {
    if (waiting === this.#waitingSpace) return;
    this.#waitingSpace = waiting;
    this.segment.spaceWaiters += waiting ? 1 : -1;
  }
}
