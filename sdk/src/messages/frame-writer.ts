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
import { ValueEncoder } from '../proto/message-values.js';

/** What the writer needs of a session (AppSession has it). */
export interface FrameSink {
  reserve(maxBytes?: number): Uint8Array;
  commit(n: number): number;
  /** Copies what fits; -1 when the fifo failed or this end finished. */
  write(chunk: Uint8Array): number;
  /** Arms the space notification; true when space is there already. */
  waitForSpace(): boolean;
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
/** Below this much room left in a reservation, take a fresh one (after publishing). */
const MIN_RESERVATION = 64;
const ZEROS = new Uint8Array(8);

export class FrameWriter {
  readonly #sink: FrameSink;
  readonly #opts: FrameWriterOptions;
  #enc = new ValueEncoder();
  /** Reservation being filled; bytes [0, #used) hold frames not yet committed. */
  #resv: Uint8Array | null = null;
  #resvView: DataView | null = null;
  #used = 0;
  /** Frame bytes (headers and padding included) waiting for fifo space, in order. */
  #queue: Uint8Array[] = [];
  #queued = 0;
  #turnOpen = false;
  #waiting = false;
  /** The encoder was replaced: the reader must forget record structures before the next value. */
  #needReset = false;
  #failed = false;

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
    if (this.#failed) throw ferryError('ERR_FERRY_CHANNEL_CLOSED', 'the channel failed');
    if (this.#needReset) this.#writeReset();
    if (this.#queue.length > 0) {
      this.#checkQueueRoom();
      const out = this.#encode(value, null, 0);
      this.#enqueueFrame(this.#finishOutside(out, kind, id), out.length);
      return false;
    }
    let resv = this.#resv;
    if (resv === null || resv.length - this.#used < MIN_RESERVATION) resv = this.#reserve();
    const at = this.#used;
    const out = this.#encode(value, resv, at);
    if (resv !== null && ValueEncoder.inSpace(out, resv, at)) {
      const body = out.length - MSG_HEADER_BYTES;
      writeMessageHeader(this.#resvView as DataView, at, kind, body, id, 0);
      this.#used = at + frameBytes(body);
      this.#staged();
      return true;
    }
    // Larger than the contiguous free space: publish what is staged, then copy (wrapping).
    const frame = this.#finishOutside(out, kind, id);
    this.#commitStaged();
    return this.#writeOrQueue(frame, out.length);
  }

  /** Writes a frame without a body (CANCEL, RESET). Never refused: it is 16 bytes. */
  writeEmpty(kind: MessageKind, id: number): boolean {
    if (this.#failed) return false;
    const frame = new Uint8Array(MSG_HEADER_BYTES);
    writeMessageHeader(new DataView(frame.buffer), 0, kind, 0, id, 0);
    if (this.#queue.length > 0) {
      this.#enqueueFrame(frame, frame.length);
      return false;
    }
    this.#commitStaged();
    return this.#writeOrQueue(frame, frame.length);
  }

  /**
   * Publishes staged frames and moves queued ones into the fifo. True when nothing is left; else
   * the space notification is armed and the owner calls flush() again on 'writable'.
   */
  flush(): boolean {
    this.#commitStaged();
    while (this.#queue.length > 0) {
      const chunk = this.#queue[0] as Uint8Array;
      const n = this.#sink.write(chunk);
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
    this.#used = 0;
  }

  #encode(value: unknown, space: Uint8Array | null, at: number): Uint8Array {
    let out: Uint8Array;
    try {
      out = this.#enc.encode(value, MSG_HEADER_BYTES, space, at);
    } catch (err) {
      this.#resetEncoder();
      throw err;
    }
    const body = out.length - MSG_HEADER_BYTES;
    if (body > this.#opts.maxBodyBytes) {
      // The encoder may have defined record shapes in a value that is not sent.
      this.#resetEncoder();
      throw ferryError(
        'EMSGSIZE',
        `the value encodes to ${body} bytes, above maxMessageBytes ${this.#opts.maxBodyBytes}`,
      );
    }
    return out;
  }

  #resetEncoder(): void {
    this.#enc = new ValueEncoder();
    this.#needReset = true;
  }

  #writeReset(): void {
    this.#needReset = false;
    this.writeEmpty(MSG_KIND.RESET, 0);
  }

  /** Header into the reserved start of an encoding made outside the fifo; the padding follows. */
  #finishOutside(out: Uint8Array, kind: MessageKind, id: number): Uint8Array {
    // The encoder's scratch is overwritten by its next encode: a frame that may wait must own it.
    const frame = this.#enc.isScratch(out) ? out.slice() : out;
    writeMessageHeader(
      new DataView(frame.buffer, frame.byteOffset, MSG_HEADER_BYTES),
      0,
      kind,
      frame.length - MSG_HEADER_BYTES,
      id,
      0,
    );
    return frame;
  }

  #writeOrQueue(frame: Uint8Array, length: number): boolean {
    const n = this.#sink.write(frame);
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

  #reserve(): Uint8Array | null {
    this.#commitStaged();
    const view = this.#sink.reserve();
    // Whole 8-byte units only: frames are padded to 8 and must end inside the reservation.
    const len = view.length & ~7;
    if (len < MIN_RESERVATION) return null;
    // A Buffer over the same bytes: msgpackr writes long strings with Buffer's utf8Write.
    const resv = Buffer.from(view.buffer, view.byteOffset, len);
    this.#resv = resv;
    this.#resvView = new DataView(resv.buffer, resv.byteOffset, resv.length);
    return resv;
  }

  /** A frame was placed in the reservation: publish now, at the turn's end, or when enough is staged. */
  #staged(): void {
    if (!this.#turnOpen) {
      this.#turnOpen = true;
      this.#opts.defer(this.#endTurn);
      this.#commitStaged();
    } else if (this.#used >= COMMIT_BYTES) {
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
    const used = this.#used;
    if (used > 0 && this.#sink.commit(used) !== used) {
      this.#fail(ferryError('ERR_FERRY_FIFO_CORRUPT', 'tx fifo refused a commit'));
    }
    this.#resv = null;
    this.#resvView = null;
    this.#used = 0;
  }

  #wait(): void {
    this.#waiting = true;
    if (this.#sink.waitForSpace()) setImmediate(() => this.#failed || this.flush());
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.discard();
    this.#opts.onError(err);
  }
}
