// The control encoder's msgpack writer against msgpackr (the encoder it replaced, and the decoder
// ferryd and the SDK read with): the same bytes for every value a checked message can hold.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr, Unpackr } from 'msgpackr';
import { encodeCtrl, encodeCtrlView } from './codec.js';
import { writeMsgpack } from './msgpack-writer.js';
import { CTRL_SAMPLES } from './samples.js';

const SEED = 0x3a11_0c5e;
// The options the codec used with msgpackr: integers above 2^32 went in as bigints (int64).
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  encodeUndefinedAsNil: false,
});
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });

function msgpackrBytes(value: unknown): Uint8Array {
  const wire = (v: unknown): unknown => {
    if (typeof v === 'number' && v > 0xffff_ffff) return BigInt(v);
    if (Array.isArray(v)) return v.map(wire);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wire(x)]));
    }
    return v;
  };
  return new Uint8Array(packr.pack(wire(value)));
}

// Strings in every header class (fixstr, str8, str16, str32) and with 2-, 3- and 4-byte UTF-8.
const text = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ minLength: 200, maxLength: 300 }),
  fc.constantFrom('', 'é', '\u20ac'.repeat(11), '\u{1f600}'.repeat(8), 'x'.repeat(31), 'x'.repeat(32)),
);
const integer = fc.oneof(
  fc.integer({ min: -0x8000_0000, max: 0xffff_ffff }),
  fc.constantFrom(0, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001),
  fc.integer({ min: 0x1_0000_0000, max: Number.MAX_SAFE_INTEGER }),
);
const scalar = fc.oneof(text, integer, fc.boolean(), fc.constant(null));
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small' }, scalar, fc.array(tie('v'), { maxLength: 20 }), tie('map')),
  map: fc.dictionary(
    fc.string({ minLength: 1, maxLength: 12 }).filter((k) => k !== '__proto__'),
    tie('v'),
    { maxKeys: 20, noNullPrototype: true },
  ),
})).v;

describe('msgpack writer', () => {
  it('writes the bytes msgpackr writes, which msgpackr reads back to the same value', () => {
    fc.assert(
      fc.property(value, (v) => {
        const ours = writeMsgpack(v).slice();
        assert.deepEqual(ours, msgpackrBytes(v));
        assert.deepEqual(unpackr.unpack(ours), v);
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('writes str16 and str32 headers as msgpackr does (long ASCII and non-ASCII text)', () => {
    for (const s of ['a'.repeat(0xffff), 'a'.repeat(0x10000), '\u20ac'.repeat(0x5556), 'é'.repeat(0x8000)]) {
      assert.deepEqual(writeMsgpack(s).slice(), msgpackrBytes(s));
    }
  });

  it('encodeCtrlView gives encodeCtrl bytes in a view the next encode overwrites', () => {
    const a = encodeCtrl(CTRL_SAMPLES['connect-reply']);
    const view = encodeCtrlView(CTRL_SAMPLES['connect-reply']);
    assert.deepEqual(view, a);
    const copy = view.slice();
    encodeCtrlView(CTRL_SAMPLES.accepted);
    assert.notDeepEqual(view, copy);
    // encodeCtrl's result is the caller's own: later encodes leave it alone.
    encodeCtrl(CTRL_SAMPLES.shutdown);
    assert.deepEqual(a, copy);
  });
});
