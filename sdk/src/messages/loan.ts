/**
 * Loans: binary payloads written in place in shared memory and read in place (iceoryx2's loan,
 * Aeron's tryClaim/commit).
 *
 * OutgoingLoan: `channel.loan(n)` lends `n` bytes of the tx fifo; fill `bytes`, then commit() (or
 * abort()). When the fifo has no contiguous room the loan is a private buffer copied at commit
 * (`zeroCopy` false): a loan never fails for lack of room, only for size (EMSGSIZE).
 *
 * ReceivedLoan: arrives in order with values (onMessage, iteration); `bytes` is a view of the rx
 * fifo until release(). Holding it pins the fifo: the peer's sends wait once it is full.
 *
 * Misuse throws ERR_FERRY_LOAN_STATE: bytes after commit/abort/release, a second commit, abort
 * after commit, release twice. A view kept past release reads whatever the fifo holds later (or
 * zeros once the channel's memory is released): never keep it.
 */
import { ferryError } from '../errors.js';

/** What an outgoing loan asks of its writer (FrameWriter implements it). */
export interface LoanWriter {
  commitLoan(loan: OutgoingLoan, length: number, meta: unknown): boolean;
  abortLoan(loan: OutgoingLoan): void;
}

export class OutgoingLoan {
  /** True when `bytes` lies in the fifo itself (committed without a copy). */
  readonly zeroCopy: boolean;
  readonly byteLength: number;
  #bytes: Buffer | null;
  #writer: LoanWriter;
  /** @internal The frame's space: the fifo reservation or a private buffer, header first. */
  readonly frame: Buffer;

  /** @internal */
  constructor(writer: LoanWriter, frame: Buffer, byteLength: number, zeroCopy: boolean) {
    this.#writer = writer;
    this.frame = frame;
    this.byteLength = byteLength;
    this.zeroCopy = zeroCopy;
    this.#bytes = frame.subarray(16, 16 + byteLength);
  }

  /** The lent bytes (8-byte aligned): fill them before commit(). */
  get bytes(): Buffer {
    if (this.#bytes === null) throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan was committed or aborted');
    return this.#bytes;
  }

  get open(): boolean {
    return this.#bytes !== null;
  }

  /**
   * Publishes the first `length` bytes (default all) with optional `meta` (any value; encoded
   * plainly, after the payload). Returns what send() returns: false when it waits behind a full
   * fifo. Throws ERR_FERRY_LOAN_STATE when already committed or aborted.
   */
  commit(meta?: unknown, length = this.byteLength): boolean {
    if (this.#bytes === null)
      throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan was already committed or aborted');
    if (!(Number.isInteger(length) && length >= 0 && length <= this.byteLength)) {
      throw ferryError(
        'ERR_OUT_OF_RANGE',
        `length must be an integer in [0, ${this.byteLength}], got ${length}`,
      );
    }
    const sent = this.#writer.commitLoan(this, length, meta);
    this.#bytes = null;
    return sent;
  }

  /** Gives the bytes back unsent. */
  abort(): void {
    if (this.#bytes === null)
      throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan was already committed or aborted');
    this.#bytes = null;
    this.#writer.abortLoan(this);
  }
}

export class ReceivedLoan {
  /** Decoded metadata the sender committed with the payload (undefined when none). */
  readonly meta: unknown;
  /** True when `bytes` is a view of the fifo (false: the payload was copied, e.g. across TCP). */
  readonly zeroCopy: boolean;
  readonly byteLength: number;
  #bytes: Buffer | null;
  #release: (() => void) | null;

  /** @internal */
  constructor(bytes: Buffer, meta: unknown, zeroCopy: boolean, release: () => void) {
    this.#bytes = bytes;
    this.meta = meta;
    this.zeroCopy = zeroCopy;
    this.byteLength = bytes.length;
    this.#release = release;
  }

  /** The payload. Throws ERR_FERRY_LOAN_STATE after release(). */
  get bytes(): Buffer {
    if (this.#bytes === null) throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan was released');
    return this.#bytes;
  }

  get released(): boolean {
    return this.#bytes === null;
  }

  /** Lets the fifo space go. Throws ERR_FERRY_LOAN_STATE when already released. */
  release(): void {
    if (this.#bytes === null) throw ferryError('ERR_FERRY_LOAN_STATE', 'the loan was already released');
    this.#bytes = null;
    const r = this.#release;
    this.#release = null;
    r?.();
  }
}
