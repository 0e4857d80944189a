// Bounded fuzzing of decodeCtrl: random bytes, mutated fixtures, and generated maps and messages.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { FerryError } from '../../errors.js';
import { decodeCtrl, encodeCtrl } from './codec.js';
import type { CtrlMessage } from './messages.js';
import { CTRL_SAMPLES } from './samples.js';
import {
  CTRL_MAX_SHORT_TEXT,
  CTRL_MAX_TEXT,
  CTRL_SCHEMA,
  CTRL_TYPES,
  FD_ROLES,
  FIFO_PAIR_SCHEMA,
  type FieldKind,
} from './schema.js';

const SEED = 0x5eed_f3e7;
const TIME_LIMIT_MS = 15_000;
const PROTO_CODES = new Set([
  'ERR_FERRY_PROTO_MALFORMED',
  'ERR_FERRY_PROTO_TOO_LARGE',
  'ERR_FERRY_PROTO_UNKNOWN_MSG',
]);
// The samples encode to the golden fixtures (codec.test.ts checks it), so no file access is needed here.
const FIXTURES = CTRL_TYPES.map((t) => encodeCtrl(CTRL_SAMPLES[t]));

/** mulberry32: small, seeded, good enough to spread inputs. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Outcome = 'ok' | 'refused';

/** decodeCtrl must return a valid message (one that re-encodes to a stable form) or throw ERR_FERRY_PROTO_*. */
function check(bytes: Uint8Array): Outcome {
  let m: CtrlMessage;
  try {
    m = decodeCtrl(bytes);
  } catch (e) {
    if (!(e instanceof FerryError) || !PROTO_CODES.has(e.code)) {
      assert.fail(`unexpected ${String(e)} for ${Buffer.from(bytes).toString('hex')}`);
    }
    return 'refused';
  }
  const again = encodeCtrl(m);
  assert.deepEqual(decodeCtrl(again), m);
  return 'ok';
}

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  let b = Array.from(src);
  const n = 1 + Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const at = Math.floor(rnd() * (b.length + 1));
    const byte = Math.floor(rnd() * 256);
    switch (Math.floor(rnd() * 6)) {
      case 0:
        b[at % Math.max(b.length, 1)] = byte;
        break;
      case 1:
        b[at % Math.max(b.length, 1)] = (b[at % Math.max(b.length, 1)] ?? 0) ^ (1 << Math.floor(rnd() * 8));
        break;
      case 2:
        b.splice(at, 0, byte);
        break;
      case 3:
        b.splice(at, 1 + Math.floor(rnd() * 4));
        break;
      case 4:
        b = b.slice(0, at);
        break;
      default: {
        const from = Math.floor(rnd() * b.length);
        b.splice(at, 0, ...b.slice(from, from + 1 + Math.floor(rnd() * 8)));
      }
    }
  }
  return new Uint8Array(b);
}

describe('decodeCtrl under fuzzing (seeded, bounded)', () => {
  it('random byte strings: valid message or ERR_FERRY_PROTO_*', () => {
    const rnd = prng(SEED);
    const deadline = Date.now() + TIME_LIMIT_MS;
    const counts = { ok: 0, refused: 0 };
    let i = 0;
    for (; i < 20_000 && Date.now() < deadline; i++) {
      const len = Math.floor(rnd() * 96);
      const b = new Uint8Array(len);
      for (let j = 0; j < len; j++) b[j] = Math.floor(rnd() * 256);
      // Start half of them with a map header so the schema checker, not only msgpackr, gets exercised.
      if (len > 0 && rnd() < 0.5) b[0] = 0x80 | Math.floor(rnd() * 16);
      counts[check(b)]++;
    }
    assert.equal(i, 20_000, 'finished within the time limit');
    assert.ok(counts.refused > 0);
  });

  it('mutated fixtures: valid message or ERR_FERRY_PROTO_*', () => {
    const rnd = prng(SEED + 1);
    const deadline = Date.now() + TIME_LIMIT_MS;
    const counts = { ok: 0, refused: 0 };
    let i = 0;
    for (; i < 20_000 && Date.now() < deadline; i++) {
      const src = FIXTURES[i % FIXTURES.length] as Uint8Array;
      counts[check(mutate(src, rnd))]++;
    }
    assert.equal(i, 20_000, 'finished within the time limit');
    // Mutations of string bytes keep messages valid: both outcomes must occur.
    assert.ok(counts.ok > 0 && counts.refused > 0, JSON.stringify(counts));
  });
});

describe('decodeCtrl properties (fast-check)', () => {
  const params = {
    seed: SEED,
    numRuns: 3000,
    interruptAfterTimeLimit: TIME_LIMIT_MS,
    markInterruptAsFailure: true,
  };

  it('a fixture under byte edits decodes to a valid message or fails with ERR_FERRY_PROTO_*', () => {
    const edit = fc.record({
      op: fc.constantFrom('set', 'insert', 'delete', 'truncate'),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(
        fc.constantFrom(...FIXTURES),
        fc.array(edit, { minLength: 1, maxLength: 6 }),
        (src, edits) => {
          const b = Array.from(src);
          for (const { op, at, byte } of edits) {
            const pos = at % (b.length + 1);
            if (op === 'set') b[pos] = byte;
            else if (op === 'insert') b.splice(pos, 0, byte);
            else if (op === 'delete') b.splice(pos, 1);
            else b.length = pos;
          }
          check(new Uint8Array(b));
        },
      ),
      params,
    );
  });

  // Maps built from the schema's own keys with values of any shape: reaches every field check.
  const anyValue = fc.oneof(
    fc.integer(),
    fc.double(),
    fc.constantFrom(0, -0, 2 ** 32, 2 ** 53, -(2 ** 31), null, true),
    fc.string({ maxLength: 300 }),
    fc.array(fc.constantFrom(...FD_ROLES, 'x'), { maxLength: 6 }),
    fc.record({ segment: fc.integer(), rxOffset: fc.nat(), slot: fc.integer() }),
  );
  const keys = [...new Set(CTRL_TYPES.flatMap((t) => Object.keys(CTRL_SCHEMA[t])))];

  it('maps with known keys and arbitrary values decode to a valid message or ERR_FERRY_PROTO_*', () => {
    const packr = new Packr({ useRecords: false, variableMapSize: true });
    fc.assert(
      fc.property(
        fc.constantFrom(...CTRL_TYPES, 'nope'),
        fc.dictionary(fc.constantFrom(...keys), anyValue),
        (t, fields) => {
          check(new Uint8Array(packr.pack({ t, ...fields })));
        },
      ),
      params,
    );
  });

  const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
  const size = fc.oneof(fc.integer({ min: 0, max: 1 << 30 }), fc.maxSafeNat());
  const fifos = fc.record(
    Object.fromEntries(Object.entries(FIFO_PAIR_SCHEMA).map(([k, kind]) => [k, kind === 'u32' ? u32 : size])),
  );
  const ARB: { readonly [K in FieldKind]: fc.Arbitrary<unknown> } = {
    u32,
    zero: fc.constant(0),
    size,
    status: fc.integer({ min: -0x8000_0000, max: 0 }),
    text: fc.string({ maxLength: CTRL_MAX_TEXT, unit: 'grapheme' }).filter((s) => s.length <= CTRL_MAX_TEXT),
    short: fc.string({ maxLength: CTRL_MAX_SHORT_TEXT }),
    fds: fc.array(fc.constantFrom(...FD_ROLES), { maxLength: 4 }),
    fifos,
    fifosOrNull: fc.option(fifos, { nil: null }),
    optU32: u32,
    flag: fc.boolean(),
    // Packed on the wire as u32s (offsets and sizes of segments below 4 GiB).
    pairs: fc.array(
      fc.record({
        session: u32,
        port: u32,
        fifos: fc.record(Object.fromEntries(Object.keys(FIFO_PAIR_SCHEMA).map((k) => [k, u32]))),
      }),
      { maxLength: 4 },
    ),
    slots: fc.array(u32, { maxLength: 64 }),
    tls: fc.record(
      {
        cert: fc.string({ maxLength: 64 }),
        key: fc.string({ maxLength: 64 }),
        ca: fc.string({ maxLength: 64 }),
        servername: fc.string({ maxLength: CTRL_MAX_SHORT_TEXT }),
        rejectUnauthorized: fc.boolean(),
        cutThrough: fc.boolean(),
      },
      { requiredKeys: [] },
    ),
  };
  const message = fc.oneof(
    ...CTRL_TYPES.map((t) =>
      fc.record(
        Object.fromEntries([
          ['t', fc.constant(t)],
          ...Object.entries(CTRL_SCHEMA[t]).map(([k, kind]) => [k, ARB[kind]]),
        ]) as Record<string, fc.Arbitrary<unknown>>,
      ),
    ),
  );

  it('every valid message round-trips exactly and encodes deterministically', () => {
    fc.assert(
      fc.property(message, (generated) => {
        // fast-check builds null-prototype records; decodeCtrl returns ordinary objects.
        const m = structuredClone(generated);
        const bytes = encodeCtrl(m as unknown as CtrlMessage);
        const back = decodeCtrl(bytes);
        assert.deepEqual(back, m);
        assert.deepEqual(encodeCtrl(back), bytes);
      }),
      { ...params, numRuns: 1000 },
    );
  });
});
