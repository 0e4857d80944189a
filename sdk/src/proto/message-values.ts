/**
 * The msgpack value codec of message channels: msgpackr with record structures shared per
 * direction (sequential mode), the types apps send (Date, Map, Set, BigInt, typed arrays, Buffer,
 * Error, RegExp), and encoding straight into a caller's space (fifo memory).
 *
 * Pure: msgpackr only, no I/O.
 */
import { type Options, Packr, RESERVE_START_SPACE, REUSE_BUFFER_MODE, Unpackr } from 'msgpackr';
import { SHAPE_MARK, ShapeReader, ShapeWriter } from './shape-codec.js';

/**
 * Both directions use these options. `sequential` writes a record's keys inline the first time its
 * shape is seen and refers to it by id afterwards: the reader learns shapes from the stream itself,
 * so the frames of a direction must be decoded in order, each once. `copyBuffers`: decoded binary
 * values are copies, never views of the fifo (which the peer overwrites once the frame is consumed).
 */
/** Below this much room in the space, encode() does not try it (see msgpackr's pack()). */
const MIN_SPACE_BYTES = 0x800 + 256 + 16;

const OPTIONS: Options = {
  sequential: true,
  moreTypes: true,
  useBigIntExtension: true,
  int64AsType: 'bigint',
  mapsAsObjects: false,
  copyBuffers: true,
};

/**
 * Loan metadata is encoded on its own: records defined inline in each encoding (msgpackr's
 * default), none shared with the values, so it may be written out of order with them.
 */
const PLAIN: Options = { ...OPTIONS, sequential: false };
const plainPackr = new Packr({ ...PLAIN });

/** A value encoded on its own (no record state), for loan metadata. */
export function encodePlain(value: unknown): Uint8Array {
  return plainPackr.pack(value);
}

/** A reader of encodePlain()'s output. */
export function createPlainDecoder(): Unpackr {
  return new Unpackr({ ...PLAIN });
}

/**
 * A reader of a topic's messages: self-contained shape records (ShapeWriter's selfContained mode,
 * what publishers write for plain objects) or msgpack encoded on its own (encodePlain). Throws on
 * bytes that are neither.
 */
export function createTopicDecoder(): (src: Uint8Array, start?: number, end?: number) => unknown {
  const plain = createPlainDecoder();
  const shapes = new ShapeReader({ selfContained: true });
  const range = { start: 0, end: 0 };
  const own = unpackrView();
  return (src, start = 0, end = src.length) => {
    if (src[start] === SHAPE_MARK) return shapes.decode(src, start, end);
    range.start = start;
    range.end = end;
    return plain.unpack(own(src), range);
  };
}

/**
 * msgpackr's own Buffer over a source it unpacks (one per source, reused while the source is):
 * msgpackr caches a DataView on the buffer it reads (`source.dataView`), a property that would give
 * the fifo's or ring's views a second hidden class and deoptimise the code that reads them.
 */
export function unpackrView(): (src: Uint8Array) => Uint8Array {
  let last: Uint8Array | null = null;
  let view: Uint8Array | null = null;
  return (src) => {
    if (src !== last) {
      last = src;
      view = Buffer.from(src.buffer, src.byteOffset, src.length);
    }
    return view as Uint8Array;
  };
}

/** A fresh reader for one direction of one channel. */
export function createValueDecoder(): Unpackr {
  return new Unpackr({ ...OPTIONS });
}

/**
 * Encodes values for one direction of one channel, into the caller's space when they fit.
 *
 * msgpackr packs into one module-wide target buffer. Pointing it at fifo memory (useBuffer) would
 * leave the next pack() anywhere in the process (the control codec, the app's own msgpackr) writing
 * into our fifo, so after each encode the target goes back to a private spare buffer. The spare is
 * replaced, not reused, once somebody else packed into it: what they were handed must stay valid.
 */
export class ValueEncoder {
  #packr = new Packr({ ...OPTIONS });
  #spare: Uint8Array = Buffer.allocUnsafeSlow(8192);
  /** Shape records (shape-codec.ts) for plain objects, once the reader said it reads them. */
  #shapes: ShapeWriter | null = null;
  #shapeScratch: Buffer | null = null;
  #shapeScratchView: DataView | null = null;
  #space: Uint8Array | null = null;
  #spaceView: DataView | null = null;
  /** After an encode that returned `space` itself: where in it the encoding ends. */
  endInSpace = 0;

  /**
   * Encodes `value` after `reserve` (< 256) bytes left free for a header. `space` must be a Buffer
   * (msgpackr writes long strings with Buffer's utf8Write). When the encoding fits there, the
   * result is `space` itself (no view is made) and it spans [at, endInSpace). The result starts with
   * the reserved bytes; it lies at `space[at]` when `inSpace` says so, else in memory the caller
   * owns until its next encode() (copy it to keep it longer). `at` must be a multiple of 8.
   * Throws what msgpackr throws for a value it cannot encode: the encoder's record state is then
   * unknown and the caller must use a fresh encoder (and tell the reader, see MSG_KIND.RESET).
   * `end` (default: the space's length): nothing is written at or past it (a space may be a whole
   * fifo ring, of which only [at, end) is free).
   */
  encode(
    value: unknown,
    reserve: number,
    space: Uint8Array | null,
    at: number,
    shapeTried = false,
    end = space === null ? 0 : space.length,
  ): Uint8Array {
    const shapes = this.#shapes;
    if (!shapeTried && shapes?.accepts(value)) {
      const out = this.#encodeShape(shapes, value as object, reserve, space, at, end);
      if (out !== null) return out;
    }
    const packr = this.#packr;
    if (packr.position !== 0) this.#spare = Buffer.allocUnsafeSlow(8192);
    // msgpackr refuses to start within ~2 KiB of its target's end and allocates a new target as large
    // as the old one: near the end of the space, encode into the spare instead.
    let target: Uint8Array | null = null;
    if (space !== null && end - at >= MIN_SPACE_BYTES) {
      target = this.#packrViewOf(space, end);
      packr.useBuffer(target);
      packr.position = at;
    } else {
      packr.useBuffer(this.#spare);
    }
    try {
      // REUSE_BUFFER_MODE: msgpackr returns its target with start/end instead of a new view.
      const t = packr.pack(
        value,
        REUSE_BUFFER_MODE | RESERVE_START_SPACE | reserve,
      ) as unknown as Uint8Array & {
        start: number;
        end: number;
      };
      if (t === target) {
        this.endInSpace = t.end;
        return space as Uint8Array;
      }
      return t.subarray(t.start, t.end);
    } finally {
      packr.useBuffer(this.#spare);
    }
  }

  /**
   * msgpackr's own Buffer over `space`: it adds properties to the buffers it packs into (`dataView`,
   * `start`, `end`), which would give the fifo's reservations a second hidden class and throw the
   * optimised code that handles them back to the interpreter (measured: deopts at the first request
   * after a burst of shape records). One per space.
   */
  #packrViewOf(space: Uint8Array, end: number): Uint8Array {
    // msgpackr writes up to its target's end: the target ends at `end` (offsets stay the space's).
    if (space !== this.#packrFor || end !== this.#packrEnd) {
      this.#packrFor = space;
      this.#packrEnd = end;
      this.#packrView = Buffer.from(space.buffer, space.byteOffset, end);
    }
    return this.#packrView as Uint8Array;
  }

  #packrFor: Uint8Array | null = null;
  #packrEnd = 0;
  #packrView: Uint8Array | null = null;

  /**
   * The shape-record half of encode() alone, in place: where the encoding (after `reserve` bytes)
   * ends in `space`, or -1 when `value` is not a shape record or did not fit (then nothing is
   * defined; encode() with `shapeTried` does the rest). Throws what a getter of the value throws.
   * Nothing is written at or past `end`.
   */
  encodeShapeInPlace(
    value: unknown,
    reserve: number,
    space: Uint8Array,
    at: number,
    end = space.length,
  ): number {
    const shapes = this.#shapes;
    if (shapes === null || !shapes.accepts(value)) return -1;
    if (space !== this.#space) {
      this.#space = space;
      this.#spaceView = new DataView(space.buffer, space.byteOffset, space.length);
    }
    return shapes.encode(value as object, space as Buffer, this.#spaceView as DataView, at + reserve, end);
  }

  /** True when `out` lies in the encoder's spare buffer (it is overwritten by the next encode). */
  isScratch(out: Uint8Array): boolean {
    return out.buffer === this.#spare.buffer || out.buffer === this.#shapeScratch?.buffer;
  }

  /** Plain objects go as shape records from now on (the reader said it reads them). */
  enableShapes(): void {
    this.#shapes ??= new ShapeWriter();
  }

  get shapesEnabled(): boolean {
    return this.#shapes !== null;
  }

  /** A shape record into the space (or the scratch when there is none); null: msgpackr's turn. */
  #encodeShape(
    shapes: ShapeWriter,
    value: object,
    reserve: number,
    space: Uint8Array | null,
    at: number,
    spaceEnd: number,
  ): Uint8Array | null {
    if (space !== null) {
      if (space !== this.#space) {
        this.#space = space;
        this.#spaceView = new DataView(space.buffer, space.byteOffset, space.length);
      }
      const end = shapes.encode(value, space as Buffer, this.#spaceView as DataView, at + reserve, spaceEnd);
      if (end >= 0) {
        this.endInSpace = end;
        return space;
      }
      return null;
    }
    if (this.#shapeScratch === null) {
      this.#shapeScratch = Buffer.allocUnsafeSlow(64 * 1024);
      this.#shapeScratchView = new DataView(this.#shapeScratch.buffer, 0, this.#shapeScratch.length);
    }
    const scratch = this.#shapeScratch;
    const end = shapes.encode(value, scratch, this.#shapeScratchView as DataView, reserve, scratch.length);
    return end >= 0 ? scratch.subarray(0, end) : null;
  }
}
