import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createValueDecoder, ValueEncoder } from './message-values.js';
import {
  type CompileBudget,
  MAX_BUILDERS_SHARED,
  MAX_SHAPES,
  SHAPE_MARK,
  ShapeError,
  ShapeReader,
  ShapeWriter,
} from './shape-codec.js';

/** Values of the kinds shape records carry, nested; keys include awkward ones. */
const key = fc.oneof(
  fc.constantFrom('id', 'name', 'ts', 'vals', '', 'constructor', 'toString', '__proto__', 'ü', '日本'),
  fc.string({ maxLength: 12 }),
  fc.string({ unit: 'grapheme', maxLength: 6 }),
);
const plain = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.integer(),
    fc.integer({ min: -40, max: 140 }),
    fc.double(),
    fc.string(),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ minLength: 200, maxLength: 70_000, unit: 'grapheme-ascii' }),
  ),
  node: fc.oneof(
    { depthSize: 'small' },
    tie('leaf'),
    fc.array(tie('node'), { maxLength: 20 }),
    fc.dictionary(key, tie('node'), { maxKeys: 6 }),
  ),
}));
const record = fc.dictionary(key, plain.node, { maxKeys: 8 });
/** Values a shape writer must hand to msgpackr (nested anywhere). */
const other = fc.oneof(
  fc.date({ noInvalidDate: true }),
  fc.bigInt(),
  fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a)),
  fc.constant(new Map([[1, 2]])),
  fc.constant(new Set(['a'])),
);

/** What a channel delivers: shape records decoded by ShapeReader, the rest by msgpackr, in order. */
function roundTrip(values: unknown[], shapes: boolean): unknown[] {
  const enc = new ValueEncoder();
  if (shapes) enc.enableShapes();
  const dec = createValueDecoder();
  const reader = new ShapeReader();
  const space = Buffer.alloc(1 << 20);
  const out: unknown[] = [];
  for (const v of values) {
    const r = enc.encode(v, 16, space, 0);
    const [buf, start, end] = r === space ? [space, 16, enc.endInSpace] : [Buffer.from(r), 16, r.length];
    if (buf[start] === SHAPE_MARK) out.push(reader.decode(buf, start, end));
    else out.push(dec.unpack(buf, { start, end }));
    // The fifo's bytes are overwritten once consumed: nothing decoded may depend on them.
    buf.fill(0xee, start, end);
  }
  return out;
}

test('arbitrary records round-trip exactly as msgpackr delivers them, in a stream sharing shapes', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(record, record, plain.node), { maxLength: 30 }), (values) => {
      const viaShapes = roundTrip(values, true);
      assert.deepStrictEqual(viaShapes, roundTrip(values, false));
      for (const v of viaShapes) {
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
          assert.equal(Object.getPrototypeOf(v), Object.prototype);
        }
      }
    }),
    { numRuns: 300 },
  );
});

test('records with values only msgpackr carries go to msgpackr whole, and the stream stays in step', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(record, key, other), { minLength: 1, maxLength: 10 }), (cases) => {
      const values: unknown[] = [];
      for (const [r, k, o] of cases) {
        values.push(r, { ...r, [k === '__proto__' ? 'x' : k]: o }, { nested: [r, { deep: o }] }, r);
      }
      assert.deepStrictEqual(roundTrip(values, true), roundTrip(values, false));
    }),
    { numRuns: 150 },
  );
});

test('a __proto__ key arrives renamed and sets no prototype', () => {
  const v = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
  const [got] = roundTrip([v], true) as [Record<string, unknown>];
  assert.equal(Object.getPrototypeOf(got), Object.prototype);
  assert.deepEqual(got['__proto_'], { polluted: true });
  assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
});

test('the common record costs a few bytes after its first use', () => {
  const w = new ShapeWriter();
  const buf = Buffer.alloc(256);
  const view = new DataView(buf.buffer);
  const v = (i: number) => ({ id: i, ts: 1_700_000_000_000 + i, name: 'sensor-7', vals: [1, 2, 3] });
  const first = w.encode(v(1), buf, view, 0, buf.length);
  const second = w.encode(v(2), buf, view, 0, buf.length);
  assert.ok(first > second, `${first} > ${second}`);
  // mark + id, 1 + 9 + 9 + 4 value bytes
  assert.equal(second, 3 + 1 + 9 + 9 + 4);
});

test('no room: the writer gives up and defines nothing, so the next encode still defines', () => {
  const w = new ShapeWriter();
  const small = Buffer.alloc(10);
  assert.equal(w.encode({ a: 'x'.repeat(20) }, small, new DataView(small.buffer), 0, small.length), -1);
  const buf = Buffer.alloc(64);
  const end = w.encode({ a: 'y' }, buf, new DataView(buf.buffer), 0, buf.length);
  assert.ok(end > 0);
  assert.deepEqual(new ShapeReader().decode(buf, 0, end), { a: 'y' });
});

test('past MAX_SHAPES the writer gives up (msgpackr takes those values) and the reader stays bounded', () => {
  const w = new ShapeWriter();
  const buf = Buffer.alloc(128);
  const view = new DataView(buf.buffer);
  const r = new ShapeReader();
  for (let i = 0; i < MAX_SHAPES; i++) {
    const end = w.encode({ [`k${i}`]: i }, buf, view, 0, buf.length);
    assert.ok(end > 0);
    assert.deepEqual(r.decode(buf, 0, end), { [`k${i}`]: i });
  }
  assert.equal(w.encode({ another: 1 }, buf, view, 0, buf.length), -1);
  // Known shapes still go.
  assert.ok(w.encode({ k7: 'again' }, buf, view, 0, buf.length) > 0);
});

/** A valid body for hostile variations: a definition, then a record with nested values. */
function validBody(): Buffer {
  const w = new ShapeWriter();
  const buf = Buffer.alloc(512);
  const end = w.encode(
    { a: 1, b: 'two', c: [1.5, null, true, { d: 'e' }] },
    buf,
    new DataView(buf.buffer),
    0,
    512,
  );
  return buf.subarray(0, end);
}

function throwsShapeError(bytes: Uint8Array, reader = new ShapeReader()): void {
  assert.throws(() => reader.decode(Buffer.from(bytes), 0, bytes.length), ShapeError);
}

test('hostile bodies: truncation, ids used before definition, twice defined, lying counts, trailing bytes', () => {
  const body = validBody();
  for (let n = 0; n < body.length; n++) throwsShapeError(body.subarray(0, n));
  throwsShapeError(Buffer.from([SHAPE_MARK, 0x00, 0x05, 0x01]));
  // Ids at MAX_SHAPES and beyond, in a definition and in a record.
  throwsShapeError(Buffer.from([SHAPE_MARK, 0x90, 0x00, 0x00, SHAPE_MARK, 0x10, 0x00]));
  throwsShapeError(Buffer.from([SHAPE_MARK, 0x8f, 0xff, 0x00, SHAPE_MARK, 0x10, 0x00]));
  const twice = Buffer.from([SHAPE_MARK, 0x80, 0x00, 0x01, 0x01, 0x61, SHAPE_MARK, 0x80, 0x00, 0x00]);
  throwsShapeError(Buffer.concat([twice, Buffer.from([SHAPE_MARK, 0, 0, 1])]));
  // A definition inside a value.
  throwsShapeError(
    Buffer.from([SHAPE_MARK, 0x80, 0x00, 0x01, 0x01, 0x61, SHAPE_MARK, 0, 0, SHAPE_MARK, 0x80, 1, 0]),
  );
  // An array of 2^32-1 in a few bytes, a string longer than what is left.
  const def = [SHAPE_MARK, 0x80, 0x00, 0x01, 0x01, 0x61];
  throwsShapeError(Buffer.from([...def, SHAPE_MARK, 0, 0, 0xdd, 0xff, 0xff, 0xff, 0xff, 1]));
  throwsShapeError(Buffer.from([...def, SHAPE_MARK, 0, 0, 0xdb, 0x7f, 0xff, 0xff, 0xff, 0x61]));
  throwsShapeError(Buffer.from([...def, SHAPE_MARK, 0, 0, 0x01, 0x02]));
  // Bytes outside the subset: msgpack bin, map, ext.
  for (const b of [0xc4, 0x80, 0xde, 0xc7, 0xd5, 0xcf])
    throwsShapeError(Buffer.from([...def, SHAPE_MARK, 0, 0, b, 0, 0, 0]));
  // The same key twice in a shape, and __proto__ next to __proto_ (renamed to the same).
  throwsShapeError(
    Buffer.from([SHAPE_MARK, 0x80, 0x00, 0x02, 0x01, 0x61, 0x01, 0x61, SHAPE_MARK, 0, 0, 1, 2]),
  );
  const p1 = Buffer.from('__proto__');
  const p2 = Buffer.from('__proto_');
  throwsShapeError(
    Buffer.from([SHAPE_MARK, 0x80, 0, 2, p1.length, ...p1, p2.length, ...p2, SHAPE_MARK, 0, 0, 1, 2]),
  );
  // Nesting beyond the bound: arrays in arrays.
  throwsShapeError(Buffer.from([...def, SHAPE_MARK, 0, 0, ...new Array(100).fill(0x91), 1]));
});

test('random and mutated bodies: a value or ShapeError, never another throw, a hang or a huge allocation', () => {
  const body = validBody();
  const check = (bytes: Uint8Array) => {
    const reader = new ShapeReader();
    try {
      reader.decode(Buffer.from(bytes), 0, bytes.length);
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
    }
  };
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (junk) =>
      check(Buffer.concat([Buffer.from([SHAPE_MARK]), junk])),
    ),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(body.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      (edits) => {
        const b = Buffer.from(body);
        for (const [at, v] of edits) b[at] = v;
        check(b);
      },
    ),
    { numRuns: 2000 },
  );
});

/** Self-contained bodies (topics): each defines its shapes; readers may start at any body. */
function selfContainedBodies(values: unknown[]): (Buffer | null)[] {
  const w = new ShapeWriter({ selfContained: true });
  const buf = Buffer.alloc(1 << 20);
  const view = new DataView(buf.buffer);
  return values.map((v) => {
    if (!w.accepts(v)) return null;
    const end = w.encode(v as object, buf, view, 0, buf.length);
    return end < 0 ? null : Buffer.from(buf.subarray(0, end));
  });
}

test('self-contained bodies: a reader starting at any body decodes it and every later one', () => {
  fc.assert(
    fc.property(
      fc.array(fc.oneof(record, record, plain.node), { minLength: 1, maxLength: 20 }),
      fc.nat(),
      (values, from) => {
        const bodies = selfContainedBodies(values);
        const expected = roundTrip(values, false);
        const start = from % values.length;
        const reader = new ShapeReader({ selfContained: true });
        for (let i = start; i < values.length; i++) {
          const b = bodies[i];
          if (b) assert.deepStrictEqual(reader.decode(b, 0, b.length), expected[i]);
        }
      },
    ),
    { numRuns: 200 },
  );
});

test('self-contained with reuseDefinitions (a publisher scratch): the same bytes as without, for any sequence of values', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(record, record, plain.node), { minLength: 1, maxLength: 24 }), (values) => {
      const expected = selfContainedBodies(values);
      const w = new ShapeWriter({ selfContained: true, reuseDefinitions: true });
      const buf = Buffer.alloc(1 << 20);
      const view = new DataView(buf.buffer);
      for (let i = 0; i < values.length; i++) {
        const v = values[i];
        if (!w.accepts(v)) continue;
        const end = w.encode(v as object, buf, view, 0, buf.length);
        const e = expected[i];
        if (e === null || e === undefined) assert.equal(end, -1);
        else assert.deepEqual(buf.subarray(0, end), e);
      }
    }),
    { numRuns: 300 },
  );
});

test('reuseDefinitions: a body with the shapes of the last one does not copy their definitions again (the caller keeps the buffer)', () => {
  const w = new ShapeWriter({ selfContained: true, reuseDefinitions: true });
  const buf = Buffer.alloc(256);
  const view = new DataView(buf.buffer);
  const a = { id: 1, name: 'x' };
  const end = w.encode(a, buf, view, 0, buf.length);
  assert.equal(buf[0], SHAPE_MARK, 'the body starts with its definition');
  // The contract's other side: the caller wrote nothing there meanwhile; here we did, to see it.
  buf[0] = 0;
  assert.equal(w.encode({ id: 2, name: 'y' }, buf, view, 0, buf.length), end);
  assert.equal(buf[0], 0, 'the definition was not copied again');
  // Another shape, then the first again: each is defined anew, and decodes.
  const reader = new ShapeReader({ selfContained: true });
  const b = w.encode({ other: true }, buf, view, 0, buf.length);
  assert.deepEqual(reader.decode(buf, 0, b), { other: true });
  const c = w.encode({ id: 3, name: 'z' }, buf, view, 0, buf.length);
  assert.deepEqual(reader.decode(buf, 0, c), { id: 3, name: 'z' });
  // Another offset in the buffer: copied there.
  const d = w.encode({ id: 4, name: 'w' }, buf, view, 100, buf.length);
  assert.deepEqual(reader.decode(buf, 100, d), { id: 4, name: 'w' });
});

test('self-contained, a body like the last one (one definition, one record): decoded alike, and every lie in it still refused', () => {
  const w = new ShapeWriter({ selfContained: true });
  const buf = Buffer.alloc(256);
  const view = new DataView(buf.buffer);
  const body = (v: object) => Buffer.from(buf.subarray(0, w.encode(v, buf, view, 0, buf.length)));
  const a1 = body({ id: 1, name: 'sensor-7', vals: [1, 2, 3] });
  const a2 = body({ id: 2, name: 'sensor-8', vals: [4, 5] });
  const other = body({ x: 1.5 });
  const reader = new ShapeReader({ selfContained: true });
  const decode = (b: Buffer) => reader.decode(b, 0, b.length);
  assert.deepEqual(decode(a1), { id: 1, name: 'sensor-7', vals: [1, 2, 3] });
  assert.deepEqual(decode(a2), { id: 2, name: 'sensor-8', vals: [4, 5] });
  // The record cut short, one byte too many, and a field's bytes changed into a kind not allowed.
  assert.throws(() => decode(a2.subarray(0, a2.length - 1)), ShapeError);
  assert.throws(() => decode(Buffer.concat([a2, Buffer.from([0])])), ShapeError);
  const bad = Buffer.from(a2);
  bad[bad.length - 3] = 0xc4; // bin8: not in a shape record
  assert.throws(() => decode(bad), ShapeError);
  // The same definition bytes under another id: a definition of its own, as decode() reads it.
  const moved = Buffer.from(a2);
  moved[2] = (moved[2] as number) + 1;
  const q = moved.length - (a2.length - a2.indexOf(0xc1, 3));
  moved[q + 2] = (moved[q + 2] as number) + 1;
  assert.deepEqual(decode(moved), { id: 2, name: 'sensor-8', vals: [4, 5] });
  // A record of a shape this body does not define.
  const stray = Buffer.from(a2);
  stray[q + 2] = (stray[q + 2] as number) + 7;
  assert.throws(() => decode(stray), ShapeError);
  // Other shapes in between, then the first again: all as written.
  assert.deepEqual(decode(other), { x: 1.5 });
  assert.deepEqual(decode(a1), { id: 1, name: 'sensor-7', vals: [1, 2, 3] });
  assert.deepEqual(decode(a2), { id: 2, name: 'sensor-8', vals: [4, 5] });
});

test('self-contained: bodies torn or overwritten mid-read (a lapped topic reader) never poison later decodes', () => {
  fc.assert(
    fc.property(
      fc.array(record, { minLength: 2, maxLength: 12 }),
      fc.array(fc.tuple(fc.nat(), fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      (values, edits) => {
        const bodies = selfContainedBodies(values);
        const expected = roundTrip(values, false);
        const reader = new ShapeReader({ selfContained: true });
        for (let i = 0; i < values.length; i++) {
          const b = bodies[i];
          if (!b) continue;
          // A garbled copy first (as a reader that lost the race would see), then the real one.
          const torn = Buffer.from(b);
          for (const [which, at, v] of edits) if (which % values.length === i) torn[at % torn.length] = v;
          try {
            reader.decode(torn, 0, torn.length);
          } catch (err) {
            if (!(err instanceof ShapeError)) throw err;
          }
          assert.deepStrictEqual(reader.decode(b, 0, b.length), expected[i]);
        }
      },
    ),
    { numRuns: 300 },
  );
});

test('self-contained, in place with little room (a topic ring): never a byte outside [at, end), and what was written decodes', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(record, fc.nat({ max: 120 }), fc.nat({ max: 64 })), { minLength: 1, maxLength: 16 }),
      (steps) => {
        const w = new ShapeWriter({ selfContained: true });
        const reader = new ShapeReader({ selfContained: true });
        const buf = Buffer.alloc(1 << 19, 0xab);
        const view = new DataView(buf.buffer);
        const untouched = (from: number, to: number) =>
          from >= to || buf.subarray(from, to).equals(Buffer.alloc(to - from, 0xab));
        const expected = roundTrip(
          steps.map(([v]) => v),
          false,
        );
        steps.forEach(([v, room, off], i) => {
          const at = 8 * off;
          // Sometimes roomy, often too tight: the writer must give up rather than overrun.
          const end = at + (room === 120 ? 1 << 18 : room);
          const got = w.encode(v, buf, view, at, end);
          assert.ok(
            untouched(0, at) && untouched(Math.min(end, buf.length), buf.length),
            `a byte written outside [${at}, ${end})`,
          );
          if (got >= 0) {
            assert.ok(got <= end);
            assert.deepStrictEqual(reader.decode(buf, at, got), expected[i]);
          }
          buf.fill(0xab, at, Math.min(end, buf.length));
        });
      },
    ),
    { numRuns: 150 },
  );
});

test('self-contained: a record using a shape its own body did not define is refused', () => {
  const w = new ShapeWriter({ selfContained: true });
  const buf = Buffer.alloc(64);
  const end = w.encode({ a: 1 }, buf, new DataView(buf.buffer), 0, 64);
  const r = new ShapeReader({ selfContained: true });
  assert.deepEqual(r.decode(buf, 0, end), { a: 1 });
  // The record alone (its definition cut off): known from before, but not defined in this body.
  throwsShapeError(buf.subarray(end - 4, end), r);
});

/** A field's value of any kind the writers and readers specialise on, or one they must fall back from. */
const fieldValue = fc.oneof(
  fc.integer({ min: -40, max: 140 }),
  fc.integer(),
  fc.double(),
  fc.constantFrom(0, -0, 127, 128, -32, -33, 2 ** 31, -(2 ** 31) - 1, Number.NaN, 1.5),
  fc.constantFrom('sensor-7', '', 'ü', 'x'.repeat(40)),
  fc.string({ maxLength: 40 }),
  fc.array(fc.integer({ min: -40, max: 200 }), { maxLength: 6 }),
  fc.array(fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 3 })), { maxLength: 20 }),
  fc.constantFrom(null, undefined, true, false),
  fc.record({ x: fc.integer(), y: fc.string({ maxLength: 4 }) }),
  fc.record({ x: fc.string({ maxLength: 4 }), z: fc.constant([1, 2, 3]) }),
  other,
);

test('records of one shape whose values change kind: each field writer and reader falls back, values arrive as msgpackr delivers them', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(key, { minLength: 1, maxLength: 6 }),
      fc.array(fc.array(fieldValue, { minLength: 6, maxLength: 6 }), { minLength: 2, maxLength: 40 }),
      (keys, rows) => {
        const values = rows.map((row) => Object.fromEntries(keys.map((k, i) => [k, row[i]])));
        assert.deepStrictEqual(roundTrip(values, true), roundTrip(values, false));
      },
    ),
    { numRuns: 300 },
  );
});

test('the common record, many times: the shape plan and builder give what msgpackr gives', () => {
  const values: unknown[] = [];
  for (let i = 0; i < 2000; i++) {
    values.push({
      id: i * 977 - 500,
      ts: 1_700_000_000_000 + i / 7,
      name: `sensor-${i % 3}`,
      vals: [i % 130, 2, 3],
    });
    if (i % 97 === 0) values.push({ id: 'odd', ts: null, name: 7, vals: [1, -1, 300, 0.5, 'x'] });
  }
  assert.deepStrictEqual(roundTrip(values, true), roundTrip(values, false));
});

test('channel mode in place with little room: never a byte outside [at, end), and the bodies written decode in order', () => {
  const shapes = fc.oneof(
    fc.record({
      id: fc.integer(),
      name: fc.string({ maxLength: 30 }),
      vals: fc.array(fc.integer({ min: -5, max: 200 }), { maxLength: 18 }),
    }),
    fc.record({ a: fieldValue, b: fc.record({ x: fc.integer(), y: fc.string({ maxLength: 4 }) }) }),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(shapes, fc.nat({ max: 80 })), { minLength: 1, maxLength: 30 }), (steps) => {
      const w = new ShapeWriter();
      const reader = new ShapeReader();
      const dec = createValueDecoder();
      const enc = new ValueEncoder();
      const buf = Buffer.alloc(1 << 16, 0xab);
      const view = new DataView(buf.buffer);
      for (const [v, room] of steps) {
        const at = 64;
        const end = at + (room === 80 ? 4096 : room);
        const got = w.encode(v, buf, view, at, end);
        assert.ok(
          buf.subarray(0, at).every((b) => b === 0xab),
          'a byte written before at',
        );
        assert.ok(
          buf.subarray(end).every((b) => b === 0xab),
          'a byte written after end',
        );
        if (got >= 0) {
          // What msgpackr delivers for the value (its own stream, apart).
          const expected = dec.unpack(Buffer.from(enc.encode(v, 0, null, 0)));
          assert.deepStrictEqual(reader.decode(buf, at, got), expected);
        }
        buf.fill(0xab);
      }
    }),
    { numRuns: 200 },
  );
});

test('a repeated string field written word by word: with the room exact or 1-3 bytes over, it fits and writes nothing past the end', () => {
  // The last field is the string: its word-sized stores would spill past the body.
  const v = (i: number) => ({ id: i, ts: 1.7e12 + i, vals: [1, 2, 3], name: 'sensor-7' });
  for (const name of ['sensor-7', 'ab', 'abcdefghijk', '']) {
    const w = new ShapeWriter();
    const reader = new ShapeReader();
    const big = Buffer.alloc(256);
    const bigView = new DataView(big.buffer);
    // The first record defines the shape; the second fills the field's cache; the rest use it.
    for (let i = 0; i < 3; i++) {
      const end = w.encode({ ...v(i), name }, big, bigView, 0, 256);
      assert.deepStrictEqual(reader.decode(big, 0, end), { ...v(i), name });
    }
    const size = w.encode({ ...v(3), name }, big, bigView, 0, 256);
    assert.deepStrictEqual(reader.decode(big, 0, size), { ...v(3), name });
    for (let over = 0; over <= 3; over++) {
      const buf = Buffer.alloc(256, 0xab);
      const at = 8;
      const got = w.encode({ ...v(4), name }, buf, new DataView(buf.buffer), at, at + size + over);
      assert.equal(got, at + size, `room ${size + over}: written whole`);
      assert.ok(
        buf.subarray(at + size + over).every((b) => b === 0xab),
        'a byte written after end',
      );
      assert.deepStrictEqual(reader.decode(buf, at, got), { ...v(4), name });
    }
  }
});

test('hostile records of a shape already read (its builder and field readers in use): a value or ShapeError, never another throw', () => {
  const w = new ShapeWriter();
  const buf = Buffer.alloc(512);
  const view = new DataView(buf.buffer);
  const v = (i: number) => ({
    id: i,
    ts: 1.7e12 + i,
    name: 'sensor-7',
    vals: [1, 2, 3],
    sub: { x: -5, y: 'ü' },
  });
  const firstEnd = w.encode(v(1), buf, view, 0, 512);
  const first = Buffer.from(buf.subarray(0, firstEnd));
  const secondEnd = w.encode(v(200), buf, view, 0, 512);
  const second = Buffer.from(buf.subarray(0, secondEnd));
  const warmed = () => {
    const r = new ShapeReader();
    r.decode(first, 0, first.length);
    return r;
  };
  const r0 = warmed();
  assert.deepStrictEqual(r0.decode(second, 0, second.length), v(200));
  // decodeRecord (what the frame reader calls) from the same buffer as the record before it.
  const both = Buffer.concat([first, second]);
  const r1 = new ShapeReader();
  r1.decode(both, 0, first.length);
  assert.deepStrictEqual(r1.decodeRecord(both, first.length, both.length), v(200));
  for (let n = 0; n < second.length; n++) {
    throwsShapeError(second.subarray(0, n), warmed());
    const r = new ShapeReader();
    r.decode(both, 0, first.length);
    assert.throws(() => r.decodeRecord(both, first.length, first.length + n), ShapeError);
  }
  const reader = warmed();
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(second.length - 1), fc.integer({ min: 0, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.nat(second.length),
      (edits, cut) => {
        const b = Buffer.from(second.subarray(0, Math.max(1, cut)));
        for (const [at, x] of edits) if (at < b.length) b[at] = x;
        try {
          reader.decode(b, 0, b.length);
        } catch (err) {
          if (!(err instanceof ShapeError)) throw err;
        }
        // The same bytes through decodeRecord, in the buffer the reader last read (its fast path).
        const m = Buffer.concat([first, b]);
        const r = new ShapeReader();
        r.decode(m, 0, first.length);
        try {
          r.decodeRecord(m, first.length, m.length);
        } catch (err) {
          if (!(err instanceof ShapeError)) throw err;
        }
      },
    ),
    { numRuns: 3000 },
  );
});

test('readers sharing a budget (a channel through RESETs) stop compiling builders at the shared bound and still decode', () => {
  const budget: CompileBudget = { compiled: 0 };
  const space = Buffer.alloc(1 << 16);
  // Each round is what follows a RESET: a fresh writer and reader, 300 shapes never seen before.
  for (let round = 0; round < 6; round++) {
    const enc = new ValueEncoder();
    enc.enableShapes();
    const reader = new ShapeReader({ budget });
    for (let i = 0; i < 300; i++) {
      const v = { [`a${round}_${i}`]: i, [`b${round}_${i}`]: 'x', n: round };
      const r = enc.encode(v, 0, space, 0);
      assert.equal(r, space);
      assert.equal(space[0], SHAPE_MARK);
      assert.deepEqual(reader.decode(space, 0, enc.endInSpace), v);
    }
  }
  assert.equal(budget.compiled, MAX_BUILDERS_SHARED);
});
