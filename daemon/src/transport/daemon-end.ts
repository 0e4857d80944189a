/**
 * ferryd as the other app of a pair segment: for sessions it terminates (TCP), ferryd maps the
 * segment it created anyway, drains its own event queue, posts to the app's, and sleeps on its own
 * doorbell like any app.
 *
 * One Notifier in interrupt mode serves every such segment. Not poll or adaptive: ferryd's loop
 * also runs the control plane of every app and the kernel sockets, which must not wait behind a
 * spin, and the TCP side is syscall-bound anyway (each kernel read or write already costs a loop
 * turn), so the ~25 us doorbell wake is small next to what the session pays for the kernel.
 */
import {
  Doorbell,
  EventQueueConsumer,
  EventQueueProducer,
  type FerryError,
  Notifier,
  ring,
} from '@ferry/sdk/internal';
import type { PairSegment } from '../segment/pair-segment.js';

/** ferryd's id in pair segments (apps are numbered from 1). */
export const DAEMON_PARTY_ID = 0;

export interface SlotPump {
  /** Something changed in this slot's fifos (data, space, FIN, reset): look. */
  onSlotEvent(): void;
  /** The app broke the segment's event queue: no more notices will come. */
  onQueueFailed(err: FerryError): void;
}

/** ferryd's side of one pair segment. */
export class DaemonSegment {
  readonly seg: PairSegment;
  #rx: EventQueueConsumer;
  #tx: EventQueueProducer;
  #appDoorbellFd: number;
  #slots = new Map<number, SlotPump>();
  #failed = false;

  constructor(seg: PairSegment, appDoorbellFd: number) {
    this.seg = seg;
    const aSide = seg.sideOf(DAEMON_PARTY_ID) === 'a';
    const buf = seg.segment.buffer;
    this.#rx = new EventQueueConsumer(
      buf,
      aSide ? seg.queueToA : seg.queueToB,
      seg.queueCapacity,
      seg.maxSlot,
    );
    this.#tx = new EventQueueProducer(buf, aSide ? seg.queueToB : seg.queueToA, seg.queueCapacity);
    this.#appDoorbellFd = appDoorbellFd;
  }

  get buffer(): ArrayBuffer {
    return this.seg.segment.buffer;
  }

  add(slot: number, pump: SlotPump): void {
    this.#slots.set(slot, pump);
  }

  remove(slot: number, pump: SlotPump): void {
    if (this.#slots.get(slot) === pump) this.#slots.delete(slot);
  }

  /** Tells the app that `slot` has news; rings its doorbell only when it sleeps. */
  post(slot: number): void {
    this.#tx.push(slot);
    if (this.#tx.wakeNeeded() && this.#appDoorbellFd >= 0) {
      try {
        ring(this.#appDoorbellFd);
      } catch {
        // The app's doorbell is gone (it is dying): its death is handled on the control channel.
      }
    }
  }

  poll(): number {
    if (this.#failed) return 0;
    const r = this.#rx.drain((slot) => this.#slots.get(slot)?.onSlotEvent(), 1024);
    if (r === 'rescan') {
      for (const p of [...this.#slots.values()]) p.onSlotEvent();
      return 1;
    }
    if (r < 0 && this.#rx.error) {
      // The app broke the queue (the only way: it is the sole writer). Its sessions here can no
      // longer be served; a failed queue also reads as "pending" forever, so stop arming it, or
      // the notifier would spin.
      this.#failed = true;
      for (const p of [...this.#slots.values()]) p.onQueueFailed(this.#rx.error);
      return 0;
    }
    return Math.max(r, 0);
  }

  armWake(): boolean {
    if (this.#failed) return false;
    return this.#rx.armWake();
  }

  /** Stops using the app's doorbell (the app is gone; the control server closes the fd). */
  detach(): void {
    this.#appDoorbellFd = -1;
    this.#slots.clear();
  }
}

/** The doorbell and notifier behind every DaemonSegment. */
export class DaemonEnd {
  readonly doorbell: Doorbell;
  readonly #notifier: Notifier;
  readonly #segments = new Map<number, DaemonSegment>();

  constructor() {
    // Kept for ferryd's lifetime: its write end goes to every app ferryd shares a segment with.
    this.doorbell = Doorbell.create({ unref: true });
    this.#notifier = new Notifier({
      mode: 'interrupt',
      doorbell: this.doorbell,
      poll: () => {
        let work = 0;
        for (const s of this.#segments.values()) work += s.poll();
        return work;
      },
      arm: () => {
        let pending = false;
        for (const s of this.#segments.values()) if (s.armWake()) pending = true;
        return pending;
      },
    });
    this.#notifier.start();
  }

  get size(): number {
    return this.#segments.size;
  }

  get(segmentId: number): DaemonSegment | undefined {
    return this.#segments.get(segmentId);
  }

  /** Maps ferryd's side of a new pair segment; `appDoorbellFd` wakes the app. */
  join(seg: PairSegment, appDoorbellFd: number): DaemonSegment {
    const ds = new DaemonSegment(seg, appDoorbellFd);
    this.#segments.set(seg.id, ds);
    // A sleeping notifier armed only the segments it knew: one turn arms this one too.
    this.#notifier.kick();
    return ds;
  }

  leave(segmentId: number): void {
    this.#segments.get(segmentId)?.detach();
    this.#segments.delete(segmentId);
  }

  /** Runs a poll turn soon (after a local change that may need a look). */
  kick(): void {
    this.#notifier.kick();
  }

  close(): void {
    this.#notifier.stop();
    for (const s of this.#segments.values()) s.detach();
    this.#segments.clear();
    this.doorbell.close();
  }
}
