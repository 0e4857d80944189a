// Property tests: whatever bytes arrive, decodeMemif returns a message that re-encodes to the same
// meaning, or throws ERR_FERRY_PROTO_MALFORMED / ERR_FERRY_PROTO_UNKNOWN_MSG. Nothing else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../../errors.js';
import { decodeMemif, encodeMemif } from './codec.js';
import { MEMIF_MSG_SIZE } from './constants.js';
import type { MemifMessage } from './messages.js';
import { MEMIF_SAMPLES } from './samples.js';

const SEED = 0x6d656d69;
const NUM_RUNS = 3000;
const CODES = new Set(['ERR_FERRY_PROTO_MALFORMED', 'ERR_FERRY_PROTO_UNKNOWN_MSG']);
const FIXTURES = Object.values(MEMIF_SAMPLES).map((m) => encodeMemif(m));

function check(bytes: Uint8Array): MemifMessage | 'refused' {
  let m: MemifMessage;
  try {
    m = decodeMemif(bytes);
  } catch (e) {
    assert.ok(e instanceof FerryError, `not a FerryError: ${String(e)}`);
    assert.ok(CODES.has(e.code), `unexpected code ${e.code}`);
    return 'refused';
  }
  // Accepted: it must re-encode, and the re-encoding must decode to the same message.
  assert.deepEqual(decodeMemif(encodeMemif(m)), m);
  return m;
}

describe('memif codec: properties', () => {
  it('random byte strings of any length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), (b) => {
        check(b);
      }),
      { seed: SEED, numRuns: NUM_RUNS },
    );
  });

  it('random 128-byte messages with a plausible type', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10 }),
        fc.uint8Array({ minLength: 126, maxLength: 126 }),
        (t, rest) => {
          const b = new Uint8Array(MEMIF_MSG_SIZE);
          b[0] = t;
          b.set(rest, 2);
          check(b);
        },
      ),
      { seed: SEED + 1, numRuns: NUM_RUNS },
    );
  });

  it('fixtures with random bytes overwritten', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: FIXTURES.length - 1 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 127 }), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (i, edits) => {
          const b = (FIXTURES[i] ?? new Uint8Array(MEMIF_MSG_SIZE)).slice();
          for (const [off, val] of edits) b[off] = val;
          check(b);
        },
      ),
      { seed: SEED + 2, numRuns: NUM_RUNS },
    );
  });

  it('fixtures truncated or extended', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: FIXTURES.length - 1 }),
        fc.integer({ min: 0, max: 200 }),
        (i, n) => {
          const src = FIXTURES[i] ?? new Uint8Array(MEMIF_MSG_SIZE);
          const b = new Uint8Array(n);
          b.set(src.subarray(0, Math.min(n, src.byteLength)));
          const r = check(b);
          if (n !== MEMIF_MSG_SIZE) assert.equal(r, 'refused');
        },
      ),
      { seed: SEED + 3, numRuns: 1000 },
    );
  });

  it('generated valid messages round-trip exactly', () => {
    const name = fc.string({ maxLength: 32 }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 32);
    const u16 = fc.integer({ min: 0, max: 0xffff });
    const msg: fc.Arbitrary<MemifMessage> = fc.oneof(
      fc.constant<MemifMessage>({ type: 'ack' }),
      fc
        .record({ name, a: u16, b: u16, maxRegion: u16, maxS2cRing: u16, maxC2sRing: u16, l: fc.nat(255) })
        .map(
          (r): MemifMessage => ({
            type: 'hello',
            name: r.name,
            minVersion: Math.min(r.a, r.b),
            maxVersion: Math.max(r.a, r.b),
            maxRegion: r.maxRegion,
            maxS2cRing: r.maxS2cRing,
            maxC2sRing: r.maxC2sRing,
            maxLog2RingSize: r.l,
          }),
        ),
      fc
        .record({
          version: u16,
          id: fc.nat(0xffff_ffff),
          mode: fc.constantFrom('ethernet' as const, 'ip' as const, 'punt-inject' as const),
          secret: name.filter((s) => Buffer.byteLength(s) <= 23),
          name,
        })
        .map((r): MemifMessage => ({ type: 'init', ...r })),
      fc
        .record({ index: fc.nat(255), size: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }) })
        .map((r): MemifMessage => ({ type: 'add-region', ...r })),
      fc
        .record({
          direction: fc.constantFrom('c2s' as const, 's2c' as const),
          index: fc.nat(255),
          region: fc.nat(255),
          offset: fc.nat(0xffff_ffff),
          log2RingSize: fc.integer({ min: 1, max: 14 }),
        })
        .map((r): MemifMessage => ({ type: 'add-ring', ...r })),
      name.map((ifName): MemifMessage => ({ type: 'connect', ifName })),
      name.map((ifName): MemifMessage => ({ type: 'connected', ifName })),
      fc
        .record({
          code: fc.nat(0xffff_ffff),
          reason: fc.string({ maxLength: 95 }).filter((s) => !s.includes('\0') && Buffer.byteLength(s) <= 95),
        })
        .map((r): MemifMessage => ({ type: 'disconnect', ...r })),
    );
    fc.assert(
      fc.property(msg, (m) => {
        const b = encodeMemif(m);
        assert.equal(b.byteLength, MEMIF_MSG_SIZE);
        assert.deepEqual(decodeMemif(b), m);
      }),
      { seed: SEED + 4, numRuns: NUM_RUNS },
    );
  });
});
