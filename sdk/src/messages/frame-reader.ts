/**
 * Reads message frames from a session's rx fifo: headers are checked, bodies are decoded where they
 * lie in the fifo (a copy only when a frame wraps the ring's end), frames larger than the fifo are
 * gathered piece by piece, and the fifo is consumed in batches.
 */
import type { Unpackr } from 'msgpackr';
import { type FerryError, ferryError } from '../errors.js';
import {
  frameBytes,
  type MessageHeader,
  type MessageKind,
  MSG_HEADER_BYTES,
  MSG_KIND,
  readMessageHeader,
} from '../proto/message-frame.js';
import { createPlainDecoder, createValueDecoder, unpackrView } from '../proto/message-values.js';
import { type CompileBudget, SHAPE_MARK, ShapeReader } from '../proto/shape-codec.js';
import { RingAccess } from './ring-access.js';

/** What the reader needs of a session (AppSession has it). */
export interface FrameSource {
  readableViews(): [Uint8Array] | [Uint8Array, Uint8Array];
  consume(n: number): number;
  /** Bytes readable now. */
  readonly readableBytes: number;
  readonly rxSize: number;
  /**
   * The whole rx ring, which readableViews() are views of: the reader decodes through one Buffer
   * and DataView over it for the channel's life rather than new ones on every pull (without it,
   * views of each pull's bytes).
   */
  readonly rxRing?: Uint8Array;
  /**
   * With rxRing: where the readable bytes (readableBytes of them) start in it. The reader then
   * makes no views while they lie in one run (readableViews() is for the wrap, and for copies).
   */
  readonly rxHeadOffset?: number;
}

/** A LOAN frame's payload as the reader hands it over. */
export interface LoanFrame {
  /** The payload: a view of the fifo (held until release) or a copy (`held` false). */
  bytes: Uint8Array;
  /** Decoded metadata (undefined when the frame had none). */
  meta: unknown;
  /** True while the view pins the fifo: call FrameReader.release(token) when done. */
  held: boolean;
  token: number;
}

export interface FrameHandler {
  /** A decoded frame: HELLO, MESSAGE, REQUEST, REPLY, ERROR (value), CANCEL (value undefined). */
  onFrame(kind: MessageKind, id: number, value: unknown): void;
  /** A one-way value (a MESSAGE frame): the common case, without the kind dispatch. */
  onMessage(value: unknown): void;
  onLoan(loan: LoanFrame): void;
  /** The reader failed (bad frame, decode error, size): the channel must fail with `err`. */
  onFailure(err: FerryError): void;
}

export interface FrameReaderOptions {
  maxBodyBytes: number;
  /** The handler stops taking frames (backpressure): pull() returns 'paused' until it resumes. */
  paused: () => boolean;
}

export type PullResult = 'empty' | 'partial' | 'paused' | 'failed';

/** A frame larger than the fifo, gathered as its pieces arrive. */
interface Gathering {
  kind: MessageKind;
  id: number;
  aux: number;
  buf: Uint8Array;
  /** Frame bytes after the header still to consume (body, then padding). */
  left: number;
  got: number;
}

interface Held {
  token: number;
  /** Offset of the frame's start from the fifo's head (what may be consumed before it). */
  start: number;
  released: boolean;
}

export class FrameReader {
  readonly #src: FrameSource;
  readonly #handler: FrameHandler;
  readonly #opts: FrameReaderOptions;
  #dec: Unpackr = createValueDecoder();
  /** Shape records (bodies that start with SHAPE_MARK), with their own shape table. */
  /** Builders compiled for this channel, through every RESET (a peer may RESET over and over). */
  readonly #budget: CompileBudget = { compiled: 0 };
  #shapes = new ShapeReader({ budget: this.#budget });
  /** Loan metadata is encoded without records (see encodePlain). */
  readonly #metaDec: Unpackr = createPlainDecoder();
  readonly #header: MessageHeader = { bodyBytes: 0, kind: MSG_KIND.PAD, id: 0, aux: 0 };
  readonly #hdrBytes = new Uint8Array(MSG_HEADER_BYTES);
  readonly #hdrView = new DataView(this.#hdrBytes.buffer);
  readonly #range = { start: 0, end: 0 };
  #scratch: Buffer = Buffer.alloc(0);
  /** msgpackr reads from a Buffer of its own (see unpackrView). */
  readonly #unpackrView = unpackrView();
  /** Bytes after the fifo's head already parsed but not consumed (held loans pin them). */
  #ahead = 0;
  #gathering: Gathering | null = null;
  #held: Held[] = [];
  #nextToken = 1;
  #sawHello = false;
  #failed = false;
  #stopped = false;
  /** Frames one pull() may take (1 while takeHello() looks for the HELLO). */
  #maxFrames = Number.POSITIVE_INFINITY;
  /**
   * A Buffer and a DataView over the source's whole rx ring (null until first used, or without
   * one): each pull reads its frames through them at the views' offsets in the ring. The decoders
   * keep per-source state (msgpackr's view, the shape reader's DataView) that a new view per pull
   * made them rebuild on every round trip, besides the pull's own Buffer and DataView.
   */
  #ring: RingAccess | null = null;

  constructor(src: FrameSource, handler: FrameHandler, opts: FrameReaderOptions) {
    this.#src = src;
    this.#handler = handler;
    this.#opts = opts;
  }

  /** Loans the handler still holds. */
  get heldLoans(): number {
    return this.#held.length;
  }

  /** The peer's HELLO was read. */
  get sawHello(): boolean {
    return this.#sawHello;
  }

  /**
   * Before the peer's HELLO: reads it now if it is complete at the head of the fifo, and nothing
   * after it. A sender calls this so that it learns what the peer reads (shape records) before
   * its first values, rather than when its loop next turns: a burst sent right after connecting
   * would otherwise all go through msgpackr. Must not be called from inside pull().
   */
  takeHello(): void {
    if (this.#sawHello || this.#failed || this.#stopped) return;
    if (this.#src.readableBytes < MSG_HEADER_BYTES) return;
    this.#maxFrames = 1;
    try {
      this.pull();
    } finally {
      this.#maxFrames = Number.POSITIVE_INFINITY;
    }
  }

  /** No more frames are delivered (the channel is closing); safe to call from a handler. */
  stop(): void {
    this.#stopped = true;
  }

  /**
   * Parses and delivers every complete frame readable now, then consumes what no loan pins.
   * 'empty': nothing more is readable; 'partial': part of a frame is there (more must come);
   * 'paused': the handler asked to stop; 'failed': the handler heard onFailure.
   */
  pull(): PullResult {
    if (this.#failed) return 'failed';
    const src = this.#src;
    const pos = src.rxHeadOffset;
    const ra = pos === undefined ? null : this.#ringAccess();
    if (ra !== null && pos !== undefined) {
      const ring = ra.buf;
      const n = src.readableBytes;
      // One run of the ring (the common case): read in place at its offsets, no view made.
      if (pos + n <= ring.length) {
        let off = this.#ahead;
        if (this.#fastOk()) {
          const o = this.#messages(ring, pos + off, pos + n);
          if (o < 0) return 'failed';
          off = o - pos;
          if (off === n) {
            this.#ahead = off;
            this.#consumeFree();
            return this.#failed ? 'failed' : 'empty';
          }
        }
        return this.#pullFrom(null, ring, pos, n, off);
      }
    }
    const raw = src.readableViews();
    const r0 = raw[0];
    // Buffers over the same bytes (no copy): msgpackr hands out binary values of its source's kind.
    // Offsets in v0 are base0 + offsets from the fifo's head.
    let v0 = this.#ringOf(r0);
    let base0 = 0;
    if (v0 === null) v0 = asBuffer(r0);
    else base0 = r0.byteOffset - v0.byteOffset;
    let off = this.#ahead;
    if (this.#fastOk()) {
      const o = this.#messages(v0, base0 + off, base0 + r0.length);
      if (o < 0) return 'failed';
      off = o - base0;
      if (off === r0.length && raw.length === 1) {
        this.#ahead = off;
        this.#consumeFree();
        return this.#failed ? 'failed' : 'empty';
      }
    }
    return this.#pullFrom(raw, v0, base0, r0.length, off);
  }

  /** The Buffer and DataView over the whole rx ring (null without FrameSource.rxRing), made on first use. */
  #ringAccess(): RingAccess | null {
    if (this.#ring === null && this.#src.rxRing !== undefined) this.#ring = new RingAccess(this.#src.rxRing);
    return this.#ring;
  }

  /** The Buffer over the whole rx ring when `v` lies in it (an empty fifo's view does not), else null. */
  #ringOf(v: Uint8Array): Buffer | null {
    return this.#ringAccess()?.of(v) ?? null;
  }

  /** A DataView over `v` (the ring's, made once, when `v` is the ring). */
  #viewOf(v: Buffer): DataView {
    const ra = this.#ring;
    if (ra !== null && v === ra.buf) return ra.view;
    return new DataView(v.buffer, v.byteOffset, v.length);
  }

  /** MESSAGE frames may go through #messages: nothing is being gathered, the HELLO was read. */
  #fastOk(): boolean {
    return this.#gathering === null && this.#sawHello && this.#maxFrames === Number.POSITIVE_INFINITY;
  }

  /**
   * The common frames, in one small loop: MESSAGE frames (kind 2, flags and reserved 0 in the same
   * word, id and aux 0) lying whole in `v` before `len` (the fifo's first view, or its second past
   * the ring's end), from `off`. Returns where it stopped (at anything
   * else, which #pullFrom handles), or -1 when the reader failed. Kept apart from #pullFrom so that
   * the rarer paths (the ring's wrap, requests, loans, large frames) do not sit in the code this loop
   * is compiled into: their first use after it was optimised would throw it away, and its
   * recompilation (decoder inlined) is what a short burst pays most for.
   */
  #messages(v: Buffer, from: number, len: number): number {
    let off = from;
    if (len - off < MSG_HEADER_BYTES) return off;
    const view = this.#viewOf(v);
    const maxBody = this.#opts.maxBodyBytes;
    while (len - off >= MSG_HEADER_BYTES) {
      if (this.#stopped || this.#opts.paused()) break;
      const body = view.getUint32(off, true);
      if (
        view.getUint32(off + 4, true) !== MSG_KIND.MESSAGE ||
        body === 0 ||
        body > maxBody ||
        view.getUint32(off + 8, true) !== 0 ||
        view.getUint32(off + 12, true) !== 0
      ) {
        break;
      }
      const size = frameBytes(body);
      if (size > len - off) break;
      const start = off + MSG_HEADER_BYTES;
      const value = this.#decode(v, start, start + body);
      if (this.#failed) return -1;
      off += size;
      this.#handler.onMessage(value);
      if (this.#failed) return -1;
    }
    return off;
  }

  /**
   * Every other frame, from `off` (see pull()): the readable bytes are v0's [base0, base0 + len0),
   * then `raw`'s second view if any; `raw` null: they are that one run (views made only to copy).
   */
  #pullFrom(
    raw: [Uint8Array] | [Uint8Array, Uint8Array] | null,
    v0: Buffer,
    base0: number,
    len0: number,
    from: number,
  ): PullResult {
    // `raw` (head-relative) for copies across the wrap; v0 and v1 (at base0, base1) to read in place.
    const r1 = raw !== null && raw.length === 2 ? raw[1] : null;
    let v1: Buffer | null = null;
    let base1 = 0;
    if (r1 !== null) {
      v1 = this.#ringOf(r1);
      if (v1 === null) v1 = asBuffer(r1);
      else base1 = r1.byteOffset - v1.byteOffset;
    }
    const total = len0 + (r1 === null ? 0 : r1.length);
    let off = from;
    let result: PullResult = 'empty';
    let view0: DataView | null = null;
    let view1: DataView | null = null;
    let frames = 0;
    while (off < total) {
      if (v1 !== null && r1 !== null && off >= len0 && this.#fastOk()) {
        // Past the ring's end, MESSAGE frames lie whole in the second view: the fast loop takes them
        // too (a reader behind by a full ring finds half its frames there, on every wrap).
        const o = this.#messages(v1, base1 + off - len0, base1 + r1.length);
        if (o < 0) return 'failed';
        off = len0 + o - base1;
        if (off >= total) break;
      }
      if (this.#stopped || frames >= this.#maxFrames) break;
      if (this.#opts.paused()) {
        result = 'paused';
        break;
      }
      const g = this.#gathering;
      if (g !== null) {
        off += this.#gather(g, this.#viewsOf(raw, v0, base0, len0), off, total - off);
        if (g.left > 0) {
          result = 'partial';
          break;
        }
        this.#gathering = null;
        this.#deliverGathered(g);
        continue;
      }
      if (total - off < MSG_HEADER_BYTES) {
        result = 'partial';
        break;
      }
      let hv: DataView;
      let ho: number;
      if (off + MSG_HEADER_BYTES <= len0) {
        view0 ??= this.#viewOf(v0);
        hv = view0;
        ho = base0 + off;
      } else if (v1 !== null && off >= len0) {
        // Past the ring's end: frames there lie whole in the second view, read in place too.
        view1 ??= this.#viewOf(v1);
        hv = view1;
        ho = base1 + off - len0;
      } else {
        copyOut(this.#viewsOf(raw, v0, base0, len0), off, this.#hdrBytes);
        hv = this.#hdrView;
        ho = 0;
      }
      const h = this.#header;
      const bad = readMessageHeader(hv, ho, h, this.#opts.maxBodyBytes);
      if (bad !== null) return this.#fail(bad);
      if (!this.#sawHello && h.kind !== MSG_KIND.HELLO) {
        return this.#fail(ferryError('ERR_FERRY_MSG_MALFORMED', `first frame is kind ${h.kind}, not HELLO`));
      }
      const size = frameBytes(h.bodyBytes);
      if (size > this.#src.rxSize) {
        // Never wholly in the fifo: gather it (after the header) as it streams through.
        if (h.kind === MSG_KIND.PAD || h.kind === MSG_KIND.HELLO) {
          return this.#fail(
            ferryError('ERR_FERRY_MSG_MALFORMED', `a ${h.bodyBytes}-byte frame of kind ${h.kind}`),
          );
        }
        this.#gathering = {
          kind: h.kind,
          id: h.id,
          aux: h.aux,
          buf: Buffer.allocUnsafe(h.bodyBytes),
          left: size - MSG_HEADER_BYTES,
          got: 0,
        };
        off += MSG_HEADER_BYTES;
        continue;
      }
      if (total - off < size) {
        result = 'partial';
        break;
      }
      const start = off + MSG_HEADER_BYTES;
      const end = start + h.bodyBytes;
      off += size;
      frames++;
      if (!this.#frame(h, raw, v0, base0, len0, v1, base1, start, end, off - size)) return 'failed';
    }
    this.#ahead = off;
    this.#consumeFree();
    return this.#failed ? 'failed' : result;
  }

  /** Lets go of a loan's view; the fifo space it pinned is consumed once the loans before it go. */
  release(token: number): void {
    const h = this.#held.find((x) => x.token === token);
    if (!h) return;
    h.released = true;
    this.#consumeFree();
  }

  /** Forgets held loans (the channel is gone; their views read stale or zeroed memory). */
  dropHeld(): void {
    this.#held = [];
  }

  /**
   * Handles one complete frame lying at [start, end) of the views (offsets from the fifo's head: in
   * v0 at base0 + offset, in v1 at base1 + offset - the first view's length); false when the
   * reader failed.
   */
  #frame(
    h: MessageHeader,
    views: Uint8Array[] | null,
    v0: Buffer,
    base0: number,
    len0: number,
    v1: Buffer | null,
    base1: number,
    start: number,
    end: number,
    frameStart: number,
  ): boolean {
    const kind = h.kind;
    switch (kind) {
      case MSG_KIND.PAD:
        return true;
      case MSG_KIND.RESET:
        this.#dec = createValueDecoder();
        this.#shapes = new ShapeReader({ budget: this.#budget });
        return true;
      case MSG_KIND.CANCEL:
        this.#handler.onFrame(kind, h.id, undefined);
        return !this.#failed;
      case MSG_KIND.LOAN:
        return this.#loan(h, views, v0, base0, len0, start, end, frameStart);
      default: {
        if (end === start)
          return !this.#fail(ferryError('ERR_FERRY_MSG_MALFORMED', `empty body in a kind ${kind} frame`));
        let value: unknown;
        if (end <= len0) value = this.#decode(v0, base0 + start, base0 + end);
        else if (start >= len0 && v1 !== null)
          value = this.#decode(v1, base1 + start - len0, base1 + end - len0);
        else
          value = this.#decode(this.#copy(this.#viewsOf(views, v0, base0, len0), start, end), 0, end - start);
        if (this.#failed) return false;
        return this.#deliver(kind, h.id, value);
      }
    }
  }

  #deliver(kind: MessageKind, id: number, value: unknown): boolean {
    if (kind === MSG_KIND.HELLO) {
      if (this.#sawHello) return !this.#fail(ferryError('ERR_FERRY_MSG_MALFORMED', 'a second HELLO'));
      this.#sawHello = true;
    }
    this.#handler.onFrame(kind, id, value);
    return !this.#failed;
  }

  #loan(
    h: MessageHeader,
    raw: Uint8Array[] | null,
    v0: Buffer,
    base0: number,
    len0: number,
    start: number,
    end: number,
    frameStart: number,
  ): boolean {
    const payloadEnd = start + h.aux;
    let meta: unknown;
    if (end > payloadEnd) {
      meta =
        end <= len0
          ? this.#decode(v0, base0 + payloadEnd, base0 + end, this.#metaDec)
          : this.#decode(
              this.#copy(this.#viewsOf(raw, v0, base0, len0), payloadEnd, end),
              0,
              end - payloadEnd,
              this.#metaDec,
            );
      if (this.#failed) return false;
    }
    const token = this.#nextToken++;
    if (payloadEnd <= len0) {
      this.#held.push({ token, start: frameStart, released: false });
      this.#handler.onLoan({
        bytes: v0.subarray(base0 + start, base0 + payloadEnd),
        meta,
        held: true,
        token,
      });
    } else {
      // Wraps the ring's end (only frames relayed by ferryd can): hand over a copy.
      this.#handler.onLoan({
        bytes: Buffer.from(this.#copy(this.#viewsOf(raw, v0, base0, len0), start, payloadEnd)),
        meta,
        held: false,
        token,
      });
    }
    return !this.#failed;
  }

  #gather(g: Gathering, views: Uint8Array[], off: number, avail: number): number {
    const take = Math.min(avail, g.left);
    const bodyLeft = g.buf.length - g.got;
    const copy = Math.min(take, bodyLeft);
    if (copy > 0) {
      copyOut(views, off, g.buf.subarray(g.got, g.got + copy));
      g.got += copy;
    }
    g.left -= take;
    return take;
  }

  #deliverGathered(g: Gathering): void {
    if (g.kind === MSG_KIND.LOAN) {
      const meta = g.buf.length > g.aux ? this.#decode(g.buf, g.aux, g.buf.length, this.#metaDec) : undefined;
      if (this.#failed) return;
      this.#handler.onLoan({ bytes: g.buf.subarray(0, g.aux), meta, held: false, token: this.#nextToken++ });
      return;
    }
    const value = this.#decode(g.buf, 0, g.buf.length);
    if (this.#failed) return;
    this.#deliver(g.kind, g.id, value);
  }

  #decode(src: Uint8Array, start: number, end: number, dec: Unpackr = this.#dec): unknown {
    const r = this.#range;
    r.start = start;
    r.end = end;
    try {
      if (src[start] === SHAPE_MARK && dec === this.#dec) return this.#shapes.decodeRecord(src, start, end);
      return dec.unpack(this.#unpackrView(src), r);
    } catch (err) {
      this.#fail(
        ferryError(
          'ERR_FERRY_MSG_MALFORMED',
          `undecodable value: ${(err as Error)?.message ?? String(err)}`,
          {
            cause: err,
          },
        ),
      );
      return undefined;
    }
  }

  /** `raw`, or the one run v0[base0, base0 + len0) as views when there is no `raw`. */
  #viewsOf(raw: Uint8Array[] | null, v0: Buffer, base0: number, len0: number): Uint8Array[] {
    return raw ?? [v0.subarray(base0, base0 + len0)];
  }

  /** The bytes [start, end) of the views in one contiguous array (a reused scratch). */
  #copy(views: Uint8Array[], start: number, end: number): Uint8Array {
    const n = end - start;
    if (this.#scratch.length < n)
      this.#scratch = Buffer.allocUnsafeSlow(Math.max(n, 2 * this.#scratch.length, 4096));
    const out = this.#scratch.subarray(0, n);
    copyOut(views, start, out);
    return out;
  }

  /** Consumes parsed bytes up to the first loan still held. */
  #consumeFree(): void {
    // Stopped: the channel is closing and its session may be detached already.
    if (this.#stopped) return;
    let free = this.#ahead;
    const held = this.#held;
    while (held.length > 0 && (held[0] as Held).released) held.shift();
    if (held.length > 0) free = Math.min(free, (held[0] as Held).start);
    if (free <= 0) return;
    if (this.#src.consume(free) !== free) {
      this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'rx fifo refused a consume'));
      return;
    }
    this.#ahead -= free;
    for (const h of held) h.start -= free;
  }

  #fail(err: FerryError): 'failed' {
    if (!this.#failed) {
      this.#failed = true;
      this.#handler.onFailure(err);
    }
    return 'failed';
  }
}

function asBuffer(v: Uint8Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.length);
}

/** Copies the bytes at `off` of the concatenated views into `dst` (dst.length of them). */
function copyOut(views: Uint8Array[], off: number, dst: Uint8Array): void {
  const v0 = views[0] as Uint8Array;
  const n = dst.length;
  if (off >= v0.length) {
    const v1 = views[1] as Uint8Array;
    dst.set(v1.subarray(off - v0.length, off - v0.length + n));
    return;
  }
  const first = Math.min(n, v0.length - off);
  dst.set(v0.subarray(off, off + first));
  if (first < n) dst.set((views[1] as Uint8Array).subarray(0, n - first), first);
}
