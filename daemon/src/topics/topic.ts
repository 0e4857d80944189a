/**
 * One topic in ferryd: its shared segment (a broadcast ring per publisher slot), who publishes and
 * who subscribes, and the wake path: publishers ring the topic's doorbell when a subscriber asked
 * to be woken, and ferryd rings that subscriber's own data doorbell. Messages never pass through
 * ferryd; only wake-ups of sleeping subscribers do.
 */
import { Doorbell, ring, SLOT_GONE, TOPIC_MAX_SUBS, TopicSegment } from '@ferry/sdk/internal';
import type { App } from '../app/app.js';

/** Publisher slots per topic (each a ring of the topic's ring size; untouched slots cost no memory). */
export const TOPIC_MAX_PUBLISHERS = 8;

export interface TopicMember {
  app: App;
  sessionId: number;
  /** Publisher slot or subscriber wake bit. */
  index: number;
}

export class Topic {
  readonly name: string;
  readonly namespace: string;
  readonly seg: TopicSegment;
  readonly doorbell: Doorbell;
  readonly publishers = new Map<number, TopicMember>();
  readonly subscribers = new Map<number, TopicMember>();
  readonly createdAt = Date.now();
  /** Wake-ups ferryd forwarded to sleeping subscribers. */
  wakes = 0;

  constructor(namespace: string, name: string, ringBytes: number) {
    this.namespace = namespace;
    this.name = name;
    this.seg = TopicSegment.create(name, TOPIC_MAX_PUBLISHERS, ringBytes);
    this.doorbell = Doorbell.create({ unref: true });
    this.doorbell.onRing(() => this.#wake());
  }

  get empty(): boolean {
    return this.publishers.size === 0 && this.subscribers.size === 0;
  }

  /** A free publisher slot (never used, or its publisher left), or -1. */
  freeSlot(): number {
    for (let i = 0; i < TOPIC_MAX_PUBLISHERS; i++) if (!this.publishers.has(i)) return i;
    return -1;
  }

  /** A free subscriber wake bit, or -1. */
  freeBit(): number {
    for (let i = 0; i < TOPIC_MAX_SUBS; i++) if (!this.subscribers.has(i)) return i;
    return -1;
  }

  addPublisher(m: TopicMember): void {
    this.publishers.set(m.index, m);
    this.seg.openSlot(m.index);
  }

  removePublisher(slot: number): void {
    if (!this.publishers.delete(slot)) return;
    this.seg.closeSlot(slot, SLOT_GONE);
    // A publisher wakes sleepers at the end of its turn, and one killed meanwhile (or between its
    // claim of PENDING and its ring) never does: wake them here, and clear PENDING for the others.
    this.#wake();
  }

  release(): void {
    this.doorbell.close();
    this.seg.release();
  }

  /** Publishers rang: wake every subscriber whose bit is set, through its app's doorbell. */
  #wake(): void {
    const [w0, w1] = this.seg.takeWakeMask();
    for (const [bit, m] of this.subscribers) {
      const word = bit < 32 ? w0 : w1;
      if ((word & (1 << (bit & 31))) === 0) continue;
      this.wakes++;
      try {
        ring(m.app.doorbellFd);
      } catch {
        // The app is going away; its session teardown removes it.
      }
    }
  }
}
