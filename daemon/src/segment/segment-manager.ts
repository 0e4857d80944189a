/** Pair segments: one or more per pair of apps that have cut-through sessions between them. */
import { ferryError } from '@ferry/sdk/internal';
import type { DaemonConfig } from '../config.js';
import { newPolicyCounters, type PolicyCounters } from '../policy/counters.js';
import { type FifoPairAlloc, PairSegment } from './pair-segment.js';

/** A party of a pair segment: an app, or ferryd itself for sessions it terminates. */
export interface SegmentParty {
  readonly id: number;
  readonly segments: Set<number>;
}

export interface PairPlacement {
  seg: PairSegment;
  pair: FifoPairAlloc;
}

export class SegmentManager {
  #config: DaemonConfig;
  #segments = new Map<number, PairSegment>();
  #nextId = 1;
  #bytes = 0;
  #counters: PolicyCounters;

  constructor(config: DaemonConfig, counters: PolicyCounters = newPolicyCounters()) {
    this.#config = config;
    this.#counters = counters;
  }

  /** Bytes of the segments a party maps (ferryd's own party is not limited per app). */
  bytesOf(party: SegmentParty): number {
    let n = 0;
    for (const id of party.segments) n += this.#segments.get(id)?.segment.size ?? 0;
    return n;
  }

  get size(): number {
    return this.#segments.size;
  }

  get totalBytes(): number {
    return this.#bytes;
  }

  values(): IterableIterator<PairSegment> {
    return this.#segments.values();
  }

  get(id: number): PairSegment | undefined {
    return this.#segments.get(id);
  }

  /**
   * Finds room for a fifo pair between two apps, creating (and announcing, through `announce`) a
   * new pair segment when the existing ones are full.
   */
  place(
    client: SegmentParty,
    server: SegmentParty,
    clientTx: number,
    clientRx: number,
    announce: (seg: PairSegment) => void,
  ): PairPlacement {
    for (const seg of this.#segments.values()) {
      if (!this.#joins(seg, client, server)) continue;
      const pair = this.#alloc(seg, client, clientTx, clientRx);
      if (pair) return { seg, pair };
    }
    const size = this.#config.segmentSizeBytes;
    if (this.#bytes + size > this.#config.maxSegmentBytesTotal) {
      this.#counters.limitHits.maxSegmentBytesTotal++;
      throw ferryError(
        'ERR_FERRY_LIMIT',
        `maxSegmentBytesTotal (${this.#config.maxSegmentBytesTotal}): ferryd hands out ${this.#bytes} bytes of segments`,
      );
    }
    for (const party of [client, server]) {
      if (party.id === 0) continue;
      const mapped = this.bytesOf(party);
      if (mapped + size > this.#config.maxSegmentBytesPerApp) {
        this.#counters.limitHits.maxSegmentBytesPerApp++;
        throw ferryError(
          'ERR_FERRY_LIMIT',
          `maxSegmentBytesPerApp (${this.#config.maxSegmentBytesPerApp}): app ${party.id} maps ${mapped} bytes of segments`,
        );
      }
    }
    const seg = new PairSegment(this.#nextId++, client.id, server.id, size, this.#config.queueCapacity);
    this.#segments.set(seg.id, seg);
    this.#bytes += size;
    client.segments.add(seg.id);
    server.segments.add(seg.id);
    announce(seg);
    const pair = this.#alloc(seg, client, clientTx, clientRx);
    if (!pair) throw ferryError('ERR_FERRY_SHM_NO_SPACE', 'fifo pair does not fit in a new segment');
    return { seg, pair };
  }

  /** An app no longer maps `seg`; the segment goes once nobody does. */
  unmappedBy(seg: PairSegment, appId: number): void {
    seg.mappedBy.delete(appId);
    if (seg.mappedBy.size === 0) {
      this.#segments.delete(seg.id);
      this.#bytes -= seg.segment.size;
      seg.release();
    }
  }

  #joins(seg: PairSegment, x: SegmentParty, y: SegmentParty): boolean {
    const both = seg.mappedBy.has(x.id) && seg.mappedBy.has(y.id);
    return both && ((seg.appA === x.id && seg.appB === y.id) || (seg.appA === y.id && seg.appB === x.id));
  }

  #alloc(seg: PairSegment, client: SegmentParty, clientTx: number, clientRx: number): FifoPairAlloc | null {
    return seg.sideOf(client.id) === 'a'
      ? seg.allocPair(clientTx, clientRx)
      : seg.allocPair(clientRx, clientTx);
  }
}
