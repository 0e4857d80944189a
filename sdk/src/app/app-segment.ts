/**
 * An app's view of a pair segment: the mapping, the event queue it drains, the one it posts to,
 * and the peer's doorbell. Sessions register here by slot so events find them.
 */

import { debuglog } from 'node:util';
import { type FerryError, ferryError } from '../errors.js';
import type { SegmentAdd } from '../proto/ctrl/messages.js';
import { EventQueueConsumer, EventQueueProducer, Segment } from '../shm/index.js';
import { close, ring } from '../sys/index.js';

const debug = debuglog('ferry');

export interface SlotListener {
  /** Something changed in this session's fifos (data, space, FIN, reset): look. */
  onSlotEvent(): void;
  /** The segment's event queue broke (a hostile or buggy peer): the session cannot go on. */
  onSegmentFailure(err: FerryError): void;
}

let sent = 0;
/**
 * How often this process sent anything to a peer (a post, or bytes published whether or not the
 * peer asked to be told): only its changes mean something (Notifier's posts).
 */
export function processSends(): number {
  return sent;
}
/** Counts a send for processSends(). */
export function noteSent(): void {
  sent++;
}

/** Segments with a ring deferred by postSoon (rung at exit if the process leaves first). */
const pendingRings = new Set<AppSegment>();
let exitHooked = false;
function ringAllOnExit(): void {
  for (const seg of [...pendingRings]) seg.ringPendingNow();
}

export class AppSegment {
  readonly id: number;
  readonly segment: Segment;
  readonly maxSlot: number;
  #rx: EventQueueConsumer;
  #tx: EventQueueProducer;
  #peerDoorbellFd: number;
  #slots = new Map<number, SlotListener[]>();
  /** The drain callback, made once: poll() runs on every turn of a polling notifier. */
  readonly #onEntry = (slot: number): void => this.#dispatch(slot);
  /** Sessions whose writes wait for fifo space (the notifier keeps polling while any do). */
  spaceWaiters = 0;
  /** Posts made and the peer's doorbell rings they cost (diagnostics). */
  posts = 0;
  rings = 0;
  /** ferryd said segment-del: release once no session uses it. */
  deleted = false;
  /** The ferryd that made it is gone: teardown notices about its sessions go nowhere. */
  orphaned = false;
  /** Connects answered in this segment whose socket is not bound yet (see Attachment). */
  pins = 0;
  /** The other party is ferryd itself (sessions it carries over TCP), not an app. */
  daemonPeer = false;
  /** Server side of fast-connect pools: slots of pairs not accepted yet, and who looks at them. */
  poolSlots: ReadonlyMap<number, unknown> | null = null;
  onPoolSlot: ((slot: number) => void) | null = null;

  constructor(msg: SegmentAdd, segmentFd: number, peerDoorbellFd: number) {
    this.id = msg.segment;
    this.maxSlot = msg.maxSlot;
    this.segment = Segment.attach(segmentFd, msg.size);
    this.#rx = new EventQueueConsumer(this.segment.buffer, msg.rxQueueOffset, msg.queueCapacity, msg.maxSlot);
    this.#tx = new EventQueueProducer(this.segment.buffer, msg.txQueueOffset, msg.queueCapacity);
    this.#peerDoorbellFd = peerDoorbellFd;
  }

  get buffer(): ArrayBuffer {
    return this.segment.buffer;
  }

  get sessionCount(): number {
    return this.#listeners;
  }

  /** Listeners across all slots (sessionCount). */
  #listeners = 0;

  add(slot: number, l: SlotListener): void {
    const list = this.#slots.get(slot);
    if (list) list.push(l);
    else this.#slots.set(slot, [l]);
    this.#listeners++;
  }

  /**
   * An emptied slot keeps its (empty) list: a fast-connect pair's slot serves one session after
   * another, and deleting and setting the map entry with a new array per session was garbage and
   * rehashing on every connection.
   */
  remove(slot: number, l: SlotListener): void {
    const list = this.#slots.get(slot);
    if (!list) return;
    const i = list.indexOf(l);
    if (i < 0) return;
    // pop() for the last one (nearly always the only one): splice makes an array of what it removed.
    if (i === list.length - 1) list.pop();
    else list.splice(i, 1);
    this.#listeners--;
  }

  /** Tells the peer that `slot` has news; rings its doorbell only if it sleeps (coalesced). */
  post(slot: number): void {
    this.#tx.push(slot);
    this.posts++;
    sent++;
    if (this.#tx.wakeNeeded()) {
      this.rings++;
      if (debug.enabled) debug('segment %d: post slot %d, ring', this.id, slot);
      ring(this.#peerDoorbellFd);
    }
  }

  /**
   * As post, but the ring waits for the end of this loop turn (setImmediate): for news nothing in
   * this turn waits on (a fast connect's open, a FIN, a close). The event is queued now; at the
   * end of the turn the peer is rung only if it still sleeps, so the opens and closes of a turn
   * (and the data posts that follow them) cost the peer one wake-up, and a peer that polled them
   * meanwhile none. Rings still pending when the process exits are rung from its 'exit' handler.
   */
  postSoon(slot: number): void {
    this.#tx.push(slot);
    this.posts++;
    sent++;
    if (this.#ringScheduled) return;
    this.#ringScheduled = true;
    if (!exitHooked) {
      exitHooked = true;
      process.once('exit', ringAllOnExit);
    }
    pendingRings.add(this);
    setImmediate(this.#ringLater);
  }

  #ringScheduled = false;

  /** A ring postSoon deferred is still to come (tests). */
  get postSoonPending(): boolean {
    return this.#ringScheduled;
  }

  readonly #ringLater = (): void => {
    if (!this.#ringScheduled) return;
    this.#ringScheduled = false;
    pendingRings.delete(this);
    if (this.#peerDoorbellFd < 0 || this.#rx.error !== null || !this.#tx.wakeNeeded()) return;
    if (debug.enabled) debug('segment %d: deferred ring', this.id);
    this.rings++;
    try {
      ring(this.#peerDoorbellFd);
    } catch {
      // Nobody to hear it (the peer's process is gone): ferryd tells us so on its own.
    }
  };

  /**
   * Rings now what postSoon deferred, if the peer still sleeps: at exit (no later turn), and at a
   * fast connect once its first bytes are in the fifo (socket-connect.ts takeFast).
   */
  ringPendingNow(): void {
    this.#ringLater();
  }

  /** Delivers queued events; returns how many. On overflow every session is told. */
  poll(): number {
    if (this.#rx.error !== null) return 0;
    const r = this.#rx.drain(this.#onEntry, 1024);
    if (r === -1) {
      // A corrupt queue fails every session that shares it, once; it is never armed again, so
      // the notifier cannot spin on it.
      this.failAll(this.#rx.error ?? ferryError('ERR_FERRY_QUEUE_CORRUPT'));
      return 0;
    }
    if (r !== 0 && debug.enabled) debug('segment %d: drained %s', this.id, r);
    if (r === 'rescan') {
      const pool = this.poolSlots ? [...this.poolSlots.keys()] : [];
      for (const slot of [...this.#slots.keys(), ...pool]) this.#dispatch(slot);
      return 1;
    }
    return r;
  }

  /**
   * The peer armed its wake flag on our queue and nothing has rung it since: it sleeps and posts
   * nothing until rung (Notifier.peersAsleep). A read only; post() still claims the ring.
   */
  get peerAsleep(): boolean {
    return this.#tx.consumerArmed;
  }

  /** Asks to be woken; true when events are already waiting (do not sleep). */
  armWake(): boolean {
    if (this.#rx.error !== null) return false;
    return this.#rx.armWake();
  }

  /** Fails every session in the segment (the peer or the daemon that carried them is gone). */
  failAll(err: FerryError): void {
    for (const list of [...this.#slots.values()]) for (const l of [...list]) l.onSegmentFailure(err);
  }

  /**
   * False once nobody can hear the peer's doorbell (EPIPE: its process is gone). Costs the peer a
   * spurious wake-up when it is alive.
   */
  peerAlive(): boolean {
    if (this.#peerDoorbellFd < 0) return false;
    try {
      return ring(this.#peerDoorbellFd);
    } catch {
      return false;
    }
  }

  get failed(): boolean {
    return this.#rx.error !== null;
  }

  release(): void {
    if (this.#ringScheduled) this.#ringLater();
    close(this.#peerDoorbellFd);
    this.#peerDoorbellFd = -1;
    this.segment.release();
  }

  #dispatch(slot: number): void {
    // A pool pair's first event announces a fast connect (in a self-pair, the client's own session
    // sits on the same slot: both are told).
    if (this.poolSlots?.has(slot)) this.onPoolSlot?.(slot);
    const list = this.#slots.get(slot);
    if (list === undefined || list.length === 0) return;
    // A slot nearly always has one listener: call it without copying the list (a copy per event
    // was an allocation on every wake). With more, a copy, as a listener may remove itself.
    if (list.length === 1) (list[0] as SlotListener).onSlotEvent();
    else for (const l of [...list]) l.onSlotEvent();
  }
}
