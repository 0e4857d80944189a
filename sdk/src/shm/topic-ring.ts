// A topic's shared memory: the segment (ferryd creates it, apps attach it), and the broadcast ring
// of one publisher slot with its writer and its (many, independent) readers.
//
// Readers never write the ring: a slow reader is simply lapped. It notices (its position fell more
// than half a ring behind the tail, or the record it just decoded was overwritten meanwhile: the
// tail check after reading, seqlock style) and jumps to the newest record, counting what it lost
// from the records' sequence numbers. Everything read is checked as hostile: a length out of range
// or a position that moves backwards is treated as a lap, never trusted.

import { ferryError } from '../errors.js';
import { addSeals, close, fstatSize, ftruncate, getSeals, Mapping, memfdCreate } from '../sys/index.js';
import { fence, loadAcquire, storeRelaxed, storeRelease } from './atomics.js';
import { isPowerOfTwo } from './layout.js';
import { SEGMENT_REQUIRED_SEALS } from './segment.js';
import {
  PAD_RECORD,
  SLOT_EPOCH,
  SLOT_FREE,
  SLOT_LAST,
  SLOT_LIVE,
  SLOT_MARKS,
  SLOT_PREV_SEQ,
  SLOT_SEQ,
  SLOT_SEQ_BEFORE,
  SLOT_STATE,
  SLOT_TAIL,
  TOPIC_DROPS_OFFSET,
  TOPIC_END_OFFSET,
  TOPIC_FLAG_OPENS,
  TOPIC_FLAG_OPENS_BRACKET,
  TOPIC_FLAGS_OFFSET,
  TOPIC_MAGIC,
  TOPIC_MAGIC_OFFSET,
  TOPIC_MAX_PUBS_OFFSET,
  TOPIC_MAX_RING_BYTES,
  TOPIC_MAX_SUBS,
  TOPIC_MAX_SUBS_OFFSET,
  TOPIC_MIN_RING_BYTES,
  TOPIC_MIN_VERSION,
  TOPIC_OPENS_OFFSET,
  TOPIC_PENDING_OFFSET,
  TOPIC_POLICY_OFFSET,
  TOPIC_RECORD_HEADER,
  TOPIC_RING_BYTES_OFFSET,
  TOPIC_SLOT_BYTES,
  TOPIC_SLOT_MARKS,
  TOPIC_SLOTS_OFFSET,
  TOPIC_VERSION,
  TOPIC_VERSION_OFFSET,
  TOPIC_WAKE0_OFFSET,
  topicMaxPayload,
  topicRingOffset,
  topicSegmentBytes,
} from './topic-layout.js';

/** A mapped topic segment. */
export class TopicSegment {
  readonly fd: number;
  readonly mapping: Mapping;
  readonly maxPubs: number;
  readonly ringBytes: number;
  readonly sizeBytes: number;
  /** The whole segment as u32 words (index = byte offset / 4). */
  readonly words: Uint32Array;

  /**
   * The layout version ferryd made it with: 1 (an older ferryd) carries msgpack only, so
   * publishers must not write shape records there; 2 carries both.
   */
  readonly version: number;

  private constructor(
    fd: number,
    mapping: Mapping,
    maxPubs: number,
    ringBytes: number,
    size: number,
    version: number,
  ) {
    this.version = version;
    this.fd = fd;
    this.mapping = mapping;
    this.maxPubs = maxPubs;
    this.ringBytes = ringBytes;
    this.sizeBytes = size;
    this.words = new Uint32Array(mapping.buffer);
    const flags = this.words[TOPIC_FLAGS_OFFSET / 4] ?? 0;
    this.tracksOpens = (flags & TOPIC_FLAG_OPENS) !== 0;
    this.bracketsOpens = (flags & TOPIC_FLAG_OPENS_BRACKET) !== 0;
  }

  /** OPENS is odd while ferryd is giving a slot away (TOPIC_FLAG_OPENS_BRACKET; 0 from an older ferryd). */
  readonly bracketsOpens: boolean;

  /** ferryd keeps OPENS (TOPIC_FLAG_OPENS): a reader may skip its look at each slot's EPOCH while it is unchanged. */
  readonly tracksOpens: boolean;

  /** Slots given to publishers so far (0 unless tracksOpens). */
  get opens(): number {
    return Atomics.load(this.words, TOPIC_OPENS_OFFSET / 4);
  }

  /** ferryd: a fresh sealed topic segment. */
  static create(name: string, maxPubs: number, ringBytes: number, policy = 0): TopicSegment {
    checkGeometry(maxPubs, ringBytes);
    const size = topicSegmentBytes(maxPubs, ringBytes);
    const fd = memfdCreate(`ferry-topic-${name}`.slice(0, 200), { allowSealing: true });
    let mapping: Mapping | null = null;
    try {
      ftruncate(fd, size);
      mapping = Mapping.map(fd, size);
      const w = new Uint32Array(mapping.buffer);
      w[TOPIC_VERSION_OFFSET / 4] = TOPIC_VERSION;
      w[TOPIC_MAX_PUBS_OFFSET / 4] = maxPubs;
      w[TOPIC_MAX_SUBS_OFFSET / 4] = TOPIC_MAX_SUBS;
      w[TOPIC_RING_BYTES_OFFSET / 4] = ringBytes;
      w[TOPIC_POLICY_OFFSET / 4] = policy;
      w[TOPIC_FLAGS_OFFSET / 4] = TOPIC_FLAG_OPENS | TOPIC_FLAG_OPENS_BRACKET;
      Atomics.store(w, TOPIC_MAGIC_OFFSET / 4, TOPIC_MAGIC);
      addSeals(fd, SEGMENT_REQUIRED_SEALS);
      return new TopicSegment(fd, mapping, maxPubs, ringBytes, size, TOPIC_VERSION);
    } catch (err) {
      mapping?.release();
      close(fd);
      throw err;
    }
  }

  /** An app: maps a topic segment ferryd sent, after checking seals, size and header. Owns `fd` on success. */
  static attach(fd: number): TopicSegment {
    const seals = getSeals(fd);
    if ((seals & SEGMENT_REQUIRED_SEALS) !== SEGMENT_REQUIRED_SEALS) {
      throw ferryError('ERR_FERRY_SHM_NOT_SEALED', `topic segment seals 0x${seals.toString(16)}`);
    }
    const size = fstatSize(fd);
    if (size < TOPIC_SLOTS_OFFSET || size > topicSegmentBytes(64, TOPIC_MAX_RING_BYTES)) {
      throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `topic segment of ${size} bytes`);
    }
    const mapping = Mapping.map(fd, size);
    try {
      const w = new Uint32Array(mapping.buffer);
      const magic = Atomics.load(w, TOPIC_MAGIC_OFFSET / 4);
      const maxPubs = w[TOPIC_MAX_PUBS_OFFSET / 4] ?? 0;
      const ringBytes = w[TOPIC_RING_BYTES_OFFSET / 4] ?? 0;
      if (magic !== TOPIC_MAGIC) {
        throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `topic segment magic 0x${magic.toString(16)}`);
      }
      const version = w[TOPIC_VERSION_OFFSET / 4] ?? 0;
      if (version < TOPIC_MIN_VERSION || version > TOPIC_VERSION) {
        throw ferryError(
          'ERR_FERRY_PROTO_VERSION',
          `topic segment version ${version}; this SDK reads versions ${TOPIC_MIN_VERSION}-${TOPIC_VERSION} (a newer ferryd?)`,
        );
      }
      checkGeometry(maxPubs, ringBytes);
      if (topicSegmentBytes(maxPubs, ringBytes) !== size) {
        throw ferryError(
          'ERR_FERRY_SHM_BAD_LAYOUT',
          `topic segment geometry does not match its ${size} bytes`,
        );
      }
      return new TopicSegment(fd, mapping, maxPubs, ringBytes, size, version);
    } catch (err) {
      mapping.release();
      throw err;
    }
  }

  /** The slow-subscriber policy (TOPIC_POLICY; an unknown value reads as lose-oldest). */
  get policy(): number {
    return this.words[TOPIC_POLICY_OFFSET / 4] === 1 ? 1 : 0;
  }

  /** Why ferryd ended the topic (TOPIC_END), 0 while it lives. */
  get ended(): number {
    return Atomics.load(this.words, TOPIC_END_OFFSET / 4);
  }

  /** ferryd: ends the topic for every member (they fail with the error `code` stands for). */
  end(code: number): void {
    Atomics.store(this.words, TOPIC_END_OFFSET / 4, code);
  }

  /**
   * ferryd: gives slot `i` to a new publisher (zeroed indices, next epoch, live). The order is
   * deliberate: a reader that sees the new epoch starts at the ring's start and must find the
   * indices zeroed already; one that sees it before LIVE looks again if the slot reads FREE (never
   * given before) and otherwise reads from the start, as after LIVE (messages/topics.test.ts
   * replays both).
   */
  openSlot(i: number): void {
    const b = this.#slotWord(i);
    // OPENS odd first: a reader of the counts below that finds it even and unchanged around its
    // reads knows no hand-over wrote them meanwhile (slotCounts). Every Atomics op here is
    // sequentially consistent, so this bump is seen before any of the stores after it.
    if (this.bracketsOpens) Atomics.add(this.words, TOPIC_OPENS_OFFSET / 4, 1);
    // What the previous publisher wrote in all, before it is zeroed: readers that had not read
    // it all count the rest lost (prevSeq) rather than lose it silently.
    const seq = Atomics.load(this.words, b + SLOT_SEQ / 4);
    Atomics.store(this.words, b + SLOT_PREV_SEQ / 4, seq);
    // And what all publishers of the slot wrote before this one: a reader that missed more than one
    // hand-over counts the messages of the publishers in between as well.
    Atomics.store(
      this.words,
      b + SLOT_SEQ_BEFORE / 4,
      (Atomics.load(this.words, b + SLOT_SEQ_BEFORE / 4) + seq) >>> 0,
    );
    // TAIL last of the three: a reader that sees it zeroed sees LAST and SEQ zeroed too. Zeroed
    // first, it could be read with the old publisher's LAST, which a lap then jumps to; once the
    // old TAIL neared 2^32, a TAIL of 0 lies just ahead of that LAST and the reader delivered the
    // old newest record again (before the epoch changes, so the epoch check cannot tell).
    Atomics.store(this.words, b + SLOT_LAST / 4, 0);
    Atomics.store(this.words, b + SLOT_SEQ / 4, 0);
    // The previous publisher's marks point into its own records: a lapped reader of the next one
    // must not resume there (0, the next publisher's first record, is right while its tail is low).
    for (let j = 0; j < TOPIC_SLOT_MARKS; j++) Atomics.store(this.words, b + SLOT_MARKS / 4 + j, 0);
    Atomics.store(this.words, b + SLOT_TAIL / 4, 0);
    Atomics.add(this.words, b + SLOT_EPOCH / 4, 1);
    // After EPOCH: a reader that saw OPENS unchanged and skipped the EPOCHs sees this one's next
    // time (and with the bracket, OPENS is even again: the counts are this epoch's).
    Atomics.add(this.words, TOPIC_OPENS_OFFSET / 4, 1);
    // store-release: state last, so a reader that sees LIVE sees the zeroed indices and new epoch.
    storeRelease(this.words, b + SLOT_STATE / 4, SLOT_LIVE);
  }

  /** ferryd: the slot's publisher left; readers finish what it wrote. */
  closeSlot(i: number, state: number): void {
    storeRelease(this.words, this.#slotWord(i) + SLOT_STATE / 4, state);
  }

  slotState(i: number): number {
    return loadAcquire(this.words, this.#slotWord(i) + SLOT_STATE / 4);
  }

  slotEpoch(i: number): number {
    return Atomics.load(this.words, this.#slotWord(i) + SLOT_EPOCH / 4);
  }

  /** The SEQ slot `i`'s previous publisher had reached when ferryd gave the slot to the current one. */
  slotPrevSeq(i: number): number {
    return Atomics.load(this.words, this.#slotWord(i) + SLOT_PREV_SEQ / 4);
  }

  /**
   * Slot `i`'s SEQ_BEFORE and PREV_SEQ as ferryd wrote them when it gave the slot to epoch `epoch`'s
   * publisher, or null when they may be another hand-over's: ferryd writes them before it bumps
   * EPOCH, so an EPOCH that reads `epoch` after them does not say they are its counts; they may be
   * the next hand-over's, half done. With TOPIC_FLAG_OPENS_BRACKET, OPENS even and unchanged around
   * the reads says no hand-over was under way or began meanwhile. An older ferryd's segment has
   * only the EPOCH check (a reader of it may count a hand-over under way: what it always did), and
   * so does a reader with `trustOpens` false: ferryd's own (no hand-over can be under way while
   * its thread reads), or one that waited long enough for an OPENS a member may have left odd.
   */
  slotCounts(i: number, epoch: number, trustOpens = true): { seqBefore: number; prevSeq: number } | null {
    const w = this.words;
    const b = this.#slotWord(i);
    const bracket = trustOpens && this.bracketsOpens;
    const opens = bracket ? Atomics.load(w, TOPIC_OPENS_OFFSET / 4) : 0;
    if ((opens & 1) !== 0) return null;
    const seqBefore = Atomics.load(w, b + SLOT_SEQ_BEFORE / 4);
    const prevSeq = Atomics.load(w, b + SLOT_PREV_SEQ / 4);
    if (Atomics.load(w, b + SLOT_EPOCH / 4) !== epoch) return null;
    if (bracket && Atomics.load(w, TOPIC_OPENS_OFFSET / 4) !== opens) return null;
    return { seqBefore, prevSeq };
  }

  /** Messages written through slot `i` so far (for `ferry show topics`). */
  slotSeq(i: number): number {
    return Atomics.load(this.words, this.#slotWord(i) + SLOT_SEQ / 4);
  }

  /** Word index of slot `i`'s control block. */
  #slotWord(i: number): number {
    return (TOPIC_SLOTS_OFFSET + i * TOPIC_SLOT_BYTES) / 4;
  }

  ring(i: number): Buffer {
    return Buffer.from(this.mapping.buffer, topicRingOffset(this.maxPubs, this.ringBytes, i), this.ringBytes);
  }

  slotWord(i: number): number {
    return this.#slotWord(i);
  }

  /** A subscriber reports what it lost; ferryd reads it for `ferry show topics`. */
  setDrops(bit: number, dropped: number): void {
    Atomics.store(this.words, TOPIC_DROPS_OFFSET / 4 + bit, dropped >>> 0);
  }

  drops(bit: number): number {
    return Atomics.load(this.words, TOPIC_DROPS_OFFSET / 4 + bit);
  }

  /** ferryd: zeroes a subscriber bit's counter before handing the bit out again. */
  clearSubscriber(bit: number): void {
    this.setDrops(bit, 0);
  }

  /** A subscriber asks to be woken (bit set), re-checking afterwards is the caller's job. */
  armWake(bit: number): void {
    Atomics.or(this.words, TOPIC_WAKE0_OFFSET / 4 + (bit >> 5), 1 << (bit & 31));
  }

  /** A subscriber found work after arming: no wake needed. */
  disarmWake(bit: number): void {
    Atomics.and(this.words, TOPIC_WAKE0_OFFSET / 4 + (bit >> 5), ~(1 << (bit & 31)));
  }

  /**
   * A publisher, after publishing: true when some subscriber sleeps and nobody rang ferryd since
   * (PENDING 0 -> 1): ring its topic doorbell then.
   */
  wakeNeeded(): boolean {
    const w = this.words;
    if ((Atomics.load(w, TOPIC_WAKE0_OFFSET / 4) | Atomics.load(w, TOPIC_WAKE0_OFFSET / 4 + 1)) === 0)
      return false;
    return Atomics.compareExchange(w, TOPIC_PENDING_OFFSET / 4, 0, 1) === 0;
  }

  /** ferryd: takes the wake requests (PENDING cleared first, then the bits exchanged for 0). */
  takeWakeMask(): [number, number] {
    storeRelease(this.words, TOPIC_PENDING_OFFSET / 4, 0);
    const w0 = Atomics.exchange(this.words, TOPIC_WAKE0_OFFSET / 4, 0) >>> 0;
    const w1 = Atomics.exchange(this.words, TOPIC_WAKE0_OFFSET / 4 + 1, 0) >>> 0;
    return [w0, w1];
  }

  release(): void {
    this.mapping.release();
    close(this.fd);
  }
}

function checkGeometry(maxPubs: number, ringBytes: number): void {
  if (!(Number.isInteger(maxPubs) && maxPubs >= 1 && maxPubs <= 64)) {
    throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `${maxPubs} publisher slots`);
  }
  if (!(isPowerOfTwo(ringBytes) && ringBytes >= TOPIC_MIN_RING_BYTES && ringBytes <= TOPIC_MAX_RING_BYTES)) {
    throw ferryError('ERR_FERRY_SHM_BAD_LAYOUT', `ring of ${ringBytes} bytes`);
  }
}

/** Records a reader decodes before one check of the tail (TopicRingReader.read's `batch`). */
export const READ_BATCH_MAX = 64;

/** Payloads up to this many bytes are copied by writeWords' loop; larger ones by memcpy (set). */
const WORD_COPY_MAX = 512;

/** Below this much room before the ring's end, reserve() skips to its start. */
const MIN_IN_PLACE = 256;

/** The publisher of one slot: appends records and publishes the tail. */
export class TopicRingWriter {
  readonly #w: Uint32Array;
  readonly #ring: Buffer;
  /** The ring as u32 words (records are 8-aligned): writeWords copies small payloads through it. */
  readonly #ringWords: Uint32Array;
  readonly #view: DataView;
  readonly #base: number;
  readonly #size: number;
  readonly #mask: number;
  readonly maxPayload: number;
  #tail = 0;
  #seq = 0;
  /** log2 of an eighth of the ring, and where the eighth after the last marked one begins. */
  readonly #markShift: number;
  #markNext = 0;

  constructor(seg: TopicSegment, slot: number) {
    this.#w = seg.words;
    this.#ring = seg.ring(slot);
    this.#ringWords = new Uint32Array(this.#ring.buffer, this.#ring.byteOffset, this.#ring.length / 4);
    this.#view = new DataView(this.#ring.buffer, this.#ring.byteOffset, this.#ring.length);
    this.#base = seg.slotWord(slot);
    this.#size = seg.ringBytes;
    this.#mask = seg.ringBytes - 1;
    this.maxPayload = topicMaxPayload(seg.ringBytes);
    // A slot is handed over zeroed (openSlot); start from what it says anyway.
    this.#tail = Atomics.load(this.#w, this.#base + SLOT_TAIL / 4);
    this.#seq = Atomics.load(this.#w, this.#base + SLOT_SEQ / 4);
    this.#markShift = Math.log2(seg.ringBytes / TOPIC_SLOT_MARKS);
    // The next record marks the eighth it starts in.
    this.#markNext = (this.#tail >>> this.#markShift) << this.#markShift;
  }

  get published(): number {
    return this.#seq;
  }

  /**
   * Appends one record whose payload is `payload` (at most maxPayload bytes) and publishes it.
   * `skip` messages are counted as lost before it (a relay forwarding a gap it saw upstream):
   * readers count them in `dropped` as if they had been lapped over them.
   */
  write(payload: Uint8Array, skip = 0): void {
    this.#reservedAt = -1;
    const n = payload.length;
    const pos = this.#placeFor(n);
    this.#ring.set(payload, pos + TOPIC_RECORD_HEADER);
    this.#publish(pos, n, skip);
  }

  /**
   * write() for a payload held in the first `n` bytes of `words`' buffer (a publisher's scratch,
   * `words` a u32 view from its byte 0): small ones are copied a word at a time, without the
   * subarray() a write() of them would need (a Buffer made per message: 18% of a publisher's CPU
   * per message in a profile, more than the copy). The last word may carry up to 3 bytes of the
   * scratch past `n` into the record's padding; readers read `n`.
   */
  writeWords(words: Uint32Array, n: number): void {
    if (n > WORD_COPY_MAX || n > words.length * 4) {
      this.write(new Uint8Array(words.buffer, words.byteOffset, n));
      return;
    }
    this.#reservedAt = -1;
    const pos = this.#placeFor(n);
    const dst = this.#ringWords;
    const at = (pos + TOPIC_RECORD_HEADER) >> 2;
    const count = (n + 3) >> 2;
    for (let i = 0; i < count; i++) dst[at + i] = words[i] as number;
    this.#publish(pos, n, 0);
  }

  /**
   * Room for the next record's payload, to fill in place: returns where in `ringBuffer` the payload
   * starts; `reservedBytes` says how much it may take (maxPayload, less near the ring's end). Near
   * the end (less than MIN_IN_PLACE left) a PAD is placed and the room is at the ring's start.
   * Nothing is published until commitReserved(); a payload that does not fit goes through write().
   * (The bytes written in place lie beyond the published tail, within maxPayload of it, as write()'s
   * do before it publishes: readers within half a ring are never overwritten.)
   */
  reserve(): number {
    let pos = this.#tail & this.#mask;
    if (this.#size - pos - TOPIC_RECORD_HEADER < MIN_IN_PLACE) {
      this.#view.setUint32(pos, PAD_RECORD, true);
      this.#tail = (this.#tail + (this.#size - pos)) >>> 0;
      pos = 0;
    }
    this.#reservedAt = pos;
    this.reservedBytes = Math.min(this.maxPayload, this.#size - pos - TOPIC_RECORD_HEADER);
    return pos + TOPIC_RECORD_HEADER;
  }

  /** Payload bytes the last reserve() offers. */
  reservedBytes = 0;
  #reservedAt = -1;

  /** The ring itself (for reserve()'s in-place payloads) and a DataView over it. */
  get ringBuffer(): Buffer {
    return this.#ring;
  }

  get ringView(): DataView {
    return this.#view;
  }

  /** Publishes the record whose `n`-byte payload was written where reserve() said. */
  commitReserved(n: number): void {
    const pos = this.#reservedAt;
    if (pos < 0 || n > this.reservedBytes || n < 0) {
      throw ferryError(
        'ERR_FERRY_SHM_BAD_LAYOUT',
        `a ${n}-byte record in a reservation of ${this.reservedBytes}`,
      );
    }
    this.#reservedAt = -1;
    this.#publish(pos, n, 0);
  }

  /** Where a record with an `n`-byte payload goes: here, or at the ring's start after a PAD. */
  #placeFor(n: number): number {
    const size = (TOPIC_RECORD_HEADER + n + 7) & ~7;
    const pos = this.#tail & this.#mask;
    if (pos + size <= this.#size) return pos;
    this.#view.setUint32(pos, PAD_RECORD, true);
    this.#tail = (this.#tail + (this.#size - pos)) >>> 0;
    return 0;
  }

  #publish(pos: number, n: number, skip: number): void {
    const size = (TOPIC_RECORD_HEADER + n + 7) & ~7;
    this.#seq = (this.#seq + skip) >>> 0;
    this.#view.setUint32(pos, n, true);
    this.#view.setUint32(pos + 4, this.#seq, true);
    const start = this.#tail;
    this.#tail = (this.#tail + size) >>> 0;
    this.#seq = (this.#seq + 1) >>> 0;
    // The first record started in (or after) each eighth of the ring: where a lapped reader can
    // resume. A compare per record; stores only when an eighth is entered.
    if (((start - this.#markNext) | 0) >= 0) this.#mark(start);
    // LAST and SEQ are read after a load-acquire of TAIL (a lapped reader, a new one, ferryd's
    // counters), which the store-release below orders after them: one fence per record, not three.
    storeRelaxed(this.#w, this.#base + SLOT_LAST / 4, start);
    storeRelaxed(this.#w, this.#base + SLOT_SEQ / 4, this.#seq);
    // store-release: the tail last (paired with the readers' load-acquire of TAIL), after the bytes.
    storeRelease(this.#w, this.#base + SLOT_TAIL / 4, this.#tail);
    // The next record's bytes go over old records that readers check against this tail: off x86
    // they could be seen before it (a release orders only what precedes it), and a reader would
    // take an overwritten record for intact. Nothing on x86.
    fence();
  }

  /**
   * `start` begins a record in a new eighth of the ring: it becomes that eighth's mark, and that
   * of every eighth passed over since the last mark (by a large record or a PAD), so no mark is
   * ever older than a pass of the ring. Plain stores, ordered by the tail's store-release.
   */
  #mark(start: number): void {
    const shift = this.#markShift;
    const passed = Math.min(TOPIC_SLOT_MARKS, 1 + (((start - this.#markNext) >>> 0) >>> shift));
    const e = start >>> shift;
    const marks = this.#base + SLOT_MARKS / 4;
    for (let i = 0; i < passed; i++) this.#w[marks + ((e - i) & (TOPIC_SLOT_MARKS - 1))] = start;
    this.#markNext = ((e + 1) << shift) >>> 0;
  }
}

/** One subscriber's reader of one slot's ring. */
export class TopicRingReader {
  readonly #w: Uint32Array;
  readonly #ring: Buffer;
  readonly #view: DataView;
  readonly #base: number;
  readonly #size: number;
  readonly #mask: number;
  readonly #maxPayload: number;
  readonly #range = { start: 0, end: 0 };
  #pos: number;
  #expect: number;
  /** The next record's number is taken as the start, not compared (a start at 'last'). */
  #resync = false;
  /** Messages this reader lost to laps. */
  dropped = 0;
  /** The slot's EPOCH this reader reads for: the ring holds another publisher's records once it changes. */
  readonly #epoch: number;
  /** The slot went to another publisher: this reader delivers nothing more (its owner replaces it). */
  #stale = false;
  /**
   * The slot's SEQ_BEFORE as ferryd wrote it for this reader's epoch: at a later hand-over, its
   * publisher's messages and those of any publisher in between are counted from it. Known once a
   * consistent read of it was had (TopicSegment.slotCounts), which a reader joining while a
   * hand-over is under way has not yet: it tries again on each read while its epoch lasts.
   */
  #seqBefore = 0;
  #seqBeforeKnown = false;
  readonly #seg: TopicSegment;
  readonly #slot: number;

  /**
   * `from`: 'start' (a publisher that came after us), 'newest' (the next message), 'last' (the
   * newest one). `epoch`: the slot's EPOCH as the owner read it before making this reader (the
   * one it compares on each poll), not read here: a reader that took a newer epoch than its owner
   * holds would deliver records the owner's next reader, made for that epoch, delivers again.
   * `seqBefore`: the slot's SEQ_BEFORE for `epoch` when the owner read it consistently (takeOver);
   * without it the reader reads it itself.
   */
  constructor(
    seg: TopicSegment,
    slot: number,
    from: 'start' | 'newest' | 'last',
    epoch: number,
    seqBefore?: number,
  ) {
    this.#epoch = epoch;
    this.#seg = seg;
    this.#slot = slot;
    this.#w = seg.words;
    this.#ring = seg.ring(slot);
    this.#view = new DataView(this.#ring.buffer, this.#ring.byteOffset, this.#ring.length);
    this.#base = seg.slotWord(slot);
    this.#size = seg.ringBytes;
    this.#mask = seg.ringBytes - 1;
    this.#maxPayload = topicMaxPayload(seg.ringBytes);
    if (seqBefore === undefined) this.#learnSeqBefore();
    else {
      this.#seqBefore = seqBefore;
      this.#seqBeforeKnown = true;
    }
    const tail = loadAcquire(this.#w, this.#base + SLOT_TAIL / 4);
    const seq = Atomics.load(this.#w, this.#base + SLOT_SEQ / 4);
    if (from === 'start') {
      this.#pos = 0;
      this.#expect = 0;
    } else if (from === 'last' && seq > 0) {
      this.#pos = Atomics.load(this.#w, this.#base + SLOT_LAST / 4);
      this.#expect = (seq - 1) >>> 0;
      this.#resync = true;
    } else {
      this.#pos = tail;
      this.#expect = seq;
    }
  }

  /**
   * Messages of its publisher this reader neither delivered nor counted, had that publisher
   * written `seq` in all (the slot's PREV_SEQ once ferryd gave it to the next one): 0 when `seq`
   * is not ahead of what it expected next (an older ferryd's 0, a hostile value behind it).
   */
  unreadBefore(seq: number): number {
    const n = (seq - this.#expect) | 0;
    return Math.max(n, 0);
  }

  /**
   * Slot `slot`'s reader for a subscriber joining now, or null while the slot is FREE: a FREE slot
   * was never given to a publisher, so its epoch for this subscriber is 0 whatever EPOCH reads (a
   * slot being opened meanwhile has it bumped already; the owner's next poll then reads it from its
   * start, as a publisher that came after the subscriber).
   */
  static join(seg: TopicSegment, slot: number, from: 'newest' | 'last'): TopicRingReader | null {
    return seg.slotState(slot) === SLOT_FREE
      ? null
      : new TopicRingReader(seg, slot, from, seg.slotEpoch(slot));
  }

  /**
   * Slot `slot`'s EPOCH reads `epoch`, not the one its owner holds (`old`'s, or 0 with no reader):
   * the owner's reader for `epoch`, from the slot's start, and `unread`, the messages of earlier
   * publishers that `old` neither delivered nor counted (0 without one). Null when the owner must
   * look again on its next poll: the slot is still FREE (ferryd bumps EPOCH before it marks the slot
   * LIVE: taking that epoch with no reader would leave the slot unread for good, its epoch never
   * changing again), or the slot's counts cannot be read as `epoch`'s yet (a hand-over under way,
   * or one made while they were read: TopicSegment.slotCounts). The new reader gets the counts of
   * the same read, not its own later one, which a hand-over in between would make the next
   * epoch's (its publisher's messages then left out of the count at its own hand-over).
   * `trustOpens`: as slotCounts' (false: an odd OPENS is not waited for), and a FREE slot is not
   * waited for either: it is taken, read from its start once ferryd marks it LIVE. ferryd's own
   * reader (no opening can be under way while it runs) and a subscriber that waited
   * OPENS_PATIENCE polls would otherwise look at a FREE slot whose EPOCH a member scribbled on
   * every poll for good (ferryd's relay rescheduled its drain every turn, a subscriber never slept).
   */
  static takeOver(
    seg: TopicSegment,
    slot: number,
    epoch: number,
    old: TopicRingReader | null | undefined,
    trustOpens = true,
  ): { reader: TopicRingReader; unread: number } | null {
    if (trustOpens && seg.slotState(slot) === SLOT_FREE) return null;
    const counts = seg.slotCounts(slot, epoch, trustOpens);
    if (counts === null) return null;
    const unread = old ? old.#unreadAtHandover(epoch, counts.seqBefore, counts.prevSeq) : 0;
    return { reader: new TopicRingReader(seg, slot, 'start', epoch, counts.seqBefore), unread };
  }

  /** The slot's EPOCH this reader reads for. */
  get epoch(): number {
    return this.#epoch;
  }

  /**
   * The slot went from this reader's epoch to `epoch` (once or more), whose counts are `seqBefore`
   * and `prevSeq`: the messages of this reader's publisher, and of every publisher the slot had
   * between it and the current one, that this reader neither delivered nor counted (from
   * SEQ_BEFORE; from PREV_SEQ alone when the slot changed hands once, as an older ferryd without
   * SEQ_BEFORE allows, or when this reader never had a consistent read of its own SEQ_BEFORE).
   */
  #unreadAtHandover(epoch: number, seqBefore: number, prevSeq: number): number {
    const all = this.#seqBeforeKnown ? this.unreadBefore((seqBefore - this.#seqBefore) >>> 0) : 0;
    return epoch === (this.#epoch + 1) >>> 0 ? Math.max(all, this.unreadBefore(prevSeq)) : all;
  }

  /** Reads the slot's SEQ_BEFORE for this reader's epoch, if it can be read as that epoch's now. */
  #learnSeqBefore(): void {
    const counts = this.#seg.slotCounts(this.#slot, this.#epoch);
    if (counts === null) return;
    this.#seqBefore = counts.seqBefore;
    this.#seqBeforeKnown = true;
  }

  /** True when the publisher wrote past this reader's position. */
  get hasData(): boolean {
    return loadAcquire(this.#w, this.#base + SLOT_TAIL / 4) !== this.#pos;
  }

  /**
   * Decodes up to `max` records with `decode(ring, {start, end})` and hands each value to
   * `deliver`; returns how many. A decode that throws or reads a record overwritten meanwhile
   * counts as a lap. `batch`: records decoded before one check that none was overwritten (the
   * tail, a line the publisher writes per record, read once per batch rather than twice per
   * record); their values are delivered after it. 1 (the default) decodes and delivers one record
   * at a time: what a decode that stages its record for `deliver` (the relay) needs.
   */
  read(
    max: number,
    decode: (src: Buffer, range: { start: number; end: number }) => unknown,
    deliver: (v: unknown) => void,
    batch = 1,
  ): number {
    let n = 0;
    /** Laps since the last record delivered, and the tail seen when the last one began. */
    let laps = 0;
    let lapTail = 0;
    const half = this.#size / 2;
    const view = this.#view;
    const size = this.#size;
    const values = this.#values;
    const seqs = this.#seqs;
    const starts = this.#starts;
    const most = Math.max(1, Math.min(batch, READ_BATCH_MAX));
    if (this.#stale) return 0;
    if (!this.#seqBeforeKnown) this.#learnSeqBefore();
    let tail = loadAcquire(this.#w, this.#base + SLOT_TAIL / 4);
    while (n < max) {
      const behind = (tail - this.#pos) >>> 0;
      if (behind === 0) break;
      if (laps > 2) {
        // Lapped three times over without a record in between. A ring whose newest record is
        // itself unreadable (a broken or hostile publisher, which wrote nothing meanwhile) would
        // send every lap back to it: skip to the tail and wait for new records (what was skipped
        // is counted from the next record's number, as after any lap). A publisher that moved
        // on meanwhile was racing this reader (it lost its CPU mid-record): stop here and let
        // the next read start from the newest record. Skipping to the tail then would lose the
        // last records of a burst for good, with no later record to count them.
        if (tail === lapTail) this.#pos = tail;
        break;
      }
      if (behind > half) {
        laps++;
        lapTail = tail;
        this.#lapped();
        tail = loadAcquire(this.#w, this.#base + SLOT_TAIL / 4);
        continue;
      }
      // Decode records in [pos, tail) up to the batch; `broken`: the record at `pos` is not one
      // (a length out of range, a misaligned position, a decode that threw).
      const want = Math.min(most, max - n);
      let pos = this.#pos;
      let k = 0;
      let broken = false;
      while (k < want && pos !== tail) {
        const p = pos & this.#mask;
        // Writers place records 8-aligned: any other position came from a broken LAST or TAIL.
        if ((p & 7) !== 0) {
          broken = true;
          break;
        }
        const len = view.getUint32(p, true);
        if (len === PAD_RECORD) {
          pos = (pos + (size - p)) >>> 0;
          // A PAD read from a torn or hostile ring may skip past the tail: a lap, as at the top.
          if ((tail - pos) >>> 0 > half) {
            broken = true;
            break;
          }
          continue;
        }
        const rsize = (TOPIC_RECORD_HEADER + len + 7) & ~7;
        if (len > this.#maxPayload || p + rsize > size || rsize > (tail - pos) >>> 0) {
          broken = true;
          break;
        }
        seqs[k] = view.getUint32(p + 4, true);
        starts[k] = pos;
        this.#range.start = p + TOPIC_RECORD_HEADER;
        this.#range.end = p + TOPIC_RECORD_HEADER + len;
        try {
          values[k] = decode(this.#ring, this.#range);
        } catch {
          broken = true;
          break;
        }
        pos = (pos + rsize) >>> 0;
        k++;
      }
      // seqlock check, once for the batch: a record was intact only if the writer is still within
      // half a ring of where it starts; the records overwritten meanwhile are a prefix. The
      // batch's reads are plain: off x86 a load-acquire alone would not keep them before the
      // tail and EPOCH loads that vouch for them (fence(); nothing on x86).
      fence();
      const after = loadAcquire(this.#w, this.#base + SLOT_TAIL / 4);
      // The same check for the slot's owner, after the tail: ferryd zeroes the indices and bumps
      // EPOCH before the new publisher gets the slot, and that publisher writes records (bytes,
      // then its TAIL) only after, so a batch that read any of them sees the new epoch here. The
      // batch is then another publisher's records (or the ring's start read as this one's):
      // delivered now, they would be delivered again by the reader the owner makes for the new
      // epoch on its next poll. Nothing of it is delivered or counted lost.
      if (Atomics.load(this.#w, this.#base + SLOT_EPOCH / 4) !== this.#epoch) {
        for (let j = 0; j < k; j++) values[j] = undefined;
        this.#stale = true;
        break;
      }
      let first = 0;
      while (first < k && (after - (starts[first] as number)) >>> 0 > half) first++;
      for (let j = first; j < k; j++) {
        // What the records' own numbers say was skipped (a lap, or a gap a relay forwarded). A
        // record older than expected (positions and counters are read while the publisher moves
        // on) loses nothing; only a start at 'last' takes the first record's number as it is.
        const seq = seqs[j] as number;
        const lost = (seq - this.#expect) | 0;
        if (lost > 0 && !this.#resync) this.dropped += lost;
        this.#resync = false;
        this.#expect = (seq + 1) >>> 0;
        this.#pos = j + 1 < k ? (starts[j + 1] as number) : pos;
        laps = 0;
        const v = values[j];
        values[j] = undefined;
        deliver(v);
        n++;
      }
      for (let j = 0; j < first; j++) values[j] = undefined;
      if (first === k && (k > 0 || broken)) {
        // Every record decoded was overwritten meanwhile, or the next one is broken: a lap.
        laps++;
        lapTail = tail;
        this.#lapped();
        tail = loadAcquire(this.#w, this.#base + SLOT_TAIL / 4);
        continue;
      }
      // Past the records delivered and the PADs after them; a broken record is met again first
      // thing next round (then a lap).
      this.#pos = pos;
      tail = after;
    }
    return n;
  }

  /** Decoded values, their sequence numbers and positions, held until the batch's check. */
  readonly #values: unknown[] = new Array(READ_BATCH_MAX).fill(undefined);
  readonly #seqs = new Uint32Array(READ_BATCH_MAX);
  readonly #starts = new Uint32Array(READ_BATCH_MAX);

  /**
   * Lapped (or the record at the position is broken): resume at the oldest record that is still
   * safe to read, so only what was overwritten is lost (lose-oldest), not the half ring still
   * intact behind the tail. That is the oldest of the publisher's marks (a record start per eighth
   * of the ring) at most 3/8 of a ring behind the tail (an eighth short of being overwritten: room
   * to read on while the publisher writes), and ahead of where this reader stands unless it was
   * lapped, so nothing is delivered twice. Marks are checked as hostile: 8-aligned, within that
   * reach, and then read like any record. Without one, the newest record, or the tail. What was
   * lost is counted from the sequence number of the next record read (the counters read here may
   * already be newer than the record they point at: the publisher does not wait).
   */
  #lapped(): void {
    const w = this.#w;
    const tail = loadAcquire(w, this.#base + SLOT_TAIL / 4);
    const behind = (tail - this.#pos) >>> 0;
    const lapped = behind > this.#size / 2;
    const reach = (this.#size / 8) * 3;
    const marks = this.#base + SLOT_MARKS / 4;
    let best = -1;
    let bestBehind = -1;
    for (let j = 0; j < TOPIC_SLOT_MARKS; j++) {
      const m = Atomics.load(w, marks + j);
      const d = (tail - m) >>> 0;
      if ((m & 7) === 0 && d <= reach && d > bestBehind && (lapped || d < behind)) {
        best = m;
        bestBehind = d;
      }
    }
    if (bestBehind >= 0) {
      this.#pos = best;
      return;
    }
    const last = Atomics.load(w, this.#base + SLOT_LAST / 4);
    // Start at the newest record only if it is still well within reach, else wait at the tail.
    this.#pos = (tail - last) >>> 0 <= this.#size / 4 ? last : tail;
  }
}
