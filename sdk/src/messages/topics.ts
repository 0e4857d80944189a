/**
 * Publish/subscribe: `publish(name)` and `subscribe(name)`. A topic lives in ferryd's namespace of
 * the app; ferryd makes one shared segment per topic with a broadcast ring per publisher (up to 8),
 * and every local subscriber reads each message where the publisher wrote it, once, without
 * ferryd on the path. Policy for a slow subscriber: it is lapped (the publisher never waits) and
 * loses the oldest messages, counted in `dropped` and reported with 'drop'; others are unaffected.
 * A new subscriber starts at the next message (or at each publisher's newest with `last: true`).
 * Sleeping subscribers are woken through ferryd (publisher -> topic doorbell -> ferryd -> the
 * subscriber's doorbell); spinning ones (poll, adaptive while busy) need no wake-up.
 */
import { EventEmitter } from 'node:events';
import { getAttachment } from '../api/attachments.js';
import type { AttachmentOptions } from '../api/options.js';
import type { Attachment, ExtraPoller } from '../app/attachment.js';
import { noticeSession, requestConnect } from '../app/session-control.js';
import { type FerryError, ferryError } from '../errors.js';
import { createTopicDecoder, encodePlain } from '../proto/message-values.js';
import { ShapeWriter } from '../proto/shape-codec.js';
import { parseUri } from '../proto/uri.js';
import { TOPIC_END, TOPIC_POLICY } from '../shm/topic-layout.js';
import { TopicRingReader, TopicRingWriter, TopicSegment } from '../shm/topic-ring.js';
import { close, ring } from '../sys/index.js';
import { ValueInbox } from './value-inbox.js';

export interface PublishOptions extends AttachmentOptions {
  /** Ring bytes per publisher (a power of two, 4 KiB .. 256 MiB; default 4 MiB). Only the topic's
   *  first member decides; a message may be at most a quarter of it. */
  ringBytes?: number;
}

export interface SubscribeOptions extends AttachmentOptions {
  /** Start with each live publisher's newest message (the last value) instead of the next one. */
  last?: boolean;
  /** Received values buffered for the iterator; beyond it the subscriber stops reading and, if the
   *  publishers go on, is lapped (drops). Default 1024. */
  highWaterMark?: number;
  /** Takes each value instead of the iterator. */
  onMessage?: (value: unknown) => void;
}

interface TopicLink {
  att: Attachment;
  session: number;
  seg: TopicSegment;
  /** Publisher slot or subscriber bit. */
  index: number;
  fds: number[];
}

async function openTopic(
  name: string,
  role: 1 | 2,
  opts: AttachmentOptions & { ringBytes?: number },
): Promise<TopicLink> {
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(name)) {
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      `'${String(name)}' is not a topic name ([A-Za-z0-9._-], 1-200 characters)`,
    );
  }
  const att = await getAttachment(opts);
  const reply = await requestConnect(att, {
    uri: `topic://${name}:${role}`,
    rxFifoSize: 0,
    txFifoSize: opts.ringBytes ?? 0,
  });
  const fds = att.takeReplyFds(reply.session);
  const segFd = fds[reply.fds.indexOf('segment')];
  let seg: TopicSegment | null = null;
  try {
    if (segFd === undefined) throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'topic reply without its segment');
    seg = TopicSegment.attach(segFd);
    const index = parseUri(reply.localUri).port - 1;
    if (!(index >= 0 && index < 64)) throw ferryError('ERR_FERRY_PROTO_MALFORMED', `topic slot ${index + 1}`);
    return { att, session: reply.session, seg, index, fds: fds.filter((fd) => fd !== segFd) };
  } catch (err) {
    if (seg) seg.release();
    for (const fd of fds) if (!seg || fd !== segFd) close(fd);
    noticeSession(att, 'close', reply.session);
    throw err;
  }
}

/** Leaves the topic; `tell` false when the ferryd that knew the session is gone. */
function closeTopic(link: TopicLink, tell = true): void {
  if (tell) noticeSession(link.att, 'close', link.session);
  for (const fd of link.fds) close(fd);
  link.seg.release();
}

/** Publishes to topic `name`; resolves once ferryd gave this publisher its ring. */
export async function publish(name: string, opts: PublishOptions = {}): Promise<Publisher> {
  const link = await openTopic(name, 1, opts);
  return new Publisher(name, link);
}

/** Subscribes to topic `name`; resolves once the topic's segment is mapped. */
export async function subscribe(name: string, opts: SubscribeOptions = {}): Promise<Subscriber> {
  const link = await openTopic(name, 2, opts);
  return new Subscriber(name, link, opts);
}

/**
 * Records a subscriber decodes before it checks, once, that none was overwritten meanwhile
 * (TopicRingReader.read): the publisher's tail, a cache line it writes per message, is then read
 * twice per batch instead of twice per message.
 */
const READ_BATCH = 32;

/**
 * Polls in a row a subscriber waits for a hand-over that looks under way (OPENS odd, or a slot
 * still FREE with a new EPOCH) before it takes the slot and its counts without that check:
 * ferryd's hand-over is a few stores, so only a ferryd that lost its CPU in the middle keeps it so
 * for long, or a member that wrote OPENS or EPOCH (which would otherwise keep every later
 * publisher unread, or the subscriber polling, for good). Past it the counts may be the next
 * hand-over's, as before TOPIC_FLAG_OPENS_BRACKET: a lost count may be wrong, nothing worse.
 */
const OPENS_PATIENCE = 1024;

/** Within one turn, sleeping subscribers are woken at least every this many messages. */
const WAKE_EVERY = 64;
/**
 * Shape records are encoded here, then copied into the ring in one go; larger ones go to msgpackr.
 * Not in place (TopicRingWriter.reserve): a subscriber that keeps up reads the newest record while
 * the next one is written, and an encode writing a field at a time into the cache lines it reads
 * made every subscriber slower (median per-subscriber rate 22-40% lower at 1-8 subscribers,
 * BENCHMARKS.md, msgs6).
 */
const SHAPE_SCRATCH_BYTES = 64 * 1024;

export class Publisher {
  readonly topic: string;
  readonly #link: TopicLink;
  readonly #writer: TopicRingWriter;
  readonly #bellFd: number;
  #closed = false;
  /**
   * Plain objects go as self-contained shape records (proto/shape-codec.ts): each message defines
   * the shapes it uses, since a subscriber may start reading anywhere; subscribers reuse what they
   * compiled for a definition they saw before.
   */
  readonly #shapes = new ShapeWriter({ selfContained: true, reuseDefinitions: true });
  /** The topic's layout carries shape records (a version-1 topic of an older ferryd does not). */
  readonly #useShapes: boolean;
  #scratch: Buffer | null = null;
  #scratchView: DataView | null = null;
  /** The scratch as u32 words, for TopicRingWriter.writeWords. */
  #scratchWords: Uint32Array | null = null;

  /** @internal */
  constructor(topic: string, link: TopicLink) {
    this.topic = topic;
    this.#link = link;
    this.#writer = new TopicRingWriter(link.seg, link.index);
    this.#useShapes = link.seg.version >= 2;
    this.#bellFd = link.fds[0] ?? -1;
    link.att.ref();
    link.att.on('lost', this.#onLost);
  }

  /**
   * ferryd went away: its topic is no more (the next ferryd makes a new one, and wakes no
   * subscriber of this one). The publisher ends: send() throws ERR_FERRY_DAEMON_LOST; publish
   * again once the attachment is back ('reattached').
   */
  readonly #onLost = (err: Error): void => {
    if (this.#closed) return;
    this.#error = ferryError(
      'ERR_FERRY_DAEMON_LOST',
      `topic '${this.topic}': ferryd went away; publish again once it is back`,
      { cause: err },
    );
    this.#leave(false);
  };

  #error: FerryError | null = null;

  /** Why the publisher ended (ERR_FERRY_DAEMON_LOST), null while it lives or after close(). */
  get error(): FerryError | null {
    return this.#error;
  }

  #leave(tell: boolean): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#link.att.off('lost', this.#onLost);
    closeTopic(this.#link, tell);
    this.#link.att.unref();
  }

  /** Messages published so far. */
  get published(): number {
    return this.#writer.published;
  }

  /** Largest encoded message the ring takes. */
  get maxMessageBytes(): number {
    return this.#writer.maxPayload;
  }

  /**
   * Publishes `value` to every subscriber. Never waits for them (a slow one is lapped), so it
   * returns true; throws EMSGSIZE above maxMessageBytes, ERR_FERRY_CHANNEL_CLOSED after close().
   */
  send(value: unknown): boolean {
    if (this.#closed) {
      throw this.#error ?? ferryError('ERR_FERRY_CHANNEL_CLOSED', 'the publisher is closed');
    }
    // A shape record lands in the scratch (its length returned); anything else comes back encoded.
    const shaped = this.#useShapes ? this.#encodeShape(value) : -1;
    if (shaped >= 0) {
      this.#writer.writeWords(this.#scratchWords as Uint32Array, shaped);
    } else {
      const bytes = encodePlain(value);
      if (bytes.length > this.#writer.maxPayload) {
        throw ferryError(
          'EMSGSIZE',
          `the value encodes to ${bytes.length} bytes, above ${this.#writer.maxPayload}`,
        );
      }
      this.#writer.write(bytes);
    }
    // Wake-ups are coalesced: the first message of a turn wakes sleepers at once (a lone message
    // waits for nothing), later ones every WAKE_EVERY messages and at the turn's end, so a burst
    // costs a few rings however often subscribers go to sleep between its messages.
    if (!this.#turnOpen) {
      this.#turnOpen = true;
      process.nextTick(this.#endTurn);
      this.#wake();
    } else if (++this.#unwoken >= WAKE_EVERY) {
      this.#wake();
    }
    return true;
  }

  /**
   * Encodes `value` as a shape record into the scratch and returns its length, or -1 when it is not
   * one (not a plain object, or a value only msgpackr encodes: the caller encodes it so). The
   * scratch is at most maxPayload bytes, so a record that fits it fits the ring.
   */
  #encodeShape(value: unknown): number {
    if (!this.#shapes.accepts(value)) return -1;
    if (this.#scratch === null) {
      const s = Buffer.allocUnsafeSlow(Math.min(SHAPE_SCRATCH_BYTES, this.#writer.maxPayload));
      this.#scratch = s;
      this.#scratchView = new DataView(s.buffer, 0, s.length);
      this.#scratchWords = new Uint32Array(s.buffer, 0, s.length >> 2);
    }
    const s = this.#scratch;
    return this.#shapes.encode(value as object, s, this.#scratchView as DataView, 0, s.length);
  }

  #turnOpen = false;
  /** Messages published since the last wake check. */
  #unwoken = 0;

  readonly #endTurn = (): void => {
    this.#turnOpen = false;
    if (this.#unwoken > 0 && !this.#closed) this.#wake();
  };

  /** Rings the topic's doorbell when a subscriber sleeps and nobody rang since ferryd looked. */
  #wake(): void {
    this.#unwoken = 0;
    if (this.#bellFd >= 0 && this.#link.seg.wakeNeeded()) {
      try {
        ring(this.#bellFd);
      } catch {
        // ferryd is gone; its subscribers are woken by nobody until it is back.
      }
    }
  }

  /** Leaves the topic (subscribers keep what it wrote). */
  async close(): Promise<void> {
    this.#leave(true);
  }
}

type Decode = (src: Buffer, range: { start: number; end: number }) => unknown;

/** A topic decoder in the shape TopicRingReader.read takes. */
function slotDecoder(): Decode {
  const dec = createTopicDecoder();
  return (src, range) => dec(src, range.start, range.end);
}

export class Subscriber extends EventEmitter implements AsyncIterable<unknown>, ExtraPoller {
  readonly topic: string;
  readonly #link: TopicLink;
  readonly #readers: (TopicRingReader | null)[];
  readonly #epochs: number[];
  readonly #hwm: number;
  readonly #onMessage: ((v: unknown) => void) | undefined;
  readonly #inbox: ValueInbox;
  /** The topic's policy is disconnect (ferryd writes it before anyone maps the segment). */
  readonly #disconnect: boolean;
  #closed = false;
  #reported = 0;
  /**
   * A decoder per publisher slot: shape ids are each publisher's own, so one decoder for all would
   * see two publishers' different shapes under one id and compile one of them again on every
   * message. A slot taken by a new publisher gets a fresh one.
   */
  readonly #decoders: Decode[] = [];
  readonly #deliver = (v: unknown) => this.#push(v);
  /** Policy disconnect: nothing after a loss is delivered (the reader counts it before handing over). */
  readonly #deliverUnlapped = (v: unknown) => {
    const r = this.#current;
    if (r === null || r.dropped !== this.#currentDropped) {
      this.#current = null;
      return;
    }
    this.#push(v);
  };
  #current: TopicRingReader | null = null;
  #currentDropped = 0;

  /** @internal */
  constructor(topic: string, link: TopicLink, opts: SubscribeOptions) {
    super();
    this.topic = topic;
    this.#link = link;
    this.#hwm = opts.highWaterMark ?? 1024;
    this.#onMessage = opts.onMessage;
    this.#inbox = new ValueInbox(this.#hwm, {
      resume: () => this.#link.att.kick(),
      ended: () => this.#error ?? this.#closed,
    });
    const seg = link.seg;
    this.#disconnect = seg.policy === TOPIC_POLICY.DISCONNECT;
    this.#readers = [];
    this.#epochs = [];
    for (let i = 0; i < seg.maxPubs; i++) {
      const reader = TopicRingReader.join(seg, i, opts.last ? 'last' : 'newest');
      this.#epochs.push(reader?.epoch ?? 0);
      this.#readers.push(reader);
      this.#decoders.push(slotDecoder());
    }
    link.att.ref();
    link.att.addPoller(this);
    link.att.on('lost', this.#onLost);
  }

  /** ferryd went away with its topic: the subscription ends with ERR_FERRY_DAEMON_LOST. */
  readonly #onLost = (err: Error): void => {
    // Whatever the publishers wrote before is still in the mapping: take it first.
    this.poll();
    this.#gone = true;
    this.#end(
      ferryError(
        'ERR_FERRY_DAEMON_LOST',
        `topic '${this.topic}': ferryd went away; subscribe again once it is back`,
        {
          cause: err,
        },
      ),
    );
  };

  /** The ferryd that knew this subscription is gone: leaving tells nobody. */
  #gone = false;

  /** Messages lost to laps (the subscriber fell more than half a ring behind a publisher). */
  get dropped(): number {
    let n = this.#retiredDrops;
    for (const r of this.#readers) if (r) n += r.dropped;
    return n;
  }

  /** What the readers of slots since taken by new publishers had lost. */
  #retiredDrops = 0;

  /** Values received and not yet iterated. */
  get bufferedValues(): number {
    return this.#inbox.size;
  }

  /**
   * How this subscriber waited (diagnostics): the counts of its attachment's data notifier (shared
   * with every channel and topic of the attachment), e.g. wake-ups from sleep per message received.
   */
  get notifierStats(): Attachment['notifierStats'] {
    return this.#link.att.notifierStats;
  }

  // ---- ExtraPoller: run by the attachment's data notifier ----

  poll(): number {
    if (this.#closed) return 0;
    const seg = this.#link.seg;
    const ended = seg.ended;
    if (ended !== TOPIC_END.LIVE) {
      this.#end(
        ended === TOPIC_END.SLOW
          ? ferryError(
              'ERR_FERRY_SLOW_SUBSCRIBER',
              `the relay feeding topic '${this.topic}' fell behind upstream`,
            )
          : ferryError('ECONNRESET', `the relay feeding topic '${this.topic}' from another host was lost`),
      );
      return 0;
    }
    let n = 0;
    /** A reader counted a loss, or one was retired: the total is summed and reported then only. */
    let lossSeen = false;
    /** Policy disconnect lost messages at a hand-over: nothing more is read (the check below ends it). */
    let stop = false;
    // Slots change hands only where ferryd bumps OPENS (after the slot's EPOCH): while it reads as
    // at the last look that took every slot's EPOCH, the EPOCHs are not looked at (a load each).
    const opens = seg.tracksOpens ? seg.opens : -1;
    if (opens < 0 || opens !== this.#opensSeen) {
      let settled = true;
      for (let i = 0; i < this.#readers.length; i++) {
        const epoch = seg.slotEpoch(i);
        if (epoch === this.#epochs[i]) continue;
        // A publisher took this slot after we subscribed: read it from its first message (what
        // the previous one's reader lost stays counted). The previous publisher's messages it had
        // not read when ferryd gave the slot away are gone with the zeroed indices, and so are all
        // those of any publisher the slot had in between: counted lost.
        const old = this.#readers[i];
        const next = TopicRingReader.takeOver(seg, i, epoch, old, this.#unsettled < OPENS_PATIENCE);
        // Still being opened, or given away again while we looked: take it on the next poll.
        if (next === null) {
          settled = false;
          continue;
        }
        const unread = next.unread;
        this.#epochs[i] = epoch;
        this.#retiredDrops += (old?.dropped ?? 0) + unread;
        this.#readers[i] = next.reader;
        this.#decoders[i] = slotDecoder();
        lossSeen = true;
        if (unread > 0 && this.#disconnect) {
          stop = true;
          settled = false;
          break;
        }
      }
      if (settled) {
        this.#opensSeen = opens;
        this.#unsettled = 0;
      } else {
        this.#unsettled++;
      }
    }
    for (let i = 0; i < this.#readers.length && !stop; i++) {
      const r = this.#readers[i];
      if (!r) continue;
      const room = this.#onMessage ? 256 : this.#hwm - this.bufferedValues;
      if (room <= 0) break;
      const before = r.dropped;
      if (this.#disconnect) {
        this.#current = r;
        this.#currentDropped = before;
        n += r.read(Math.min(room, 256), this.#decoders[i] as Decode, this.#deliverUnlapped, READ_BATCH);
      } else {
        n += r.read(Math.min(room, 256), this.#decoders[i] as Decode, this.#deliver, READ_BATCH);
      }
      if (r.dropped !== before) {
        lossSeen = true;
        if (this.#disconnect) break;
      }
    }
    if (!lossSeen) return n;
    const dropped = this.dropped;
    if (dropped !== this.#reported) {
      const lost = dropped - this.#reported;
      this.#reported = dropped;
      seg.setDrops(this.#link.index, dropped);
      if (this.#disconnect) {
        this.#end(
          ferryError(
            'ERR_FERRY_SLOW_SUBSCRIBER',
            `lapped on topic '${this.topic}' (policy disconnect): ${lost} messages lost`,
          ),
        );
        return n;
      }
      this.emit('drop', lost);
    }
    return n;
  }

  /** Why the subscription ended (null while it lives, or after close()). */
  get error(): FerryError | null {
    return this.#error;
  }

  #error: FerryError | null = null;

  /** Ends the subscription with `err`: the iterator throws it after what was buffered. */
  #end(err: FerryError): void {
    if (this.#closed) return;
    this.#error = err;
    this.#inbox.endWaiters(err);
    void this.#leave(err);
  }

  arm(): boolean {
    if (this.#closed) return false;
    if (this.#link.seg.ended !== TOPIC_END.LIVE) return true;
    // Full: nothing to do until the iterator takes values (it kicks the poll then).
    if (!this.#onMessage && this.bufferedValues >= this.#hwm) return false;
    const seg = this.#link.seg;
    // Work already there: no arming. The wake words are one line that every subscriber and the
    // publisher share; a subscriber that keeps up finds its ring empty on one poll and a record
    // there by the next, and arming then disarming each time was two locked read-modify-writes of
    // that line per poll.
    if (this.#hasWork(seg)) return true;
    seg.armWake(this.#link.index);
    // Armed: look again, or a record published before the bit was seen would wait for the next.
    if (this.#hasWork(seg)) {
      seg.disarmWake(this.#link.index);
      return true;
    }
    return false;
  }

  /** A publisher wrote past a reader, or a slot changed hands. */
  #hasWork(seg: TopicSegment): boolean {
    // As in poll(): no slot changed hands while OPENS reads as at the last complete look.
    const opens = seg.tracksOpens ? seg.opens : -1;
    const look = opens < 0 || opens !== this.#opensSeen;
    for (let i = 0; i < this.#readers.length; i++) {
      if ((look && seg.slotEpoch(i) !== this.#epochs[i]) || this.#readers[i]?.hasData) return true;
    }
    return false;
  }

  /** OPENS as of the last poll that took every slot's EPOCH (-1: none yet). */
  #opensSeen = -1;
  /** Polls in a row that left a slot's hand-over to the next one (OPENS_PATIENCE). */
  #unsettled = 0;

  #push(value: unknown): void {
    if (this.#onMessage) {
      try {
        this.#onMessage(value);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
      return;
    }
    this.#inbox.push(value);
  }

  /**
   * The received values in arrays: each step hands over every value buffered (at least one),
   * one promise per array rather than per value. Ends and throws as the value iterator does;
   * leaving the loop leaves the topic. Use one of the two iterators at a time.
   */
  batches(): AsyncIterableIterator<unknown[]> {
    return this.#inbox.batchIterator(() => this.close());
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this.#inbox.iterator(() => this.close());
  }

  /** Leaves the topic; a pending iteration ends. */
  close(): Promise<void> {
    return this.#leave(null);
  }

  async #leave(err: FerryError | null): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#link.att.off('lost', this.#onLost);
    this.#link.att.removePoller(this);
    this.#link.seg.disarmWake(this.#link.index);
    closeTopic(this.#link, !this.#gone);
    this.#link.att.unref();
    this.#inbox.endWaiters(null);
    this.emit('close', err ?? undefined);
  }
}
