/**
 * One session's data path in the app: its two fifos in a pair segment, and the rules for when to
 * tell the peer (post an event on the pair's queue, ring only if the peer sleeps).
 */

import { debuglog } from 'node:util';
import { type FerryError, ferryError } from '../errors.js';
import type { FifoPairRef } from '../proto/ctrl/messages.js';
import { FifoConsumer, type FifoMemory, FifoProducer } from '../shm/index.js';
import { LARGE_READ_BYTES, tuneMallocForLargeReads } from '../sys/index.js';
import { type AppSegment, noteSent, type SlotListener } from './app-segment.js';

const debug = debuglog('ferry');

/** The first large read of the process raises glibc's trim threshold (sys/malloc-tuning.ts). */
let mallocTuned = false;

/** Upcalls from the data path to the socket that owns the session. */
export interface SessionOwner {
  /** Readable data, FIN or reset may be waiting: pull with read(). */
  onReadable(): void;
  /** Space appeared in the tx fifo after a partial write. */
  onWritable(): void;
  /** The peer reset the session or shared memory went bad. */
  onFailure(err: FerryError): void;
}

/**
 * The way back to its pool of a session on a fast-connect pair (app/fast-pools.ts): the pair is
 * reused in place by the same two apps, and ferryd hears nothing of the session unless it took it
 * into its table (a reload, a limit, a death).
 */
export interface PoolTie {
  /**
   * This end let go (after its last write to the fifos): true when the pair went back through
   * shared memory, so ferryd needs no notice; false when ferryd holds the session (send it as usual).
   */
  end(): boolean;
  /** ferryd holds the session in its table: notices about it (a FIN) go to ferryd as usual. */
  locked(): boolean;
}

/** The views of a session's two fifos, kept for the next session on the same pair (FifoMemory). */
export interface PairMemory {
  readonly tx: FifoMemory;
  readonly rx: FifoMemory;
}

export class AppSession implements SlotListener {
  readonly id: number;
  readonly slot: number;
  readonly segment: AppSegment;
  /** Set on a session of a fast-connect pair: how it goes back to the pool. */
  poolTie: PoolTie | null = null;
  #tx: FifoProducer;
  #rx: FifoConsumer;
  #owner: SessionOwner | null = null;
  #waitingSpace = false;
  #closed = false;

  /**
   * `transport` other than 'ct' means ferryd is the other party (it carries the session). `mem`:
   * the fifos' views from an earlier session on the same pair (a reused fast-connect pair).
   */
  constructor(
    id: number,
    segment: AppSegment,
    ref: FifoPairRef,
    transport = 'ct',
    mem: PairMemory | null = null,
  ) {
    this.id = id;
    if (transport !== 'ct') segment.daemonPeer = true;
    this.slot = ref.slot;
    this.segment = segment;
    this.#tx = new FifoProducer(segment.buffer, ref.txOffset, ref.txSize, mem?.tx ?? null);
    this.#rx = new FifoConsumer(segment.buffer, ref.rxOffset, ref.rxSize, mem?.rx ?? null);
  }

  /** Attaches the owner and looks once: the peer may have written before we were told of it. */
  open(owner: SessionOwner): void {
    this.#owner = owner;
    this.segment.add(this.slot, this);
    this.onSlotEvent();
  }

  get txSize(): number {
    return this.#tx.sizeBytes;
  }

  /** Enqueues what fits; returns bytes taken (0 when full; -1 when the fifo failed). */
  write(chunk: Uint8Array): number {
    const n = this.#tx.enqueue(chunk);
    if (n > 0) this.#wrote();
    return n;
  }

  /** Writes since holdPosts() that have not told the peer yet; -1: posts are not held. */
  #heldWrites = -1;
  /** Bytes writeDeferred() published that the peer was not told of yet (see tellDeferred). */
  #untold = 0;

  /** After bytes were published: tell the peer now if it asked, or once the held writes end. */
  #wrote(): void {
    if (this.#heldWrites >= 0) this.#heldWrites++;
    else this.#tell();
  }

  /** Tells the peer of everything published so far, if it asked (a sleeping reader armed). */
  #tell(): void {
    this.#untold = 0;
    noteSent();
    if (this.#tx.notifyNeeded()) this.segment.post(this.slot);
  }

  /**
   * As write(), but a reader that sleeps is told only once a quarter of the fifo went by untold,
   * or at tellDeferred(): for a writer that batches many small writes in one tick (the Socket's
   * stage), whose reader otherwise caught up, slept and was rung again at every 16 KiB flush (a
   * ring is a system call in the writer and a wake-up in the reader). The bytes are visible at
   * once to a reader that polls. The caller must call tellDeferred() before the tick ends.
   */
  writeDeferred(chunk: Uint8Array): number {
    const n = this.#tx.enqueue(chunk);
    if (n > 0) {
      this.#untold += n;
      if (this.#untold >= this.#tx.sizeBytes >>> 2) this.#wrote();
    }
    return n;
  }

  /** Tells the peer of the bytes writeDeferred() published, if any and if it asked. */
  tellDeferred(): void {
    if (this.#untold > 0) this.#wrote();
  }

  /**
   * Until releasePosts(), writes publish their bytes but do not tell the peer: several writes that
   * make one message (node:http's header and body) then wake a sleeping reader once, after the
   * last of them, so it finds the whole message in one read instead of being rung after the header
   * and reading the body on a second wake. Release in a finally: a held post is a lost wake-up.
   */
  holdPosts(): void {
    if (this.#heldWrites < 0) this.#heldWrites = 0;
  }

  /** Ends holdPosts(): one check (and post) for all the writes made meanwhile. */
  releasePosts(): void {
    const n = this.#heldWrites;
    this.#heldWrites = -1;
    if (n > 0) this.#tell();
  }

  /**
   * Encodes a string straight into the tx fifo, all or nothing: returns its byte length, 0 when it
   * does not fit in one run of free space now (encode it to a Buffer and write() that), -1 failed.
   */
  writeString(str: string, encoding: BufferEncoding, byteLength: number): number {
    const n = this.#tx.enqueueString(str, encoding, byteLength);
    if (n > 0) this.#wrote();
    return n;
  }

  /**
   * After a partial write: ask the peer to tell us once half the tx fifo is free. True = that much
   * is free already. Half, not one byte: a writer behind a full fifo then wakes once per half fifo
   * the reader drains (it writes on meanwhile: no stall), not once per read (the kernel wakes a
   * socket's writer for the same reason: TCP once a third of its buffer is free). Not counted in
   * `segment.spaceWaiters`, which keeps an adaptive notifier polling for up to 2 ms: it lasts as
   * long as the reader takes to drain half a fifo, far longer than a wake, and polling across it
   * took CPU the reader needed on 2 vCPUs (BENCHMARKS.md, "Stream and 64 B data path").
   */
  waitForSpace(): boolean {
    // The reader must hear of what is in the fifo before this end waits for it to make room.
    if (this.#heldWrites > 0) this.releasePosts();
    if (this.#untold > 0) this.#tell();
    if (this.#tx.armSpace(this.#spaceWanted)) return true;
    this.#waitingSpace = true;
    return false;
  }

  /** Free bytes a waiting writer is woken for. */
  get #spaceWanted(): number {
    return this.#tx.sizeBytes >>> 1;
  }

  get peerStoppedReading(): boolean {
    return this.#tx.peerClosed;
  }

  /** Copies out up to `max` readable bytes (a fresh Buffer), or null when none are there. */
  read(max: number): Buffer | null {
    const avail = this.#rx.readable();
    if (avail <= 0) return null;
    const n = Math.min(avail, max);
    if (n >= LARGE_READ_BYTES && !mallocTuned) {
      mallocTuned = true;
      tuneMallocForLargeReads();
    }
    const out = Buffer.allocUnsafe(n);
    const got = this.readInto(out);
    if (got <= 0) return null;
    return got === n ? out : out.subarray(0, got);
  }

  /** Bytes the peer has published and we have not read (0 when none or the fifo failed). */
  get readableBytes(): number {
    return Math.max(0, this.#rx.readable());
  }

  /** Copies up to `out.length` readable bytes into `out`; returns how many (0: none, -1: failed). */
  readInto(out: Uint8Array): number {
    const got = this.#rx.dequeue(out);
    if (got <= 0) return got < 0 ? -1 : 0;
    if (this.#rx.spaceNotifyNeeded()) this.segment.post(this.slot);
    return got;
  }

  /** The tx fifo's whole data ring, which reserve() returns views of. */
  get txRing(): Uint8Array {
    return this.#tx.ring;
  }

  /**
   * Zero-copy write: the contiguous free space at the tail of the tx fifo (at most `maxBytes`), to
   * fill in place and publish with commit(). Empty when full or failed. A write() or fin() in
   * between invalidates it (commit then refuses).
   */
  reserve(maxBytes?: number): Uint8Array {
    return this.#tx.writableView(maxBytes);
  }

  /** reserve() as a length, without the view: the space starts at txRing[txTailOffset] (0: none). */
  lend(maxBytes?: number): number {
    return this.#tx.lend(maxBytes);
  }

  /** Where the tx fifo's tail is in txRing. */
  get txTailOffset(): number {
    return this.#tx.tailOffset;
  }

  /**
   * Publishes the first `n` bytes of the last reserve(); -1 if refused. The peer is told at once if
   * it asked, or with `endOfTick`, once at the end of this tick whatever the commits made in it: a
   * writer that commits in a loop then costs the reader one wake per loop rather than one per
   * commit (a fast reader catches up, sleeps, and was rung again after every 256 KiB commit;
   * BENCHMARKS.md). The bytes are visible at once to a reader that polls.
   */
  commit(n: number, endOfTick = false): number {
    const r = this.#tx.commit(n);
    if (r <= 0) return r;
    // Sent now, told at the end of the tick (whose #tell() notes it again: only changes of the
    // count are read; without endOfTick, #tell() notes it).
    if (endOfTick) noteSent();
    // #tell(): its post covers every byte published so far, writeDeferred()'s untold ones too, so
    // they are marked told (a tellDeferred() after it rang a reader that had read them all).
    if (!endOfTick) this.#tell();
    else if (!this.#notifyScheduled) {
      this.#notifyScheduled = true;
      this.#notifyAfterCommits ??= () => {
        this.#notifyScheduled = false;
        if (!this.#closed) this.#tell();
      };
      process.nextTick(this.#notifyAfterCommits);
    }
    return r;
  }

  #notifyScheduled = false;
  /**
   * After the tick's commits: the consumer's arming pairs with the tail stores already made. Made at
   * the first commit: a closure per session was garbage for every short connection that never commits.
   */
  #notifyAfterCommits: (() => void) | null = null;

  /** Bytes the tx fifo can take now (0 when full or failed). */
  get writableBytes(): number {
    return this.#tx.freeSpace();
  }

  get rxSize(): number {
    return this.#rx.sizeBytes;
  }

  /**
   * Zero-copy read: views of every readable byte of the rx fifo (two when they wrap), valid until
   * consume(). They alias memory the peer can write: decode, do not trust twice.
   */
  readableViews(): [Uint8Array] | [Uint8Array, Uint8Array] {
    return this.#rx.readableViews();
  }

  /** The rx fifo's whole data ring, which readableViews() are views of. */
  get rxRing(): Uint8Array {
    return this.#rx.ring;
  }

  /** Where the rx fifo's readable bytes start in rxRing. */
  get rxHeadOffset(): number {
    return this.#rx.headOffset;
  }

  /** The first of readableViews(), at most `max` bytes of it (empty when nothing is readable). */
  readableView(max: number): Uint8Array {
    return this.#rx.readableView(max);
  }

  /** Consumes `n` bytes seen through readableViews(); tells the peer if it waits for space. -1: failed. */
  consume(n: number): number {
    const k = this.#rx.drop(n);
    if (k > 0 && this.#rx.spaceNotifyNeeded()) this.segment.post(this.slot);
    return k;
  }

  /** True once the peer sent FIN, even with bytes before it still unread. */
  get peerFinished(): boolean {
    return this.#rx.finSet;
  }

  /** True when the peer finished (FIN) and every byte has been read. */
  get ended(): boolean {
    return this.#rx.fin;
  }

  /**
   * Tells the peer what this end polls its rx fifo for (a message id; 0: nothing). A hint for the
   * peer's choice to poll in turn; never needed for a wake-up.
   */
  announcePoll(id: number): void {
    this.#rx.announcePoll(id);
  }

  /** What the peer announced it polls for (any u32: the peer writes it; 0: nothing). */
  peerPollId(): number {
    return this.#tx.peerPollId();
  }

  /**
   * Arms the data notification; true when data (or FIN) arrived meanwhile. A fifo found corrupt
   * on the way fails the session (the owner hears onFailure) and returns false: without that, a
   * reader would be told "look again" forever by a fifo that will never hold valid data.
   */
  armRead(): boolean {
    const r = this.#rx.armData();
    return this.#failIfBroken() ? false : r;
  }

  /** Reports a fifo that went bad to the owner (once it is gone, nothing more); true if broken. */
  #failIfBroken(): boolean {
    const err = this.#rx.error ?? this.#tx.error;
    if (!err) return false;
    this.#owner?.onFailure(err);
    return true;
  }

  /** Half-close: no more data from us. */
  fin(): void {
    this.#tx.fin();
    // The ring waits for the end of the turn: the closes of one turn wake the peer once.
    this.segment.postSoon(this.slot);
  }

  /** Abort: the peer sees a reset on its rx fifo and EPIPE on its tx fifo. */
  reset(): void {
    this.#tx.reset();
    this.#rx.close();
    this.segment.post(this.slot);
  }

  /** Stops reading (full close); the peer's further writes fail with EPIPE. */
  stopReading(): void {
    this.#rx.close();
    // A peer app that sent FIN writes no more, so it has nothing to learn from this close (its
    // writes cannot fail, it waits for no space): no event, which was a third of the events of a
    // short connection and a wake of the peer for nothing when it came alone. ferryd, as the peer
    // of sessions it carries, is still told.
    if (!this.#rx.finSet || this.segment.daemonPeer) this.segment.postSoon(this.slot);
  }

  /** Detaches from the segment; the fifos belong to ferryd again once it hears close. */
  detach(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waitingSpace = false;
    this.segment.remove(this.slot, this);
    this.#owner = null;
  }

  onSegmentFailure(err: FerryError): void {
    this.#owner?.onFailure(err);
  }

  onSlotEvent(): void {
    const owner = this.#owner;
    // Guarded: the arguments cost shared-memory loads on every event even when debug is off.
    if (debug.enabled) {
      debug(
        'session %d: event (owner %s, readable %d, fin %s, rx error %s)',
        this.id,
        owner !== null,
        this.#rx.readable(),
        this.#rx.fin,
        this.#rx.error?.message,
      );
    }
    if (!owner) return;
    if (this.#failIfBroken()) return;
    if (this.#rx.peerReset) {
      owner.onFailure(ferryError('ECONNRESET', 'peer reset the session'));
      return;
    }
    // An event means the peer may have cleared our wake flags (its CAS can consume an arming we
    // made after already reading the data it announced). Re-arm before trusting "nothing to do",
    // or a stale event would leave both ends asleep with bytes in a fifo.
    const want = this.#spaceWanted;
    if (
      this.#waitingSpace &&
      (this.#tx.freeSpace() >= want || this.#tx.peerClosed || this.#tx.armSpace(want))
    ) {
      this.#waitingSpace = false;
      owner.onWritable();
    }
    const readable = this.#rx.readable() > 0 || this.#rx.fin || this.#rx.armData();
    // Loading the peer's indices just now may have found them corrupt.
    if (this.#failIfBroken()) return;
    if (readable) owner.onReadable();
  }
}
