/**
 * Writes message frames into a session's tx fifo: values are encoded straight into the fifo's free
 * space (a reservation) and published together; what does not fit waits in an ordered queue.
 */
import { ferryError } from '../errors.js';
import {
  frameBytes,
  type MessageKind,
  MSG_HEADER_BYTES,
  MSG_KIND,
  writeMessageHeader,
} from '../proto/message-frame.js';
import { encodePlain, ValueEncoder } from '../proto/message-values.js';
import { type LoanWriter, OutgoingLoan } from './loan.js';
import { RingAccess } from './ring-access.js';

/** What the writer needs of a session (AppSession has it). */
export interface FrameSink {
  reserve(maxBytes?: number): Uint8Array;
  commit(n: number): number;
  /** Free bytes in the fifo now (wrapping included). */
  readonly writableBytes: number;
  /** The fifo's size. */
  readonly txSize: number;
  /** Copies what fits; -1 when the fifo failed or this end finished. */
  write(chunk: Uint8Array): number;
  /** Arms the space notification; true when space is there already (or the fifo failed or its
   *  reader closed: look again). */
  waitForSpace(): boolean;
  /** The reader closed its end: it will make no more room. */
  readonly peerStoppedReading: boolean;
  /**
   * The whole tx ring, which reserve() returns views of: the writer encodes through one Buffer and
   * DataView over it for the channel's life rather than new ones per reservation (without it, over
   * each reservation).
   */
  readonly txRing?: Uint8Array;
  /**
   * With txRing and txTailOffset: reserve() as a length, its space from txRing[txTailOffset] (no
   * view is made). A sink without both gets reserve() calls.
   */
  lend?(): number;
  readonly txTailOffset?: number;
}

export interface FrameWriterOptions {
  /** Largest body a frame may have (the channel's maxMessageBytes). */
  maxBodyBytes: number;
  /** Above this many queued bytes, new frames are refused with ENOBUFS. */
  maxQueuedBytes: number;
  /** Runs `fn` once at the end of the current loop turn (publishing the frames of the turn). */
  defer: (fn: () => void) => void;
  /** The queue emptied after a write had to wait. */
  onDrain: () => void;
  /** The fifo failed under a write. */
  onError: (err: Error) => void;
}

/**
 * Published frames are batched: the first frame of a loop turn is committed at once (a lone
 * request waits for nothing), later ones of the same turn at its end or every COMMIT_BYTES, so a
 * burst of small sends costs one tail store per batch rather than per frame (the tail's cache line
 * is what the reader spins on).
 */
const COMMIT_BYTES = 32 * 1024;
/** Frames up to this size are written into the fifo whole or not at all (see #writeWhole). */
const WHOLE_BYTES = 2048;
/** Below this much room left in a reservation, take a fresh one (after publishing). */
const MIN_RESERVATION = 64;
const ZEROS = new Uint8Array(8);

/**
 * An empty array already of the elements kind the queue ends up with: `[]` starts as one of small
 * integers and changes kind (and hidden class) at the first frame queued, which deoptimised every
 * send compiled before the fifo first filled.
 */
function objectQueue(): Uint8Array[] {
  const q = [ZEROS];
  q.pop();
  return q;
}

export class FrameWriter implements LoanWriter {
  readonly #sink: FrameSink;
  readonly #opts: FrameWriterOptions;
  #enc = new ValueEncoder();
  /**
   * Reservation being filled: the fifo space [#resvStart, #resvEnd) of #resv (the Buffer over the
   * whole ring, or over the reservation alone), of which [#resvStart, #used) holds frames not yet
   * committed.
   */
  #resv: Buffer | null = null;
  #resvView: DataView | null = null;
  #resvStart = 0;
  #resvEnd = 0;
  #used = 0;
  /** The Buffer and DataView over the tx ring (FrameSink.txRing), made once. */
  #ring: RingAccess | null = null;
  /** Frame bytes (headers and padding included) waiting for fifo space, in order. */
  #queue: Uint8Array[] = objectQueue();
  #queued = 0;
  #turnOpen = false;
  #waiting = false;
  /** The encoder was replaced: the reader must forget record structures before the next value. */
  #needReset = false;
  #failed = false;
  /** The outgoing loan not yet committed: later frames queue behind it. */
  #loan: OutgoingLoan | null = null;
  /** Queue entries ahead of the open loan: only those may be written before its commit. */
  #loanMark = 0;

  constructor(sink: FrameSink, opts: FrameWriterOptions) {
    this.#sink = sink;
    this.#opts = opts;
  }

  /** Bytes queued behind a full fifo. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Frames are waiting for fifo space (send() returned false). */
  get backlogged(): boolean {
    return this.#queue.length > 0;
  }

  /**
   * Encodes `value` into a frame of `kind` and writes it. Returns true when it is in the fifo (or
   * staged for this turn), false when it waits behind a full fifo (whole, in order). Throws EMSGSIZE
   * (body larger than maxBodyBytes), ENOBUFS (the queue is over its bound) or msgpackr's error for
   * a value it cannot encode; nothing of a refused value is written.
   */
  writeValue(kind: MessageKind, id: number, value: unknown): boolean {
    // The common case in a few lines: a shape record into the reservation of this turn. Everything
    // else (the turn's first frame, a fresh reservation, msgpackr, the ring's end, a full fifo, a
    // loan) is #writeGeneral's, kept apart so that its first use after this was optimised does not
    // throw away the code it is inlined into (send's, with the encoder: the costliest to redo).
    // A reservation is held only while nothing is queued, no loan is open and the writer works.
    const resv = this.#resv;
    if (
      resv !== null &&
      this.#turnOpen &&
      !this.#needReset &&
      this.#resvEnd - this.#used >= MIN_RESERVATION
    ) {
      const at = this.#used;
      let end: number;
      try {
        end = this.#enc.encodeShapeInPlace(value, MSG_HEADER_BYTES, resv, at, this.#resvEnd);
      } catch (err) {
        this.#resetEncoder();
        throw err;
      }
      if (end >= 0) {
        const body = end - at - MSG_HEADER_BYTES;
        if (body > this.#opts.maxBodyBytes) this.#refuseSize(body);
        writeMessageHeader(this.#resvView as DataView, at, kind, body, id, 0);
        this.#used = at + frameBytes(body);
        if (this.#used - this.#resvStart >= COMMIT_BYTES) this.#commitStaged();
        return true;
      }
      return this.#writeGeneral(kind, id, value, true);
    }
    return this.#writeGeneral(kind, id, value, false);
  }

  #writeGeneral(kind: MessageKind, id: number, value: unknown, shapeTried: boolean): boolean {
    if (this.#failed) throw ferryError('ERR_FERRY_CHANNEL_CLOSED', 'the channel failed');
    if (this.#needReset) this.#writeReset();
    if (this.#queue.length > 0 || this.#loan !== null) {
      this.#checkQueueRoom();
      const out = this.#encode(value, null, 0, shapeTried);
      const frame = this.#finishOutside(out, kind, id);
      this.#enqueueFrame(frame, frame.length);
      return false;
    }
    let resv = this.#resv;
    if (resv === null || this.#resvEnd - this.#used < MIN_RESERVATION) {
      resv = this.#reserve();
      // A fresh space may hold what did not fit the last one's end.
      shapeTried = false;
    }
    const at = this.#used;
    const out = this.#encode(value, resv, at, shapeTried, this.#resvEnd);
    if (out === resv) {
      const body = this.#enc.endInSpace - at - MSG_HEADER_BYTES;
      writeMessageHeader(this.#resvView as DataView, at, kind, body, id, 0);
      this.#used = at + frameBytes(body);
      this.#staged();
      return true;
    }
    // Larger than the contiguous free space: publish what is staged, then copy (wrapping).
    const frame = this.#finishOutside(out, kind, id);
    this.#commitStaged();
    return this.#writeOrQueue(frame, frame.length);
  }

  /** Writes a frame without a body (CANCEL, RESET). Never refused: it is 16 bytes. */
  writeEmpty(kind: MessageKind, id: number): boolean {
    if (this.#failed) return false;
    const frame = new Uint8Array(MSG_HEADER_BYTES);
    writeMessageHeader(new DataView(frame.buffer), 0, kind, 0, id, 0);
    if (this.#queue.length > 0 || this.#loan !== null) {
      this.#enqueueFrame(frame, frame.length);
      return false;
    }
    this.#commitStaged();
    return this.#writeOrQueue(frame, frame.length);
  }

  /**
   * Lends `bytes` bytes for a LOAN frame: in the fifo when it has that much contiguous room (a PAD
   * frame skips a ring end that is too short), else in a private buffer. One loan at a time; frames
   * written meanwhile wait behind it. Throws EMSGSIZE above maxBodyBytes, ERR_FERRY_LOAN_STATE
   * while another loan is open.
   */
  openLoan(bytes: number): OutgoingLoan {
    if (this.#failed) throw ferryError('ERR_FERRY_CHANNEL_CLOSED', 'the channel failed');
    if (this.#loan !== null) throw ferryError('ERR_FERRY_LOAN_STATE', 'another loan is open on this channel');
    if (!(Number.isInteger(bytes) && bytes >= 0)) {
      throw ferryError('ERR_OUT_OF_RANGE', `a loan's size must be a non-negative integer, got ${bytes}`);
    }
    if (bytes > this.#opts.maxBodyBytes) {
      throw ferryError(
        'EMSGSIZE',
        `a ${bytes}-byte loan is above maxMessageBytes ${this.#opts.maxBodyBytes}`,
      );
    }
    const need = frameBytes(bytes);
    let loan: OutgoingLoan | null = null;
    if (this.#queue.length === 0) {
      this.#commitStaged();
      let view = this.#sink.reserve();
      if (view.length < need && view.length >= MSG_HEADER_BYTES && (view.length & 7) === 0) {
        // Cut short by the ring's end while more is free from its start: skip to the start.
        if (this.#sink.writableBytes >= view.length + need) {
          writeMessageHeader(
            new DataView(view.buffer, view.byteOffset, 16),
            0,
            MSG_KIND.PAD,
            view.length - 16,
            0,
            0,
          );
          this.#sink.commit(view.length);
          view = this.#sink.reserve();
        }
      }
      if (view.length >= need) {
        loan = new OutgoingLoan(
          this,
          Buffer.from(view.buffer, view.byteOffset, view.length & ~7),
          bytes,
          true,
        );
      }
    }
    loan ??= new OutgoingLoan(this, Buffer.alloc(need), bytes, false);
    this.#loan = loan;
    this.#loanMark = this.#queue.length;
    return loan;
  }

  commitLoan(loan: OutgoingLoan, length: number, meta: unknown): boolean {
    if (this.#loan !== loan) throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan is not open on this channel');
    this.#loan = null;
    const m = meta === undefined ? null : encodePlain(meta);
    const body = length + (m === null ? 0 : m.length);
    if (body > this.#opts.maxBodyBytes) {
      this.#afterLoan();
      throw ferryError('EMSGSIZE', `the loan with its metadata is ${body} bytes, above maxMessageBytes`);
    }
    const size = frameBytes(body);
    let frame = loan.frame;
    if (size > frame.length) {
      // The metadata does not fit where the payload was lent: copy both into a frame of their own.
      const bigger = Buffer.alloc(size);
      frame.copy(bigger, 16, 16, 16 + length);
      frame = bigger;
    }
    if (m !== null) frame.set(m, 16 + length);
    writeMessageHeader(new DataView(frame.buffer, frame.byteOffset, 16), 0, MSG_KIND.LOAN, body, 0, length);
    if (this.#failed) return false;
    if (loan.zeroCopy && frame === loan.frame) {
      if (this.#sink.commit(size) !== size)
        this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo refused a commit'));
      this.#afterLoan();
      return !this.#failed;
    }
    // Its place is after what was queued before the loan opened, before what was queued since.
    const bytes = frame.subarray(0, size);
    this.#queue.splice(this.#loanMark, 0, bytes);
    this.#queued += bytes.length;
    this.#loanMark = 0;
    return this.flush();
  }

  abortLoan(loan: OutgoingLoan): void {
    if (this.#loan !== loan) return;
    this.#loan = null;
    this.#loanMark = 0;
    this.#afterLoan();
  }

  /** Aborts the open loan, if any (the channel is closing). */
  abortOpenLoan(): void {
    if (this.#loan?.open) this.#loan.abort();
  }

  /** Frames that queued behind the loan go now. */
  #afterLoan(): void {
    if (!this.#failed && this.#queue.length > 0) this.flush();
  }

  /**
   * Publishes staged frames and moves queued ones into the fifo. True when nothing is left; else
   * the space notification is armed and the owner calls flush() again on 'writable'.
   */
  flush(): boolean {
    // The lent fifo space lies where queued frames would go: they wait for the commit.
    if (this.#loan?.zeroCopy) return false;
    this.#commitStaged();
    while (this.#queue.length > 0) {
      if (this.#loan !== null && this.#loanMark === 0) return false;
      const chunk = this.#queue[0] as Uint8Array;
      const n = this.#writeWhole(chunk);
      if (n < 0) {
        this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo failed'));
        return false;
      }
      this.#queued -= n;
      if (n < chunk.length) {
        this.#queue[0] = chunk.subarray(n);
        this.#wait();
        return false;
      }
      this.#queue.shift();
      if (this.#loanMark > 0) this.#loanMark--;
    }
    if (this.#waiting) {
      this.#waiting = false;
      this.#opts.onDrain();
    }
    return true;
  }

  /** Drops what is staged and queued (the channel is being reset); later writes throw. */
  discard(): void {
    this.#failed = true;
    this.#queue = [];
    this.#queued = 0;
    this.#resv = null;
    this.#resvView = null;
    this.#resvStart = 0;
    this.#resvEnd = 0;
    this.#used = 0;
  }

  #encode(
    value: unknown,
    space: Uint8Array | null,
    at: number,
    shapeTried = false,
    end = space === null ? 0 : space.length,
  ): Uint8Array {
    let out: Uint8Array;
    try {
      out = this.#enc.encode(value, MSG_HEADER_BYTES, space, at, shapeTried, end);
    } catch (err) {
      this.#resetEncoder();
      throw err;
    }
    // In place (out is the space itself): the encoding spans [at, endInSpace).
    const body = (out === space ? this.#enc.endInSpace - at : out.length) - MSG_HEADER_BYTES;
    if (body > this.#opts.maxBodyBytes) this.#refuseSize(body);
    return out;
  }

  #refuseSize(body: number): never {
    // The encoder may have defined record shapes in a value that is not sent.
    this.#resetEncoder();
    throw ferryError(
      'EMSGSIZE',
      `the value encodes to ${body} bytes, above maxMessageBytes ${this.#opts.maxBodyBytes}`,
    );
  }

  #resetEncoder(): void {
    const shapes = this.#enc.shapesEnabled;
    this.#enc = new ValueEncoder();
    if (shapes) this.#enc.enableShapes();
    this.#needReset = true;
  }

  /** The reader said (HELLO) it reads shape records: plain objects go as those from now on. */
  enableShapes(): void {
    this.#enc.enableShapes();
  }

  #writeReset(): void {
    this.#needReset = false;
    this.writeEmpty(MSG_KIND.RESET, 0);
  }

  /**
   * Header into the reserved start of an encoding made outside the fifo. Frames up to WHOLE_BYTES
   * come back padded, in one array (they go into the fifo whole, see #writeWhole); larger ones
   * are the encoding itself, their padding follows apart.
   */
  #finishOutside(out: Uint8Array, kind: MessageKind, id: number): Uint8Array {
    const size = frameBytes(out.length - MSG_HEADER_BYTES);
    let frame: Uint8Array;
    if (size <= WHOLE_BYTES) {
      frame = Buffer.alloc(size);
      frame.set(out);
    } else {
      // The encoder's scratch is overwritten by its next encode: a frame that may wait must own it.
      // (Buffer.from copies; a Buffer's slice() would not.)
      frame = this.#enc.isScratch(out) ? Buffer.from(out) : out;
    }
    writeMessageHeader(
      new DataView(frame.buffer, frame.byteOffset, MSG_HEADER_BYTES),
      0,
      kind,
      out.length - MSG_HEADER_BYTES,
      id,
      0,
    );
    return frame;
  }

  /**
   * A small frame goes into the fifo whole or not at all: written in part, it would leave the reader
   * a frame it cannot take yet (each time a fast sender fills the fifo), which sends it down its
   * slow path and arms a stall timer. Larger frames stream through in pieces.
   */
  #writeWhole(chunk: Uint8Array): number {
    if (chunk.length <= WHOLE_BYTES && chunk.length <= this.#sink.txSize >> 1) {
      // Not written: 0, or -1 when the fifo failed (it then reads 0 bytes free and waitForSpace
      // says "look again": returning 0 would retry every turn without end).
      if (this.#sink.writableBytes < chunk.length) return this.#sink.write(chunk.subarray(0, 0));
    }
    return this.#sink.write(chunk);
  }

  #writeOrQueue(frame: Uint8Array, length: number): boolean {
    const n = this.#writeWhole(frame);
    if (n < 0) {
      this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo failed'));
      return false;
    }
    const pad = frameBytes(length - MSG_HEADER_BYTES) - length;
    if (n < frame.length) {
      this.#enqueueFrame(frame.subarray(n), frame.length - n, pad);
    } else {
      const p = pad === 0 ? 0 : this.#sink.write(ZEROS.subarray(0, pad));
      if (p === pad) return true;
      this.#enqueueFrame(ZEROS.subarray(0, pad - Math.max(0, p)), 0, 0);
    }
    this.#wait();
    return false;
  }

  /** Queues `frame` (`length` bytes of it) and its padding. */
  #enqueueFrame(
    frame: Uint8Array,
    length: number,
    pad = frameBytes(length - MSG_HEADER_BYTES) - length,
  ): void {
    this.#queue.push(frame);
    this.#queued += frame.length;
    if (pad > 0) {
      this.#queue.push(ZEROS.subarray(0, pad));
      this.#queued += pad;
    }
  }

  #checkQueueRoom(): void {
    if (this.#queued >= this.#opts.maxQueuedBytes) {
      throw ferryError(
        'ENOBUFS',
        `${this.#queued} bytes already wait for the peer (maxQueuedBytes ${this.#opts.maxQueuedBytes}): wait for 'drain'`,
      );
    }
  }

  #reserve(): Buffer | null {
    this.#commitStaged();
    const sink = this.#sink;
    // Lent space is usable only where the sink says it starts: without txTailOffset, views.
    const at = sink.txTailOffset;
    const ra = sink.lend === undefined || at === undefined ? null : this.#ringAccess();
    if (ra !== null && sink.lend !== undefined && at !== undefined) {
      const len = sink.lend() & ~7;
      if (len < MIN_RESERVATION) return null;
      // The ring's Buffer at the reservation's offset: a round trip's frames are each the first of
      // their turn, and a view, a Buffer and DataViews made per reservation were most of what a
      // reply cost beyond its encoding.
      this.#resv = ra.buf;
      this.#resvView = ra.view;
      this.#resvStart = at;
      this.#resvEnd = this.#resvStart + len;
      this.#used = this.#resvStart;
      return this.#resv;
    }
    const view = sink.reserve();
    // Whole 8-byte units only: frames are padded to 8 and must end inside the reservation.
    const len = view.length & ~7;
    if (len < MIN_RESERVATION) return null;
    const wr = this.#ringAccess();
    const ring = wr === null ? null : wr.of(view);
    if (wr !== null && ring !== null) {
      this.#resv = ring;
      this.#resvView = wr.view;
      this.#resvStart = view.byteOffset - ring.byteOffset;
    } else {
      // A Buffer over the same bytes: msgpackr writes long strings with Buffer's utf8Write.
      const resv = Buffer.from(view.buffer, view.byteOffset, len);
      this.#resv = resv;
      this.#resvView = new DataView(resv.buffer, resv.byteOffset, resv.length);
      this.#resvStart = 0;
    }
    this.#resvEnd = this.#resvStart + len;
    this.#used = this.#resvStart;
    return this.#resv;
  }

  /** The Buffer and DataView over the whole tx ring (null without FrameSink.txRing), made on first use. */
  #ringAccess(): RingAccess | null {
    if (this.#ring === null && this.#sink.txRing !== undefined)
      this.#ring = new RingAccess(this.#sink.txRing);
    return this.#ring;
  }

  /** A frame was placed in the reservation: publish now, at the turn's end, or when enough is staged. */
  #staged(): void {
    if (!this.#turnOpen) {
      this.#turnOpen = true;
      this.#opts.defer(this.#endTurn);
      this.#commitStaged();
    } else if (this.#used - this.#resvStart >= COMMIT_BYTES) {
      this.#commitStaged();
    }
  }

  readonly #endTurn = (): void => {
    this.#turnOpen = false;
    if (this.#failed) return;
    if (this.#queue.length > 0) this.flush();
    else this.#commitStaged();
  };

  #commitStaged(): void {
    const used = this.#used - this.#resvStart;
    if (used > 0 && this.#sink.commit(used) !== used) {
      this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo refused a commit'));
    }
    this.#resv = null;
    this.#resvView = null;
    this.#resvStart = 0;
    this.#resvEnd = 0;
    this.#used = 0;
  }

  #wait(): void {
    this.#waiting = true;
    // "Look again" also answers a reader that closed its end: it makes no room, and looking again
    // would then repeat every turn without end. The frames wait instead (the session's close ends
    // the channel); a failed fifo is looked at again, and the write says -1.
    if (this.#sink.waitForSpace() && !this.#sink.peerStoppedReading) {
      setImmediate(() => this.#failed || this.flush());
    }
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.discard();
    this.#opts.onError(err);
  }
}
