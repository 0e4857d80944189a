/**
 * Zero-copy access to a Socket's fifos, beside the node:net surface: read views of the bytes in
 * the rx fifo that stay valid until released (VPP's read segments), and write reservations filled
 * in place and committed (Aeron's tryClaim / commit). The objects check their own use: touching a
 * view after release, committing twice, committing more than reserved or a reservation that
 * another write overtook throws ERR_FERRY_VIEW_RELEASED or ERR_OUT_OF_RANGE. The Uint8Arrays
 * they hand out alias shared memory and cannot be revoked: a reference kept past release() reads
 * whatever the peer writes there next. Copy what must outlive the view.
 */
import { type FerryError, ferryError } from '../errors.js';

function released(what: string): FerryError {
  return ferryError('ERR_FERRY_VIEW_RELEASED', `${what} was already released or invalidated`);
}

/** Bytes received, in place in the fifo (one chunk, or two when they wrap around its end). */
export class ReadView {
  #chunks: readonly Uint8Array[] | null;
  readonly #length: number;
  readonly #release: (n: number, length: number) => void;

  /** @internal */
  constructor(chunks: readonly Uint8Array[], release: (n: number, length: number) => void) {
    this.#chunks = chunks;
    let n = 0;
    for (const c of chunks) n += c.length;
    this.#length = n;
    this.#release = release;
  }

  /** The bytes, in order; throws once released. */
  get chunks(): readonly Uint8Array[] {
    if (this.#chunks === null) throw released('read view');
    return this.#chunks;
  }

  /** Total bytes in the view; throws once released. */
  get length(): number {
    if (this.#chunks === null) throw released('read view');
    return this.#length;
  }

  get released(): boolean {
    return this.#chunks === null;
  }

  /** A copy of the bytes in a fresh Buffer (to keep after release). */
  toBuffer(): Buffer {
    const chunks = this.chunks;
    return chunks.length === 1 ? Buffer.from(chunks[0] as Uint8Array) : Buffer.concat(chunks);
  }

  /**
   * Gives the first `n` bytes (default: all) back to the fifo; the rest is offered again, with
   * any newer bytes, once more arrive (or once more when the peer has finished; left again, the
   * socket ends without them). The view is unusable afterwards.
   */
  release(n = this.#length): void {
    if (this.#chunks === null) throw released('read view');
    if (!(Number.isInteger(n) && n >= 0 && n <= this.#length)) {
      throw ferryError('ERR_OUT_OF_RANGE', `release(${n}) of a ${this.#length}-byte view`);
    }
    this.#chunks = null;
    this.#release(n, this.#length);
  }
}

/** Free space at the tail of the tx fifo, to fill in place and commit. */
export class WriteReservation {
  #bytes: Uint8Array | null;
  readonly #commit: (n: number) => boolean;

  /** @internal */
  constructor(bytes: Uint8Array, commit: (n: number) => boolean) {
    this.#bytes = bytes;
    this.#commit = commit;
  }

  /** The space to write into (at most what was asked); throws once committed or invalidated. */
  get bytes(): Uint8Array {
    if (this.#bytes === null) throw released('write reservation');
    return this.#bytes;
  }

  /**
   * Publishes the first `n` bytes (default: all of `bytes`) to the peer: a peer that polls sees
   * them at once, a sleeping one is woken once at the end of this tick, for all the commits made
   * in it (fill and commit in a loop without paying a wake per commit). Throws
   * ERR_FERRY_VIEW_RELEASED when committed already, or when another write or reserve() on the
   * socket came in between (nothing is published then).
   */
  commit(n = this.bytes.length): void {
    const bytes = this.bytes;
    if (!(Number.isInteger(n) && n >= 0 && n <= bytes.length)) {
      throw ferryError('ERR_OUT_OF_RANGE', `commit(${n}) of a ${bytes.length}-byte reservation`);
    }
    this.#bytes = null;
    if (!this.#commit(n)) throw released('write reservation (another write came first)');
  }
}
