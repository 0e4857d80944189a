// memif codec: golden 128-byte fixtures both ways, and every refusal the spec lists.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { type ErrorCode, FerryError } from '../../errors.js';
import { decodeMemif, encodeMemif, truncateUtf8 } from './codec.js';
import { MEMIF_MSG_SIZE, MEMIF_MSG_TYPE } from './constants.js';
import { MEMIF_MESSAGE_TYPES, type MemifMessage } from './messages.js';
import { MEMIF_SAMPLES } from './samples.js';

// Tests run from sdk/dist/proto/memif; the fixtures stay in the source tree.
const FIXTURES = new URL('../../../src/proto/memif/fixtures/', import.meta.url);

function fixture(name: string): Uint8Array {
  const hex = readFileSync(new URL(`${name}.hex`, FIXTURES), 'utf8').replace(/\s+/g, '');
  assert.match(hex, /^([0-9a-f]{2})+$/, `${name}.hex is lowercase hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function throwsCode(fn: () => unknown, code: ErrorCode, what: string): FerryError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof FerryError, `${what}: expected a FerryError, got ${String(caught)}`);
  assert.equal(caught.code, code, `${what}: ${caught.message}`);
  return caught;
}

/** The fixture of `name` with `edit` applied to a copy. */
function mutated(name: string, edit: (b: Uint8Array, v: DataView) => void): Uint8Array {
  const b = fixture(name).slice();
  edit(b, new DataView(b.buffer));
  return b;
}

describe('memif codec: golden fixtures', () => {
  it('has one fixture per sample, and a sample for every message type', () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.hex'))
      .map((f) => f.slice(0, -4))
      .sort();
    assert.deepEqual(files, Object.keys(MEMIF_SAMPLES).sort());
    const types = new Set(Object.values(MEMIF_SAMPLES).map((m) => m.type));
    assert.deepEqual([...types].sort(), [...MEMIF_MESSAGE_TYPES].sort());
  });

  for (const [name, sample] of Object.entries(MEMIF_SAMPLES)) {
    it(`${name}: the fixture decodes to the sample and the sample encodes to the fixture`, () => {
      const bytes = fixture(name);
      assert.equal(bytes.byteLength, MEMIF_MSG_SIZE);
      assert.deepEqual(decodeMemif(bytes), sample);
      assert.deepEqual(encodeMemif(sample), bytes);
    });
  }

  it('hello: field order is S2C before C2S, values are ring indices', () => {
    const m = decodeMemif(
      mutated('hello', (_b, v) => {
        v.setUint16(40, 3, true);
        v.setUint16(42, 5, true);
      }),
    );
    assert.equal(m.type, 'hello');
    if (m.type === 'hello') {
      assert.equal(m.maxS2cRing, 3);
      assert.equal(m.maxC2sRing, 5);
    }
  });

  it('names may fill their 32-byte field without a NUL', () => {
    const msg: MemifMessage = { type: 'connect', ifName: 'x'.repeat(32) };
    const bytes = encodeMemif(msg);
    assert.equal(bytes[33], 0x78);
    assert.equal(bytes[34], 0);
    assert.deepEqual(decodeMemif(bytes), msg);
  });

  it('ignores bytes after a string NUL and in the unused tail', () => {
    const b = mutated('connected', (b) => {
      b[20] = 0x41; // inside the name field, after the terminating NUL
      b[127] = 0xff; // unused tail
    });
    assert.deepEqual(decodeMemif(b), MEMIF_SAMPLES['connected']);
  });

  it('encodes into a caller buffer, clearing what was there', () => {
    const out = new Uint8Array(MEMIF_MSG_SIZE).fill(0xaa);
    const r = encodeMemif({ type: 'ack' }, out);
    assert.equal(r, out);
    assert.deepEqual(out, fixture('ack'));
  });

  it('decodes a message at a non-zero offset in a larger buffer', () => {
    const big = new Uint8Array(300);
    big.set(fixture('init'), 17);
    assert.deepEqual(decodeMemif(big.subarray(17, 17 + 128)), MEMIF_SAMPLES['init']);
  });
});

describe('memif codec: refusals (spec §2.3, §3, §11)', () => {
  it('refuses any size other than 128', () => {
    for (const n of [0, 1, 2, 64, 127, 129, 256]) {
      const b = new Uint8Array(n);
      if (n >= 2) b[0] = MEMIF_MSG_TYPE.ACK;
      throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_MALFORMED', `size ${n}`);
    }
  });

  it('refuses type NONE and unknown types', () => {
    for (const t of [0, 9, 10, 0x100, 0xffff]) {
      const b = mutated('ack', (_b, v) => v.setUint16(0, t, true));
      throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_UNKNOWN_MSG', `type ${t}`);
    }
  });

  it('refuses a non-array input', () => {
    throwsCode(() => decodeMemif('x' as unknown as Uint8Array), 'ERR_FERRY_PROTO_MALFORMED', 'string');
  });

  it('hello: min version above max version', () => {
    const b = mutated('hello', (_b, v) => v.setUint16(34, 0x0300, true));
    throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_MALFORMED', 'min > max');
  });

  it('init: mode beyond punt/inject', () => {
    for (const mode of [3, 0xff]) {
      const b = mutated('init', (b) => {
        b[8] = mode;
      });
      throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_MALFORMED', `mode ${mode}`);
    }
    const punt = decodeMemif(mutated('init', (b) => b.fill(2, 8, 9)));
    assert.equal(punt.type === 'init' && punt.mode, 'punt-inject');
  });

  it('init: a secret with no NUL in its 24 bytes', () => {
    const b = mutated('init', (b) => b.fill(0x61, 9, 33));
    throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_MALFORMED', 'unterminated secret');
    const ok = decodeMemif(mutated('init', (b) => b.fill(0x61, 9, 32)));
    assert.equal(ok.type === 'init' && ok.secret, 'a'.repeat(23));
  });

  it('strings that are not UTF-8', () => {
    const cases: Array<[string, number]> = [
      ['hello', 2],
      ['init', 9],
      ['init', 33],
      ['connect', 2],
      ['connected', 2],
      ['disconnect', 6],
    ];
    for (const [name, off] of cases) {
      const b = mutated(name, (b) => {
        b[off] = 0xc3; // a lead byte
        b[off + 1] = 0x28; // not a continuation
      });
      throwsCode(() => decodeMemif(b), 'ERR_FERRY_PROTO_MALFORMED', `${name}@${off}`);
    }
  });

  it('add-region: index above 255, size 0, size above 2^53 - 1', () => {
    throwsCode(
      () => decodeMemif(mutated('add-region', (_b, v) => v.setUint16(2, 256, true))),
      'ERR_FERRY_PROTO_MALFORMED',
      'index 256',
    );
    throwsCode(
      () => decodeMemif(mutated('add-region', (_b, v) => v.setBigUint64(4, 0n, true))),
      'ERR_FERRY_PROTO_MALFORMED',
      'size 0',
    );
    throwsCode(
      () => decodeMemif(mutated('add-region', (_b, v) => v.setBigUint64(4, 2n ** 53n, true))),
      'ERR_FERRY_PROTO_MALFORMED',
      'size 2^53',
    );
    const m = decodeMemif(mutated('add-region', (_b, v) => v.setBigUint64(4, 2n ** 53n - 1n, true)));
    assert.equal(m.type === 'add-region' && m.size, Number.MAX_SAFE_INTEGER);
  });

  it('add-ring: unknown flags, index / region above 255, log2 0 or above 14, private header', () => {
    const bad: Array<[string, (b: Uint8Array, v: DataView) => void]> = [
      ['flags 2', (_b, v) => v.setUint16(2, 2, true)],
      ['flags 0x8001', (_b, v) => v.setUint16(2, 0x8001, true)],
      ['index 256', (_b, v) => v.setUint16(4, 256, true)],
      ['region 256', (_b, v) => v.setUint16(6, 256, true)],
      ['log2 0', (b) => b.fill(0, 12, 13)],
      ['log2 15', (b) => b.fill(15, 12, 13)],
      ['private header 1', (_b, v) => v.setUint16(13, 1, true)],
      ['private header 0x100', (_b, v) => v.setUint16(13, 0x100, true)],
    ];
    for (const [what, edit] of bad) {
      throwsCode(() => decodeMemif(mutated('add-ring', edit)), 'ERR_FERRY_PROTO_MALFORMED', what);
    }
    const edge = decodeMemif(
      mutated('add-ring', (b, v) => {
        v.setUint16(4, 255, true);
        v.setUint16(6, 255, true);
        v.setUint32(8, 0xffff_ffff, true);
        b[12] = 14;
      }),
    );
    assert.deepEqual(edge, {
      type: 'add-ring',
      direction: 's2c',
      index: 255,
      region: 255,
      offset: 0xffff_ffff,
      log2RingSize: 14,
    });
  });
});

describe('memif codec: encoder refuses what could not be decoded', () => {
  const cases: Array<[string, unknown, ErrorCode]> = [
    ['unknown type', { type: 'nope' }, 'ERR_INVALID_ARG_VALUE'],
    ['null', null, 'ERR_INVALID_ARG_VALUE'],
    ['long name', { ...MEMIF_SAMPLES['connect'], ifName: 'x'.repeat(33) }, 'ERR_OUT_OF_RANGE'],
    ['multibyte name too long', { type: 'connected', ifName: 'é'.repeat(17) }, 'ERR_OUT_OF_RANGE'],
    ['NUL in name', { type: 'connected', ifName: 'a\0b' }, 'ERR_INVALID_ARG_VALUE'],
    ['secret of 24', { ...MEMIF_SAMPLES['init'], secret: 's'.repeat(24) }, 'ERR_OUT_OF_RANGE'],
    ['bad mode', { ...MEMIF_SAMPLES['init'], mode: 'token-ring' }, 'ERR_INVALID_ARG_VALUE'],
    ['inherited mode key', { ...MEMIF_SAMPLES['init'], mode: 'toString' }, 'ERR_INVALID_ARG_VALUE'],
    ['id too big', { ...MEMIF_SAMPLES['init'], id: 2 ** 32 }, 'ERR_OUT_OF_RANGE'],
    ['id not integer', { ...MEMIF_SAMPLES['init'], id: 1.5 }, 'ERR_INVALID_ARG_TYPE'],
    ['region size 0', { type: 'add-region', index: 0, size: 0 }, 'ERR_OUT_OF_RANGE'],
    ['region index 256', { type: 'add-region', index: 256, size: 1 }, 'ERR_OUT_OF_RANGE'],
    ['ring log2 15', { ...MEMIF_SAMPLES['add-ring'], log2RingSize: 15 }, 'ERR_OUT_OF_RANGE'],
    ['ring direction', { ...MEMIF_SAMPLES['add-ring'], direction: 'up' }, 'ERR_INVALID_ARG_VALUE'],
    ['reason of 96', { type: 'disconnect', code: 0, reason: 'r'.repeat(96) }, 'ERR_OUT_OF_RANGE'],
    ['hello min > max', { ...MEMIF_SAMPLES['hello'], minVersion: 0x0300 }, 'ERR_INVALID_ARG_VALUE'],
  ];
  for (const [what, msg, code] of cases) {
    it(what, () => {
      throwsCode(() => encodeMemif(msg as MemifMessage), code, what);
    });
  }

  it('refuses an output buffer of the wrong size', () => {
    throwsCode(() => encodeMemif({ type: 'ack' }, new Uint8Array(64)), 'ERR_INVALID_ARG_VALUE', 'out');
  });

  it('truncateUtf8 keeps whole characters', () => {
    assert.equal(truncateUtf8('abc', 2), 'ab');
    assert.equal(truncateUtf8('aé', 2), 'a');
    assert.equal(truncateUtf8('a\0b', 10), 'a');
    assert.equal(truncateUtf8('x'.repeat(200), 95).length, 95);
  });
});
