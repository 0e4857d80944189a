// The control decoder's msgpack reader: what msgpackr reads from any msgpack value, and only
// MsgpackError from anything else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { EXT_VALUE, MsgpackError, readMsgpack } from './msgpack-reader.js';

const SEED = 0x0dec_0de5;
const packr = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });

const scalar = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 60 }),
  fc.string({ minLength: 33, maxLength: 300 }),
  fc.integer({ min: -0x8000_0000, max: 0xffff_ffff }),
  fc.constantFrom(0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, -0x20, -0x21, -0x80, -0x81, -0x8000, -0x8001),
  fc.double({ noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.uint8Array({ maxLength: 40 }),
);
const value = fc.letrec((tie) => ({
  v: fc.oneof({ depthSize: 'small', maxDepth: 4 }, scalar, fc.array(tie('v'), { maxLength: 20 }), tie('map')),
  map: fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), tie('v'), {
    maxKeys: 20,
    noNullPrototype: true,
  }),
})).v;

function bytesOf(v: unknown): Uint8Array {
  return new Uint8Array(packr.pack(v));
}

/** msgpackr gives a Buffer for bin; we give a Uint8Array copy. */
function normalize(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(normalize);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalize(x);
    return out;
  }
  return v;
}

function throwsMsgpack(bytes: number[] | Uint8Array, what = ''): void {
  assert.throws(() => readMsgpack(Uint8Array.from(bytes)), MsgpackError, what);
}

describe('msgpack reader', () => {
  it('reads what msgpackr writes as msgpackr reads it', () => {
    fc.assert(
      fc.property(value, (v) => {
        const bytes = bytesOf(v);
        assert.deepEqual(normalize(readMsgpack(bytes)), normalize(packr.unpack(bytes)));
      }),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('reads 64-bit integers as numbers (inexact beyond 2^53) and every int width with its sign', () => {
    const u64 = [0xcf, 0, 0, 0, 1, 0, 0, 0, 5];
    assert.equal(readMsgpack(Uint8Array.from(u64)), 2 ** 32 + 5);
    assert.equal(readMsgpack(Uint8Array.from([0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])), -2);
    assert.equal(readMsgpack(Uint8Array.from([0xd0, 0x80])), -128);
    assert.equal(readMsgpack(Uint8Array.from([0xd1, 0x80, 0x00])), -32768);
    assert.equal(readMsgpack(Uint8Array.from([0xd2, 0x80, 0, 0, 0])), -(2 ** 31));
    assert.equal(readMsgpack(Uint8Array.from([0xce, 0xff, 0xff, 0xff, 0xff])), 2 ** 32 - 1);
    assert.ok(!Number.isSafeInteger(readMsgpack(Uint8Array.from([0xcf, 0xff, 0, 0, 0, 0, 0, 0, 1]))));
  });

  it('skips ext values (as a value no schema field takes) and reads on', () => {
    // {a: fixext1, b: 1}
    const m = readMsgpack(Uint8Array.from([0x82, 0xa1, 0x61, 0xd4, 0x05, 0x07, 0xa1, 0x62, 0x01]));
    assert.deepEqual(m, { a: EXT_VALUE, b: 1 });
  });

  it('refuses truncation, trailing bytes, unused 0xc1, non-string keys, deep nesting, bad UTF-8', () => {
    const whole = bytesOf({ t: 'ping', id: 300, list: ['a', 1, null], nested: { x: -5 } });
    for (let n = 0; n < whole.length; n++) throwsMsgpack(whole.subarray(0, n), `prefix ${n}`);
    throwsMsgpack([...whole, 0]);
    throwsMsgpack([0xc1]);
    throwsMsgpack([0x81, 0x01, 0x02]);
    throwsMsgpack(new Uint8Array(100).fill(0x91));
    throwsMsgpack([0xa3, 0xed, 0xa0, 0x80]);
    throwsMsgpack([0xa2, 0xc3, 0x28]);
    // Declared lengths far beyond the input are refused before anything is allocated.
    throwsMsgpack([0xdd, 0xff, 0xff, 0xff, 0xff]);
    throwsMsgpack([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x74]);
    throwsMsgpack([0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]);
    throwsMsgpack([0xc6, 0xff, 0xff, 0xff, 0xff]);
  });

  it('keeps __proto__ an own key and never changes a prototype', () => {
    const m = readMsgpack(Uint8Array.from([0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x70, 0x01]));
    assert.equal(Object.getPrototypeOf(m), Object.prototype);
    assert.ok(Object.hasOwn(m as object, '__proto__'));
    assert.equal('p' in (m as object), false);
  });

  it('random bytes give a value or MsgpackError, nothing else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          readMsgpack(bytes);
        } catch (e) {
          assert.ok(e instanceof MsgpackError, String(e));
        }
      }),
      { seed: SEED, numRuns: 3000 },
    );
  });
});
