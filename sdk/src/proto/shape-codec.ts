/**
 * Shape records: a faster codec for the plain objects apps send most (records of one shape, sent
 * over and over), beside msgpackr, in the same frames.
 *
 * A body that starts with 0xc1 (the one byte msgpack never uses, so no msgpackr body starts with
 * it) is a shape record. Inside one, values are a subset of msgpack plus nested records:
 *
 *   body       := definition* record          shapes first used by this record, defined up front
 *   definition := 0xc1 u16be(0x8000 | id) u8(n) key*n
 *   key        := u8(len) utf8 bytes
 *   record     := 0xc1 u16be(id) value*        its fields' values in the shape's key order
 *   value  := nil c0 | false c2 | true c3 | undefined d4 00 00 | positive/negative fixint
 *           | int32 d2 | float64 cb | fixstr / str8 d9 / str16 da / str32 db
 *           | fixarray / array16 dc / array32 dd of values | record
 *
 * Shape ids are the writer's, per direction, defined once each (a definition for an id already
 * defined is malformed, as is a definition anywhere but at the start of a body); a RESET frame
 * makes the reader forget them, as msgpackr's records. (Topics use a self-contained variant: every
 * body defines the shapes it uses, and readers reuse what they compiled when the bytes match.) The
 * writer takes this path only for plain objects (prototype Object.prototype or null) whose values
 * are all of the kinds above, to MAX_DEPTH; anything else (Date, Map, Buffer, BigInt, a class
 * instance, ...) makes it give up on that value, which then goes to msgpackr whole, and the shape
 * that met it is remembered as one to leave to msgpackr.
 *
 * Why it is faster than msgpackr for these values: the writer walks a transition tree of keys and
 * writes each value as it goes (one pass, no per-call set-up); the reader builds each object with a
 * function compiled per shape from its key count only (so every object of a shape has the same
 * hidden class, and no code is made from a peer's bytes: see compileBuilder) and
 * reuses a field's string when its bytes are those of the previous record's (names, kinds, units).
 *
 * Hostile input: every length and count is checked against the bytes left before anything is
 * read or allocated, nesting is bounded, ids are bounded (MAX_SHAPES) and a record must use a
 * defined shape; any violation throws ShapeError (the frame reader turns it into
 * ERR_FERRY_MSG_MALFORMED). Keys named `__proto__` are renamed `__proto_` (never applied), as
 * msgpackr does.
 *
 * Pure: no I/O.
 */

export const SHAPE_MARK = 0xc1;
/** Shapes per direction; the writer stops defining new ones there (msgpackr takes the rest). */
export const MAX_SHAPES = 4096;
/** Keys per shape (and the u8 count), and bytes per key. */
const MAX_KEYS = 64;
const MAX_KEY_BYTES = 255;
/** Nesting of arrays and records, on both sides. */
const MAX_DEPTH = 32;
/** Strings up to this many bytes are cached per field by the reader. */
const CACHE_STRING_BYTES = 64;
const DEF_FLAG = 0x8000;
/** A definition's bytes after its id: the count, then MAX_KEYS keys of MAX_KEY_BYTES at most. */
const MAX_DEFINITION_BYTES = 1 + MAX_KEYS * (1 + MAX_KEY_BYTES);

/** A shape record the reader refused. */
export class ShapeError extends Error {}

// ---------------------------------------------------------------- writer

interface ShapeNode {
  /** Transitions by the next key (a null-prototype object: V8's property caches make it fast). */
  next: Record<string, ShapeNode> | null;
  /** The shape ending here, once seen. */
  shape: WriterShape | null;
}

/** Writes one field's value at `pos` and returns where it ends (throws GIVE_UP as #value does). */
type FieldWriter = (v: unknown, pos: number, depth: number) => number;

/**
 * A shape's own writer: checks that `o`'s keys are the shape's, in order, and writes each field with
 * the writer chosen for it when the shape was first seen. Returns where the fields end, or -1 when
 * the keys differ (the caller then takes the generic path).
 */
type ShapePlan = (o: Record<string, unknown>, pos: number, depth: number) => number;

interface WriterShape {
  id: number;
  /** Its definition's bytes, made once (self-contained bodies repeat it in every message). */
  def: Buffer | null;
  keys: string[];
  /** Its definition went out in a body that was sent. */
  defined: boolean;
  /** Self-contained mode: the encode that last put its definition in the body. */
  mark: number;
  /** Its own writer (see #planFor); null for shapes with more than MAX_PLAN_KEYS keys. */
  plan: ShapePlan | null;
}

/** Shapes with more keys than this are written by the generic loop only. */
const MAX_PLAN_KEYS = 16;
/**
 * Functions compiled per writer (plans) and per reader (builders): shapes beyond these go by the
 * generic code (each compile costs tens of microseconds and some memory; a peer may define shape
 * after shape, RESET after RESET).
 */
const MAX_PLANS = 256;
const MAX_BUILDERS = 256;
/**
 * Builders compiled across the readers that share one CompileBudget (a channel's, through every
 * RESET): without it a peer sending RESET and new definitions over and over would have us compile
 * 256 functions per RESET, each tens of microseconds, with no end.
 */
export const MAX_BUILDERS_SHARED = 1024;

/** Counts builders compiled by every ShapeReader given it (see MAX_BUILDERS_SHARED). */
export type CompileBudget = { compiled: number };

/** ShapeReader's #decodeLikeLast: the body is not like the last one (decode() reads it whole). */
const NOT_LIKE_LAST = Symbol('not like the last body');

/** Thrown inside the writer to give up on a value (caught in encode). */
const GIVE_UP = Symbol('give up');
const EMPTY = Buffer.alloc(0);
const OBJECT_PROTO = Object.prototype;

export class ShapeWriter {
  /**
   * Self-contained: every body carries the definitions of the shapes it uses (a topic's messages,
   * which a subscriber may start reading anywhere); ids stay the writer's, so readers can keep
   * what they compiled for a definition they saw before (see ShapeReader).
   */
  readonly #selfContained: boolean;
  #epoch = 0;
  readonly #root: ShapeNode = { next: null, shape: null };
  #count = 0;
  #buf: Buffer = EMPTY;
  #view: DataView = new DataView(new ArrayBuffer(0));
  #end = 0;
  /** Shapes first used by this encode (the first #nDefs): their definitions go in front of the value. */
  readonly #defs: WriterShape[] = [];
  #nDefs = 0;
  /**
   * Self-contained mode: bytes of the definitions the last body carried. The next value is written
   * after that much room, so that when it uses the same shapes (nearly always) their definitions
   * go in front of it without moving it.
   */
  #defBytes = 0;
  /** The shape last written at each nesting depth (see #record). */
  readonly #lastAt: (WriterShape | undefined)[] = [];
  /** The shape of the record #record or #asShape wrote last (record fields remember it). */
  #lastShape: WriterShape | null = null;
  #plans = 0;

  /**
   * Self-contained mode, `reuseDefinitions`: the caller passes one private buffer, at one offset,
   * and writes nothing into it between encodes (a topic publisher's scratch). A body that defines
   * the same shapes as the last one then finds their definitions already in front of its value
   * and does not copy them again (a copy per message was 18% of a publisher's encode).
   */
  readonly #reuseDefinitions: boolean;
  /** What the last body placed: its buffer, offset and shapes (reuseDefinitions). */
  #placedBuf: Buffer | null = null;
  #placedAt = -1;
  readonly #placed: WriterShape[] = [];
  #placedCount = 0;

  constructor(opts: { selfContained?: boolean; reuseDefinitions?: boolean } = {}) {
    this.#selfContained = opts.selfContained === true;
    this.#reuseDefinitions = this.#selfContained && opts.reuseDefinitions === true;
  }

  /** True when `value` is a plain object this writer may try (the caller then calls encode). */
  accepts(value: unknown): boolean {
    if (typeof value !== 'object' || value === null) return false;
    const proto = Object.getPrototypeOf(value);
    return proto === OBJECT_PROTO || proto === null;
  }

  /**
   * Writes `value` (a plain object) as a shape body into `buf` from `at`, not past `end`. Returns
   * where it ends, or -1 when it gave up (a value only msgpackr encodes, no room, too deep, too
   * many shapes): nothing is then defined, and the caller encodes it with msgpackr.
   */
  encode(value: object, buf: Buffer, view: DataView, at: number, end: number): number {
    this.#buf = buf;
    this.#view = view;
    this.#end = end;
    this.#epoch++;
    this.#nDefs = 0;
    const gap = this.#selfContained ? this.#defBytes : 0;
    let pos: number;
    try {
      this.#room(at, gap);
      pos = this.#record(value as Record<string, unknown>, at + gap, 0);
      if (this.#nDefs > 0) pos = this.#placeDefinitions(at, at + gap, pos);
    } catch (err) {
      if (err !== GIVE_UP) throw err;
      if (!this.#selfContained)
        for (let i = 0; i < this.#nDefs; i++) (this.#defs[i] as WriterShape).defined = false;
      pos = -1;
    }
    // Not kept past the call: it is fifo memory.
    this.#buf = EMPTY;
    return pos;
  }

  /**
   * Writes `o` as a record at `at`. First the shape last written at this depth is tried, then the
   * shape its keys lead to in the transition tree, each with the shape's own writer (its plan: the
   * keys compared in order, for-in yielding the same internalized strings so that a compare is a
   * pointer test, then each field by the writer chosen for its kind). A shape seen for the first
   * time is written by the generic loop, which defines it and makes its plan.
   */
  #record(o: Record<string, unknown>, at: number, depth: number): number {
    if (depth > MAX_DEPTH) throw GIVE_UP;
    this.#room(at, 3);
    const last = this.#lastAt[depth];
    if (last !== undefined) {
      const pos = this.#asShape(last, o, at, depth);
      if (pos >= 0) return pos;
    }
    let node: ShapeNode | undefined = this.#root;
    let n = 0;
    for (const k in o) {
      node = node.next?.[k];
      if (node === undefined || ++n > MAX_KEYS) break;
    }
    const known = node?.shape;
    if (known != null && known !== last) {
      const pos = this.#asShape(known, o, at, depth);
      if (pos >= 0) {
        this.#lastAt[depth] = known;
        return pos;
      }
    }
    return this.#firstRecord(o, at, depth);
  }

  /** `o` written as `shape` with its plan (or the key-by-key loop); -1 when the keys differ. */
  #asShape(shape: WriterShape, o: Record<string, unknown>, at: number, depth: number): number {
    let pos: number;
    const plan = shape.plan;
    if (plan !== null) {
      pos = plan(o, at + 3, depth);
      if (pos < 0) return -1;
    } else {
      const keys = shape.keys;
      let i = 0;
      pos = at + 3;
      for (const k in o) {
        if (k !== keys[i]) return -1;
        i++;
        pos = this.#value(o[k], pos, depth);
      }
      if (i !== keys.length) return -1;
    }
    this.#use(shape);
    this.#buf[at] = SHAPE_MARK;
    this.#view.setUint16(at + 1, shape.id);
    this.#lastShape = shape;
    return pos;
  }

  /** The generic loop: each key moves down the transition tree and its value is written at once. */
  #firstRecord(o: Record<string, unknown>, at: number, depth: number): number {
    let pos = at + 3;
    let node = this.#root;
    let n = 0;
    const values: unknown[] = [];
    for (const k in o) {
      let next = node.next?.[k];
      if (next === undefined) {
        if (++n > MAX_KEYS) throw GIVE_UP;
        if (node.next === null) node.next = Object.create(null) as Record<string, ShapeNode>;
        next = { next: null, shape: null };
        node.next[k] = next;
      } else if (++n > MAX_KEYS) throw GIVE_UP;
      node = next;
      const v = o[k];
      values.push(v);
      pos = this.#value(v, pos, depth);
    }
    let shape = node.shape;
    if (shape === null) {
      if (this.#count >= MAX_SHAPES) throw GIVE_UP;
      const keys: string[] = [];
      for (const k in o) {
        if (Buffer.byteLength(k) > MAX_KEY_BYTES) throw GIVE_UP;
        keys.push(k);
      }
      shape = { id: this.#count++, keys, defined: false, mark: 0, def: null, plan: null };
      shape.plan = this.#planFor(keys, values);
      node.shape = shape;
    }
    this.#use(shape);
    this.#lastAt[depth] = shape;
    this.#lastShape = shape;
    this.#buf[at] = SHAPE_MARK;
    this.#view.setUint16(at + 1, shape.id);
    return pos;
  }

  /**
   * A shape's plan: a writer per field chosen by the kind of the value it had when the shape was
   * first seen (each falls back to the generic #value for a value of another kind), called in
   * order by a function made for this shape (see compilePlan).
   */
  #planFor(keys: string[], values: unknown[]): ShapePlan | null {
    if (keys.length > MAX_PLAN_KEYS || keys.length !== values.length || this.#plans >= MAX_PLANS) return null;
    this.#plans++;
    return compilePlan(
      keys,
      values.map((v) => this.#fieldWriter(v)),
    );
  }

  #fieldWriter(sample: unknown): FieldWriter {
    switch (typeof sample) {
      case 'number':
        return (sample | 0) === sample ? this.#intField() : this.#floatField();
      case 'string':
        return this.#stringField();
      case 'object':
        if (Array.isArray(sample)) {
          return typeof sample[0] === 'number' ? this.#numbersField() : this.#value.bind(this);
        }
        if (sample !== null) return this.#recordField();
        break;
    }
    return (v, pos, depth) => this.#value(v, pos, depth);
  }

  /**
   * A number field that first held an int32 (an id, a count): its own closure, so that its feedback
   * is of integers only (every number field shared one closure site, and with it the feedback of
   * floats and integers alike), the common encodings written in place. Any other value goes as
   * #value writes it: the bytes are the same as #number's for every number.
   */
  #intField(): FieldWriter {
    return (v, pos, depth) => {
      if (typeof v !== 'number' || (v | 0) !== v) return this.#value(v, pos, depth);
      const buf = this.#buf;
      if (v >= -32 && v <= 127) {
        if (pos >= this.#end) throw GIVE_UP;
        buf[pos] = v & 0xff;
        return pos + 1;
      }
      if (pos + 5 > this.#end) throw GIVE_UP;
      buf[pos] = 0xd2;
      this.#view.setInt32(pos + 1, v);
      return pos + 5;
    };
  }

  /** A number field that first held a float64 (a timestamp in ms, a measurement): as #intField. */
  #floatField(): FieldWriter {
    return (v, pos, depth) => {
      if (typeof v !== 'number' || (v | 0) === v) return this.#value(v, pos, depth);
      if (pos + 9 > this.#end) throw GIVE_UP;
      this.#buf[pos] = 0xcb;
      this.#view.setFloat64(pos + 1, v);
      return pos + 9;
    };
  }

  /**
   * A string field: the bytes of its last short ASCII string are kept, so that the same string again
   * (a name, a kind, a unit: usually the very same string object) is a compare and a copy of bytes.
   */
  #stringField(): FieldWriter {
    let last = '';
    // The fixstr's bytes (its type byte first) as little-endian words, written a word at a time:
    // the last word may spill up to 3 bytes past the string, which the next field overwrites (or
    // which lie past the body, before `#end`).
    const bytes = new Uint8Array(36);
    const bytesView = new DataView(bytes.buffer);
    const words = new Uint32Array(9);
    let n = -1;
    let nWords = 0;
    return (v, pos, depth) => {
      if (typeof v !== 'string') return this.#value(v, pos, depth);
      if (v === last && n >= 0) {
        if (pos + 4 * nWords <= this.#end) {
          const view = this.#view;
          for (let i = 0; i < nWords; i++) view.setUint32(pos + 4 * i, words[i] as number, true);
        } else {
          // Room for the string but not for the spill: byte by byte.
          if (pos + 1 + n > this.#end) throw GIVE_UP;
          const buf = this.#buf;
          for (let i = 0; i <= n; i++) buf[pos + i] = bytes[i] as number;
        }
        return pos + 1 + n;
      }
      const end = this.#string(v, pos);
      const len = end - pos - 1;
      // Kept only when it went as a fixstr of one byte per character (ASCII).
      if (len === v.length && len < 32) {
        const buf = this.#buf;
        bytes.fill(0);
        for (let i = 0; i <= len; i++) bytes[i] = buf[pos + i] as number;
        last = v;
        n = len;
        nWords = (len + 4) >>> 2;
        // Read as little-endian, written as little-endian: the same bytes on any platform.
        for (let i = 0; i < nWords; i++) words[i] = bytesView.getUint32(4 * i, true);
      }
      return end;
    };
  }

  /** An array field whose elements were numbers: small integers are written in one tight loop. */
  #numbersField(): FieldWriter {
    return (v, pos, depth) => {
      if (!Array.isArray(v)) return this.#value(v, pos, depth);
      if (depth >= MAX_DEPTH) throw GIVE_UP;
      const n = v.length;
      if (n >= 16) return this.#array(v, pos, depth);
      const end = this.#end;
      if (pos + 1 + n > end) throw GIVE_UP;
      const buf = this.#buf;
      buf[pos++] = 0x90 | n;
      for (let i = 0; i < n; i++) {
        const x = v[i];
        if (typeof x === 'number' && x >= -32 && x <= 127 && Number.isInteger(x)) {
          if (pos >= end) throw GIVE_UP;
          buf[pos++] = x & 0xff;
        } else {
          if (x === undefined && !(i in v)) throw GIVE_UP;
          pos = this.#value(x, pos, depth + 1);
        }
      }
      return pos;
    };
  }

  /** A field holding records: the shape it held last is tried first (fields keep their shape). */
  #recordField(): FieldWriter {
    let held: WriterShape | null = null;
    return (v, pos, depth) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return this.#value(v, pos, depth);
      const proto = Object.getPrototypeOf(v);
      if (proto !== OBJECT_PROTO && proto !== null) throw GIVE_UP;
      const o = v as Record<string, unknown>;
      if (held !== null && depth < MAX_DEPTH) {
        this.#room(pos, 3);
        const end = this.#asShape(held, o, pos, depth + 1);
        if (end >= 0) return end;
      }
      const end = this.#record(o, pos, depth + 1);
      held = this.#lastShape;
      return end;
    };
  }

  /** The body must define `shape`: always in self-contained mode (once per body), else once. */
  #use(shape: WriterShape): void {
    if (this.#selfContained) {
      shape.defined = true;
      if (shape.mark === this.#epoch) return;
      shape.mark = this.#epoch;
    } else {
      if (shape.defined) return;
      shape.defined = true;
    }
    this.#defs[this.#nDefs++] = shape;
  }

  /**
   * Writes the definitions of the shapes this body used first at `at`, before the value that was
   * written at [valueAt, end); the value moves only when they do not take exactly the room left
   * for them (channels: a new shape, rare; topics: shapes other than the last body's).
   */
  #placeDefinitions(at: number, valueAt: number, end: number): number {
    let size = 0;
    for (let i = 0; i < this.#nDefs; i++) size += definitionOf(this.#defs[i] as WriterShape).length;
    const buf = this.#buf;
    const shift = at + size - valueAt;
    if (shift === 0 && this.#reuseDefinitions && this.#samePlaced(buf, at)) return end;
    if (shift !== 0) {
      if (shift > 0) this.#room(end, shift);
      buf.copyWithin(valueAt + shift, valueAt, end);
    }
    let p = at;
    for (let i = 0; i < this.#nDefs; i++) {
      const def = definitionOf(this.#defs[i] as WriterShape);
      buf.set(def, p);
      p += def.length;
    }
    if (this.#selfContained) this.#defBytes = size;
    if (this.#reuseDefinitions) {
      this.#placedBuf = buf;
      this.#placedAt = at;
      for (let i = 0; i < this.#nDefs; i++) this.#placed[i] = this.#defs[i] as WriterShape;
      this.#placedCount = this.#nDefs;
    }
    return end + shift;
  }

  /** This body's definitions are the last body's, already at `at` of `buf` (reuseDefinitions). */
  #samePlaced(buf: Buffer, at: number): boolean {
    if (buf !== this.#placedBuf || at !== this.#placedAt || this.#nDefs !== this.#placedCount) return false;
    for (let i = 0; i < this.#nDefs; i++) if (this.#defs[i] !== this.#placed[i]) return false;
    return true;
  }

  #value(v: unknown, pos: number, depth: number): number {
    const buf = this.#buf;
    switch (typeof v) {
      case 'number':
        return this.#number(v, pos);
      case 'string':
        return this.#string(v, pos);
      case 'boolean':
        this.#room(pos, 1);
        buf[pos] = v ? 0xc3 : 0xc2;
        return pos + 1;
      case 'undefined':
        this.#room(pos, 3);
        buf[pos] = 0xd4;
        buf[pos + 1] = 0;
        buf[pos + 2] = 0;
        return pos + 3;
      case 'object': {
        if (v === null) {
          this.#room(pos, 1);
          buf[pos] = 0xc0;
          return pos + 1;
        }
        if (Array.isArray(v)) return this.#array(v, pos, depth);
        const proto = Object.getPrototypeOf(v);
        if (proto === OBJECT_PROTO || proto === null)
          return this.#record(v as Record<string, unknown>, pos, depth + 1);
        break;
      }
    }
    // Only msgpackr carries this (Date, Map, Buffer, BigInt, a class instance, ...).
    throw GIVE_UP;
  }

  #number(v: number, pos: number): number {
    const buf = this.#buf;
    if (Number.isInteger(v) && v >= -32 && v <= 127) {
      this.#room(pos, 1);
      buf[pos] = v & 0xff;
      return pos + 1;
    }
    if ((v | 0) === v) {
      this.#room(pos, 5);
      buf[pos] = 0xd2;
      this.#view.setInt32(pos + 1, v);
      return pos + 5;
    }
    this.#room(pos, 9);
    buf[pos] = 0xcb;
    this.#view.setFloat64(pos + 1, v);
    return pos + 9;
  }

  #array(a: unknown[], pos: number, depth: number): number {
    if (depth >= MAX_DEPTH) throw GIVE_UP;
    const n = a.length;
    if (n < 16) {
      this.#room(pos, 1);
      this.#buf[pos] = 0x90 | n;
      pos += 1;
    } else if (n < 0x10000) {
      this.#room(pos, 3);
      this.#buf[pos] = 0xdc;
      this.#view.setUint16(pos + 1, n);
      pos += 3;
    } else {
      this.#room(pos, 5);
      this.#buf[pos] = 0xdd;
      this.#view.setUint32(pos + 1, n);
      pos += 5;
    }
    for (let i = 0; i < n; i++) {
      // Holes and extra properties are msgpackr's to carry.
      if (!(i in a)) throw GIVE_UP;
      pos = this.#value(a[i], pos, depth + 1);
    }
    return pos;
  }

  #string(s: string, pos: number): number {
    const n = s.length;
    const buf = this.#buf;
    if (n < 32) {
      this.#room(pos, 1 + n);
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[pos + 1 + i] = c;
      }
      if (i === n) {
        buf[pos] = 0xa0 | n;
        return pos + 1 + n;
      }
    }
    // Any length, any characters: the UTF-8 length first (at most 3 bytes per UTF-16 unit).
    const max = 3 * n;
    const head = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
    this.#room(pos, head + max);
    const len = buf.write(s, pos + head, max, 'utf8');
    if (head === 1) buf[pos] = 0xa0 | len;
    else if (head === 2) {
      buf[pos] = 0xd9;
      buf[pos + 1] = len;
    } else if (head === 3) {
      buf[pos] = 0xda;
      this.#view.setUint16(pos + 1, len);
    } else {
      buf[pos] = 0xdb;
      this.#view.setUint32(pos + 1, len);
    }
    return pos + head + len;
  }

  #room(pos: number, n: number): number {
    if (pos + n > this.#end) throw GIVE_UP;
    return pos;
  }
}

/** `shape`'s definition: 0xc1, u16be(0x8000 | id), the key count, each key's length and bytes. */
function definitionOf(shape: WriterShape): Buffer {
  if (shape.def !== null) return shape.def;
  const keys = shape.keys.map((k) => Buffer.from(k, 'utf8'));
  const def = Buffer.alloc(4 + keys.reduce((n, k) => n + 1 + k.length, 0));
  def[0] = SHAPE_MARK;
  def.writeUInt16BE(DEF_FLAG | shape.id, 1);
  def[3] = keys.length;
  let p = 4;
  for (const k of keys) {
    def[p] = k.length;
    k.copy(def, p + 1);
    p += 1 + k.length;
  }
  shape.def = def;
  return def;
}

let planSerial = 0;

/**
 * Makes a shape's plan: a function that checks `o`'s keys against the shape's (for-in, in order)
 * and then calls each field's writer with `o[k_i]`. The source depends only on the key count and a
 * serial number (so that each shape's function has feedback of its own, its call sites monomorphic
 * and inlined): keys and writers are arguments, never text. Keys are the sender's own, but are
 * treated as data all the same.
 */
function compilePlan(keys: string[], writers: FieldWriter[]): ShapePlan {
  const n = keys.length;
  const params = ['keys'];
  const calls: string[] = [];
  for (let i = 0; i < n; i++) {
    params.push(`w${i}`, `k${i}`);
    calls.push(`pos = w${i}(o[k${i}], pos, depth);`);
  }
  const source = `// shape plan ${planSerial++}
return function plan(o, pos, depth) {
  let i = 0;
  for (const k in o) { if (k !== keys[i]) return -1; i++; }
  if (i !== ${n}) return -1;
  ${calls.join('\n  ')}
  return pos;
};`;
  const args: unknown[] = [keys];
  for (let i = 0; i < n; i++) args.push(writers[i], keys[i]);
  return new Function(...params, source)(...args) as ShapePlan;
}

// ---------------------------------------------------------------- reader

/** Reads one field's value; its own string cache makes a repeated string cost a compare. */
type FieldReader = () => unknown;

interface ReaderShape {
  keys: string[];
  /**
   * Builds the next object of this shape from the bytes (see compileBuilder); null until the first
   * record of the shape was read, which chooses each field's reader by the kind of value it held.
   */
  build: (() => unknown) | null;
  /** The definition's bytes after the id (self-contained mode compares them to reuse the shape). */
  def: Uint8Array;
  /** `def` as little-endian u32 words (its whole words; the last 0-3 bytes are compared alone). */
  defWords: number[];
  /** Self-contained mode: the decode whose body defined it last. */
  epoch: number;
}

export class ShapeReader {
  /**
   * Self-contained: each body defines the shapes it uses (see ShapeWriter); a definition whose
   * bytes are those seen before for its id reuses what was compiled then, else replaces it, and a
   * record may only use shapes its own body defined.
   */
  readonly #selfContained: boolean;
  #epoch = 0;
  #shapes: (ReaderShape | undefined)[] = [];
  #buf: Uint8Array = new Uint8Array(0);
  #view: DataView = new DataView(new ArrayBuffer(0));
  #p = 0;
  #end = 0;
  #depth = 0;
  readonly #readAny: FieldReader = () => this.#value();
  /** Builders compiled by this reader (bounded: a peer may define shape after shape). */
  #builders = 0;
  readonly #budget: CompileBudget;

  /** `budget`: shared with the readers that replace this one after a RESET (a channel's). */
  constructor(opts: { selfContained?: boolean; budget?: CompileBudget } = {}) {
    this.#selfContained = opts.selfContained === true;
    this.#budget = opts.budget ?? { compiled: 0 };
  }

  /** Decodes the shape record at [start, end) of `buf`, which must be exactly one value. */
  decode(buf: Uint8Array, start: number, end: number): unknown {
    if (buf !== this.#buf) {
      // Readers decode from the same fifo views over and over: one DataView per view.
      this.#buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.length);
      this.#view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    }
    this.#p = start;
    this.#end = end;
    this.#depth = 0;
    const view = this.#view;
    const epoch = ++this.#epoch;
    if (this.#only !== null) {
      const v = this.#decodeLikeLast(start, end, epoch);
      if (v !== NOT_LIKE_LAST) return v;
      this.#p = start;
    }
    this.#only = null;
    /** Definitions in this body, and the id of the last. */
    let defs = 0;
    let lastId = -1;
    while (
      end - this.#p >= 3 &&
      this.#buf[this.#p] === SHAPE_MARK &&
      view.getUint16(this.#p + 1) & DEF_FLAG
    ) {
      const id = view.getUint16(this.#p + 1) & ~DEF_FLAG;
      if (id >= MAX_SHAPES) throw new ShapeError(`shape id ${id} out of range`);
      this.#p += 3;
      const known = this.#shapes[id];
      if (!this.#selfContained) {
        if (known !== undefined) throw new ShapeError(`shape ${id} defined twice`);
      } else if (known !== undefined && this.#same(known)) {
        this.#p += known.def.length;
        known.epoch = epoch;
        defs++;
        lastId = id;
        continue;
      }
      const shape = this.#define();
      shape.epoch = epoch;
      this.#shapes[id] = shape;
      defs++;
      lastId = id;
    }
    // A topic's common body: one definition, then one record of that shape (see #decodeLikeLast).
    const one =
      this.#selfContained &&
      defs === 1 &&
      end - this.#p >= 3 &&
      this.#buf[this.#p] === SHAPE_MARK &&
      view.getUint16(this.#p + 1) === lastId;
    const v = this.#value();
    if (this.#p !== end) throw new ShapeError(`${end - this.#p} bytes after the value`);
    if (one) {
      this.#only = this.#shapes[lastId] ?? null;
      this.#onlyId = lastId;
    }
    return v;
  }

  /**
   * Self-contained mode: the last body, decoded whole, was one definition and one record of that
   * shape (a topic's flat messages, nearly all of them). A body with the same definition bytes and
   * a record of the same id is decoded here in fewer steps, with every check decode() makes on
   * such a body; anything else returns NOT_LIKE_LAST for decode() to take it from the start.
   */
  #only: ReaderShape | null = null;
  #onlyId = -1;

  #decodeLikeLast(start: number, end: number, epoch: number): unknown {
    const only = this.#only as ReaderShape;
    const id = this.#onlyId;
    const buf = this.#buf;
    const view = this.#view;
    if (
      end - start < 3 ||
      buf[start] !== SHAPE_MARK ||
      view.getUint16(start + 1) !== (DEF_FLAG | id) ||
      this.#shapes[id] !== only
    ) {
      return NOT_LIKE_LAST;
    }
    this.#p = start + 3;
    if (!this.#same(only)) return NOT_LIKE_LAST;
    const q = start + 3 + only.def.length;
    const build = only.build;
    if (build === null || end - q < 3 || buf[q] !== SHAPE_MARK || view.getUint16(q + 1) !== id) {
      return NOT_LIKE_LAST;
    }
    only.epoch = epoch;
    this.#p = q + 3;
    // As inside #record: this record is depth 1.
    this.#depth = 1;
    if (only.keys.length > end - this.#p) throw new ShapeError('truncated record');
    const v = build();
    if (this.#p !== end) throw new ShapeError(`${end - this.#p} bytes after the value`);
    return v;
  }

  /**
   * decode() for the common body, in fewer steps: one record of a shape already read (no
   * definitions; channels only). Anything else goes to decode(). Every check decode() makes on such
   * a body is made here too.
   */
  decodeRecord(buf: Uint8Array, start: number, end: number): unknown {
    if (this.#selfContained || buf !== this.#buf || end - start < 3 || buf[start] !== SHAPE_MARK) {
      return this.decode(buf, start, end);
    }
    // A definition's id has DEF_FLAG set: above MAX_SHAPES, so it goes to decode() too.
    const raw = this.#view.getUint16(start + 1);
    const shape = raw < MAX_SHAPES ? this.#shapes[raw] : undefined;
    const build = shape === undefined ? null : shape.build;
    if (shape === undefined || build === null) return this.decode(buf, start, end);
    this.#p = start + 3;
    this.#end = end;
    // As inside #record: this record is depth 1.
    this.#depth = 1;
    if (shape.keys.length > end - this.#p) throw new ShapeError('truncated record');
    const v = build();
    if (this.#p !== end) throw new ShapeError(`${end - this.#p} bytes after the value`);
    return v;
  }

  #need(n: number): number {
    const p = this.#p;
    if (n > this.#end - p) throw new ShapeError(`truncated: ${n} bytes needed, ${this.#end - p} left`);
    return p;
  }

  #value(): unknown {
    const p = this.#need(1);
    const b = this.#buf[p] as number;
    if (b < 0x80) {
      this.#p = p + 1;
      return b;
    }
    if (b >= 0xe0) {
      this.#p = p + 1;
      return b - 0x100;
    }
    if ((b & 0xe0) === 0xa0) return this.#str(p + 1, b & 0x1f);
    if ((b & 0xf0) === 0x90) {
      this.#p = p + 1;
      return this.#array(b & 0x0f);
    }
    switch (b) {
      case SHAPE_MARK:
        return this.#record();
      case 0xc0:
        this.#p = p + 1;
        return null;
      case 0xc2:
        this.#p = p + 1;
        return false;
      case 0xc3:
        this.#p = p + 1;
        return true;
      case 0xd4:
        this.#need(3);
        if (this.#buf[p + 1] !== 0 || this.#buf[p + 2] !== 0)
          throw new ShapeError('unknown fixext in a shape record');
        this.#p = p + 3;
        return undefined;
      case 0xd2:
        this.#need(5);
        this.#p = p + 5;
        return this.#view.getInt32(p + 1);
      case 0xcb:
        this.#need(9);
        this.#p = p + 9;
        return this.#view.getFloat64(p + 1);
      case 0xd9:
        this.#need(2);
        return this.#str(p + 2, this.#buf[p + 1] as number);
      case 0xda:
        this.#need(3);
        return this.#str(p + 3, this.#view.getUint16(p + 1));
      case 0xdb:
        this.#need(5);
        return this.#str(p + 5, this.#view.getUint32(p + 1));
      case 0xdc:
        this.#need(3);
        this.#p = p + 3;
        return this.#array(this.#view.getUint16(p + 1));
      case 0xdd:
        this.#need(5);
        this.#p = p + 5;
        return this.#array(this.#view.getUint32(p + 1));
      default:
        throw new ShapeError(`byte 0x${b.toString(16)} is not allowed in a shape record`);
    }
  }

  #str(at: number, n: number): string {
    this.#p = at;
    this.#need(n);
    this.#p = at + n;
    return (this.#buf as Buffer).toString('utf8', at, at + n);
  }

  #array(n: number): unknown[] {
    // Every element takes at least a byte: a count beyond the bytes left is a lie.
    if (n > this.#end - this.#p) throw new ShapeError(`an array of ${n} in ${this.#end - this.#p} bytes`);
    if (++this.#depth > MAX_DEPTH) throw new ShapeError('nested too deep');
    const a = new Array(n);
    for (let i = 0; i < n; i++) a[i] = this.#value();
    this.#depth--;
    return a;
  }

  #record(): unknown {
    const p = this.#need(3);
    const raw = this.#view.getUint16(p + 1);
    this.#p = p + 3;
    if (raw & DEF_FLAG) throw new ShapeError('a shape definition inside a value');
    if (raw >= MAX_SHAPES) throw new ShapeError(`shape id ${raw} out of range`);
    const shape = this.#shapes[raw];
    if (shape === undefined || (this.#selfContained && shape.epoch !== this.#epoch)) {
      throw new ShapeError(`shape ${raw} used before its definition`);
    }
    if (++this.#depth > MAX_DEPTH) throw new ShapeError('nested too deep');
    // At least a byte per field.
    if (shape.keys.length > this.#end - this.#p) throw new ShapeError('truncated record');
    const build = shape.build;
    const v = build !== null ? build() : this.#firstRecord(shape);
    this.#depth--;
    return v;
  }

  /** The bytes at the position are `def`'s (within the body). */
  #same(shape: ReaderShape): boolean {
    const def = shape.def;
    const p = this.#p;
    const n = def.length;
    if (n > this.#end - p) return false;
    // Four bytes per compare: every message of a topic carries its definitions.
    const words = shape.defWords;
    const view = this.#view;
    for (let i = 0; i < words.length; i++) if (view.getUint32(p + 4 * i, true) !== words[i]) return false;
    const buf = this.#buf;
    for (let i = words.length * 4; i < n; i++) if (buf[p + i] !== def[i]) return false;
    return true;
  }

  /**
   * Reads a definition from a private copy of the bytes (what the keys were read from is then
   * exactly what `def` holds, even when the source changes under us: a topic's ring).
   */
  #define(): ReaderShape {
    const start = this.#p;
    const copy = Buffer.from(this.#buf.subarray(start, Math.min(this.#end, start + MAX_DEFINITION_BYTES)));
    if (copy.length < 1) throw new ShapeError('truncated definition');
    const n = copy[0] as number;
    if (n > MAX_KEYS) throw new ShapeError(`a shape of ${n} keys`);
    let q = 1;
    const keys: string[] = [];
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      if (q >= copy.length) throw new ShapeError('truncated definition');
      const len = copy[q] as number;
      if (len > copy.length - q - 1) throw new ShapeError('truncated definition');
      let k = copy.toString('utf8', q + 1, q + 1 + len);
      q += 1 + len;
      if (k === '__proto__') k = '__proto_';
      if (seen.has(k)) throw new ShapeError(`key ${JSON.stringify(k)} twice in a shape`);
      seen.add(k);
      keys.push(internalized(k));
    }
    this.#p = start + q;
    const def = Buffer.from(copy.subarray(0, q));
    const defWords: number[] = [];
    for (let i = 0; i + 4 <= def.length; i += 4) defWords.push(def.readUInt32LE(i));
    return { keys, build: null, def, defWords, epoch: 0 };
  }

  /**
   * The first record of a shape, read field by field; then each field gets a reader for the kind
   * of value it held (numbers, strings, arrays of small integers; anything else the generic one),
   * and the shape a builder calling them in order. Readers check every byte whatever they expect,
   * and read anything else through #value: the kinds only choose the fast path.
   */
  #firstRecord(shape: ReaderShape): unknown {
    const keys = shape.keys;
    const readers: FieldReader[] = [];
    const o: Record<string, unknown> = {};
    for (const k of keys) {
      const p = this.#p;
      const b = p < this.#end ? (this.#buf[p] as number) : -1;
      const r =
        b < 0
          ? this.#readAny
          : (b & 0xe0) === 0xa0
            ? this.#stringReader()
            : b < 0x80 || b >= 0xe0 || b === 0xd2 || b === 0xcb
              ? this.#numberReader()
              : (b & 0xf0) === 0x90
                ? this.#smallIntsReader()
                : this.#readAny;
      readers.push(r);
      o[k] = r();
    }
    if (this.#builders < MAX_BUILDERS && this.#budget.compiled < MAX_BUILDERS_SHARED) {
      this.#builders++;
      this.#budget.compiled++;
      shape.build = compileBuilder(keys, readers);
    } else {
      const generic = keys.map(() => this.#readAny);
      shape.build = () => {
        const x: Record<string, unknown> = {};
        for (let i = 0; i < keys.length; i++) x[keys[i] as string] = (generic[i] as FieldReader)();
        return x;
      };
    }
    return o;
  }

  #numberReader(): FieldReader {
    return () => {
      const p = this.#p;
      const end = this.#end;
      if (p < end) {
        const b = this.#buf[p] as number;
        if (b < 0x80) {
          this.#p = p + 1;
          return b;
        }
        if (b === 0xcb && end - p >= 9) {
          this.#p = p + 9;
          return this.#view.getFloat64(p + 1);
        }
        if (b === 0xd2 && end - p >= 5) {
          this.#p = p + 5;
          return this.#view.getInt32(p + 1);
        }
      }
      return this.#value();
    };
  }

  /** Arrays of up to 4 small integers come out packed, without a read per element. */
  #smallIntsReader(): FieldReader {
    return () => {
      const p = this.#p;
      const buf = this.#buf;
      const b = p < this.#end ? (buf[p] as number) : 0;
      const n = b - 0x90;
      if (n >= 0 && n <= 4 && this.#end - p > n && this.#depth < MAX_DEPTH) {
        // Only positive fixints (< 0x80), and only bytes inside the array are read (n bounds them).
        if (n === 3) {
          const a = buf[p + 1] as number;
          const c = buf[p + 2] as number;
          const d = buf[p + 3] as number;
          if ((a | c | d) < 0x80) {
            this.#p = p + 4;
            return [a, c, d];
          }
        } else if (n === 2) {
          const a = buf[p + 1] as number;
          const c = buf[p + 2] as number;
          if ((a | c) < 0x80) {
            this.#p = p + 3;
            return [a, c];
          }
        } else if (n === 4) {
          const a = buf[p + 1] as number;
          const c = buf[p + 2] as number;
          const d = buf[p + 3] as number;
          const e = buf[p + 4] as number;
          if ((a | c | d | e) < 0x80) {
            this.#p = p + 5;
            return [a, c, d, e];
          }
        } else if (n === 1) {
          const a = buf[p + 1] as number;
          if (a < 0x80) {
            this.#p = p + 2;
            return [a];
          }
        } else {
          this.#p = p + 1;
          return [];
        }
      }
      return this.#value();
    };
  }

  /** A field's reader: strings equal (byte for byte) to the field's previous one are reused. */
  #stringReader(): FieldReader {
    let cached = '';
    let cachedBytes: Uint8Array | null = null;
    return () => {
      const p = this.#p;
      if (p >= this.#end) throw new ShapeError('truncated record');
      const b = this.#buf[p] as number;
      if ((b & 0xe0) !== 0xa0) return this.#readAny();
      const n = b & 0x1f;
      const at = p + 1;
      if (n > this.#end - at) throw new ShapeError('truncated string');
      const buf = this.#buf;
      if (cachedBytes !== null && cachedBytes.length === n) {
        let i = 0;
        while (i < n && buf[at + i] === cachedBytes[i]) i++;
        if (i === n) {
          this.#p = at + n;
          return cached;
        }
      }
      if (n > CACHE_STRING_BYTES || n === 0) return this.#str(at, n);
      // Copied first, then decoded from the copy: the fifo's bytes change once the frame is consumed
      // (and a topic's publisher may be overwriting them as we read), so the string cached must be
      // the one its cached bytes say.
      if (cachedBytes === null || cachedBytes.length !== n) cachedBytes = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) cachedBytes[i] = buf[at + i] as number;
      this.#p = at + n;
      cached = (cachedBytes as Buffer).toString('utf8', 0, n);
      return cached;
    };
  }
}

/**
 * The same string, internalized (a property name of an object: Object.keys hands back the one V8
 * keeps in its string table). A key decoded from bytes is a fresh string; every store with it
 * would first look it up there (a 4-field record decoded ~35% slower, measured under load).
 */
function internalized(k: string): string {
  return Object.keys({ [k]: 0 })[0] ?? k;
}

let builderSerial = 0;

/**
 * Builds each object of a shape with one hidden class: `o = {}`, then `o[k0] = r0(); o[k1] = ...`
 * in key order, compiled once per shape so that every store site sees one key (a monomorphic store,
 * as fast as an object literal) and every call one reader (inlined). The generated source depends
 * only on the number of keys and a serial number (each shape's builder then has feedback of its
 * own): the keys and readers are the arguments of the compiled function, never part of its text
 * (no code is ever built from bytes a peer sent). `__proto__` never reaches here (renamed): a store
 * would set the prototype.
 */
function compileBuilder(keys: string[], readers: FieldReader[]): () => unknown {
  if (keys.length === 0) return () => ({});
  const n = keys.length;
  const params: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < n; i++) {
    params.push(`k${i}`, `r${i}`);
    stores.push(`o[k${i}] = r${i}();`);
  }
  const args: unknown[] = [];
  for (let i = 0; i < n; i++) args.push(keys[i], readers[i]);
  const make = new Function(
    ...params,
    `// shape builder ${builderSerial++}\nreturn () => { const o = {}; ${stores.join(' ')} return o; };`,
  ) as (...a: unknown[]) => () => unknown;
  return make(...args);
}
