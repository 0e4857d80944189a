/**
 * One topic in ferryd: its shared segment (a broadcast ring per publisher slot), who publishes and
 * who subscribes, and the wake path: publishers ring the topic's doorbell when a subscriber asked
 * to be woken, and ferryd rings that subscriber's own data doorbell. Messages never pass through
 * ferryd; only wake-ups of sleeping subscribers do.
 */
import {
  Doorbell,
  ring,
  SLOT_GONE,
  TOPIC_MAX_SUBS,
  TOPIC_POLICY,
  TOPIC_WAKE0_OFFSET,
  TopicSegment,
} from '@ferry/sdk/internal';
import type { App } from '../app/app.js';

const TOPIC_WAKE_WORD = TOPIC_WAKE0_OFFSET / 4;

/** Publisher slots per topic (each a ring of the topic's ring size; untouched slots cost no memory). */
export const TOPIC_MAX_PUBLISHERS = 8;

export interface TopicMember {
  /** The member's app; null for ferryd's own members (the relays of topics between hosts). */
  app: App | null;
  sessionId: number;
  /** Publisher slot or subscriber wake bit. */
  index: number;
  /** Wakes a member that is not an app (a relay reading the topic for another host). */
  wake?: () => void;
  /** A publisher: when it was given its slot (ms, Date.now()), for the rate on the first look. */
  joinedAt?: number;
}

/** What happens to a subscriber that falls behind (ferryd's `topics.policies`). */
export interface TopicPolicy {
  slow: 'lose-oldest' | 'disconnect';
  /** How much a relay stream to another host may hold unsent. */
  maxLagBytes: number;
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

  readonly policy: TopicPolicy;
  /** Stops the import that feeds this topic from another host (null: none). */
  stopImport: (() => void) | null = null;

  constructor(namespace: string, name: string, ringBytes: number, policy: TopicPolicy) {
    this.namespace = namespace;
    this.name = name;
    this.policy = policy;
    this.seg = TopicSegment.create(
      name,
      TOPIC_MAX_PUBLISHERS,
      ringBytes,
      policy.slow === 'disconnect' ? TOPIC_POLICY.DISCONNECT : TOPIC_POLICY.LOSE_OLDEST,
    );
    this.doorbell = Doorbell.create({ unref: true });
    this.doorbell.onRing(() => this.#wake());
  }

  /**
   * Nobody needs the topic: no subscriber (an app, or a relay reading it for another host) and no
   * app publishing. An import from another host is not reason enough: it only feeds subscribers.
   */
  get empty(): boolean {
    if (this.subscribers.size > 0) return false;
    for (const p of this.publishers.values()) if (p.app !== null) return false;
    return true;
  }

  /** Relays reading this topic for other hosts: closed when the topic goes. */
  readonly relays = new Set<{ close(): void }>();
  #released = false;

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
    m.joinedAt ??= Date.now();
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
    if (this.#released) return;
    this.#released = true;
    for (const r of [...this.relays]) r.close();
    this.stopImport?.();
    this.stopImport = null;
    this.doorbell.close();
    this.seg.release();
  }

  /** ferryd published into the topic itself (an import): wake the sleeping subscribers. */
  published(): void {
    // Atomics loads, not plain reads: a subscriber sets its bit and then looks at the tails, and
    // ferryd stores a tail and then looks at the bits; each must see the other's store. On arm64
    // a plain read may be performed before the tail's store-release (which orders only what
    // precedes it) and miss a bit set meanwhile: that subscriber would sleep with a record
    // waiting. An Atomics.load is ordered after it. (On x86 the store is a locked xchg already.)
    const w = this.seg.words;
    if ((Atomics.load(w, TOPIC_WAKE_WORD) | Atomics.load(w, TOPIC_WAKE_WORD + 1)) !== 0) this.#wake();
  }

  /** Ends the topic for its subscribers (TOPIC_END code) and wakes them all to notice. */
  end(code: number): void {
    this.seg.end(code);
    this.seg.takeWakeMask();
    for (const m of this.subscribers.values()) this.#ringMember(m);
  }

  /** Publishers rang: wake every subscriber whose bit is set, through its app's doorbell. */
  #wake(): void {
    const [w0, w1] = this.seg.takeWakeMask();
    for (const [bit, m] of this.subscribers) {
      const word = bit < 32 ? w0 : w1;
      if ((word & (1 << (bit & 31))) === 0) continue;
      this.wakes++;
      this.#ringMember(m);
    }
  }

  #ringMember(m: TopicMember): void {
    if (m.wake) {
      m.wake();
      return;
    }
    try {
      if (m.app) ring(m.app.doorbellFd);
    } catch {
      // The app is going away; its session teardown removes it.
    }
  }
}
