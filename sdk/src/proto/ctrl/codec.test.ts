// Tests for the control codec: golden fixtures both ways, round trips, and hostile inputs.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Packr } from 'msgpackr';
import { type ErrorCode, FerryError } from '../../errors.js';
import { decodeCtrl, encodeCtrl } from './codec.js';
import { CTRL_MAX_FDS, CTRL_MAX_MESSAGE_BYTES, type CtrlMessage, type CtrlType } from './messages.js';
import { CTRL_SAMPLES } from './samples.js';
import { CTRL_MAX_SHORT_TEXT, CTRL_MAX_TEXT, CTRL_SCHEMA, CTRL_TYPES, type FieldKind } from './schema.js';

// Tests run from sdk/dist/proto/ctrl; the fixtures stay in the source tree.
const FIXTURES = new URL('../../../src/proto/ctrl/fixtures/', import.meta.url);

function fixture(t: CtrlType): Uint8Array {
  const hex = readFileSync(new URL(`${t}.hex`, FIXTURES), 'utf8').replace(/\s+/g, '');
  assert.match(hex, /^([0-9a-f]{2})+$/, `${t}.hex is lowercase hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

// Plain msgpack of arbitrary objects, for crafting messages the encoder would refuse to write.
const raw = new Packr({ useRecords: false, moreTypes: false, variableMapSize: true });
const pack = (v: unknown): Uint8Array => new Uint8Array(raw.pack(v));

function throwsCode(fn: () => unknown, code: ErrorCode, what = ''): FerryError {
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

const sample = (t: CtrlType): Record<string, unknown> => ({ ...CTRL_SAMPLES[t] });
// The sample as msgpack carries it (the pairs of pool-grant and pool-serve are one bin there).
const wire = (t: CtrlType): Record<string, unknown> => ({
  ...(new Packr({ useRecords: false }).unpack(Buffer.from(fixture(t))) as Record<string, unknown>),
});

describe('golden fixtures', () => {
  it('has exactly one fixture per message type', () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.hex'))
      .map((f) => f.slice(0, -4))
      .sort();
    assert.deepEqual(files, [...CTRL_TYPES].sort());
  });

  for (const t of CTRL_TYPES) {
    it(`${t}: decodes to the sample and the sample encodes to the fixture`, () => {
      const bytes = fixture(t);
      assert.deepEqual(decodeCtrl(bytes), CTRL_SAMPLES[t]);
      assert.deepEqual(encodeCtrl(CTRL_SAMPLES[t]), bytes);
    });
  }

  it('writes keys as t then the schema order, in plain msgpack maps', () => {
    for (const t of CTRL_TYPES) {
      const bytes = fixture(t);
      const keys = Object.keys(new Packr({ useRecords: false }).unpack(Buffer.from(bytes)) as object);
      // Optional fields (tls) the sample leaves out are not on the wire either.
      const present = Object.keys(CTRL_SCHEMA[t]).filter((k) => Object.hasOwn(CTRL_SAMPLES[t], k));
      assert.deepEqual(keys, ['t', ...present]);
      assert.equal((bytes[0] ?? 0) & 0xf0, 0x80, `${t}: fixmap header`);
    }
  });
});

describe('round trips', () => {
  it('decode(encode(m)) equals m for every type, and the result is a fresh plain object', () => {
    for (const t of CTRL_TYPES) {
      const m = CTRL_SAMPLES[t];
      const back = decodeCtrl(encodeCtrl(m));
      assert.deepEqual(back, m);
      assert.notEqual(back, m);
      assert.equal(Object.getPrototypeOf(back), Object.prototype);
    }
  });

  it('writes sizes above 2^32 as msgpack int64, not float64, and reads them back', () => {
    const m = { ...CTRL_SAMPLES['segment-add'], size: 2 ** 40 + 3, rxQueueOffset: Number.MAX_SAFE_INTEGER };
    const bytes = encodeCtrl(m);
    assert.ok(!Buffer.from(bytes).includes(0xcb), 'no float64');
    assert.deepEqual(decodeCtrl(bytes), m);
  });

  it('accepts a message at exactly CTRL_MAX_MESSAGE_BYTES (unknown keys are ignored)', () => {
    const base = encodeCtrl(CTRL_SAMPLES.ping).length;
    // fixmap(3) + 'pad' key (4 bytes) + str16 header (3 bytes) replaces fixmap(2): 7 more bytes.
    const pad = 'x'.repeat(CTRL_MAX_MESSAGE_BYTES - base - 7);
    const bytes = pack({ ...CTRL_SAMPLES.ping, pad });
    assert.equal(bytes.length, CTRL_MAX_MESSAGE_BYTES);
    assert.deepEqual(decodeCtrl(bytes), CTRL_SAMPLES.ping);
  });

  it('encodes the largest valid message of every type within CTRL_MAX_MESSAGE_BYTES', () => {
    const widest: { readonly [K in FieldKind]: unknown } = {
      u32: 0xffff_ffff,
      zero: 0,
      size: Number.MAX_SAFE_INTEGER,
      status: -0x8000_0000,
      text: '€'.repeat(CTRL_MAX_TEXT),
      short: '€'.repeat(CTRL_MAX_SHORT_TEXT),
      fds: Array(CTRL_MAX_FDS).fill('doorbell'),
      fifos: fifosOf(Number.MAX_SAFE_INTEGER),
      fifosOrNull: fifosOf(Number.MAX_SAFE_INTEGER),
      optU32: 0xffff_ffff,
      flag: false,
      pairs: Array(32).fill({
        session: 0xffff_ffff,
        port: 0xffff_ffff,
        // Packed as u32s: segments are below 4 GiB.
        fifos: fifosOf(0xffff_ffff),
      }),
      slots: Array(64).fill(0xffff_ffff),
      // PEM text is bounded by the message size alone; a certificate chain, key and CA of 3 KiB each.
      tls: {
        cert: 'c'.repeat(3072),
        key: 'k'.repeat(3072),
        ca: 'a'.repeat(3072),
        servername: '€'.repeat(CTRL_MAX_SHORT_TEXT),
        rejectUnauthorized: false,
        cutThrough: false,
      },
    };
    for (const t of CTRL_TYPES) {
      const m: Record<string, unknown> = { t };
      for (const [key, kind] of Object.entries(CTRL_SCHEMA[t])) m[key] = widest[kind];
      const bytes = encodeCtrl(m as unknown as CtrlMessage);
      assert.ok(bytes.length <= CTRL_MAX_MESSAGE_BYTES, `${t}: ${bytes.length}`);
      assert.deepEqual(decodeCtrl(bytes), m);
    }
  });
});

function fifosOf(n: number): Record<string, number> {
  return { segment: 0xffff_ffff, rxOffset: n, txOffset: n, rxSize: n, txSize: n, slot: 0xffff_ffff };
}

describe('decode rejects hostile input', () => {
  it('refuses oversized input unread, and empty input', () => {
    throwsCode(() => decodeCtrl(new Uint8Array(CTRL_MAX_MESSAGE_BYTES + 1)), 'ERR_FERRY_PROTO_TOO_LARGE');
    throwsCode(() => decodeCtrl(new Uint8Array(0)), 'ERR_FERRY_PROTO_MALFORMED');
  });

  it('refuses every proper prefix of every fixture', () => {
    for (const t of CTRL_TYPES) {
      const bytes = fixture(t);
      for (let n = 0; n < bytes.length; n++) {
        throwsCode(() => decodeCtrl(bytes.subarray(0, n)), 'ERR_FERRY_PROTO_MALFORMED', `${t}[0:${n}]`);
      }
    }
  });

  it('refuses trailing bytes after a valid message (one datagram, one message)', () => {
    const bytes = fixture('ping');
    const longer = new Uint8Array(bytes.length + 1);
    longer.set(bytes);
    throwsCode(() => decodeCtrl(longer), 'ERR_FERRY_PROTO_MALFORMED');
  });

  it('refuses values that are not a map', () => {
    for (const v of [[{ t: 'ping', id: 1 }], null, 7, 'ping', true, new Date(0), Buffer.from('ab')]) {
      throwsCode(() => decodeCtrl(pack(v)), 'ERR_FERRY_PROTO_MALFORMED', JSON.stringify(v));
    }
  });

  it('refuses a map without t as malformed, and an unknown t as UNKNOWN_MSG', () => {
    throwsCode(() => decodeCtrl(pack({ id: 1 })), 'ERR_FERRY_PROTO_MALFORMED');
    const e = throwsCode(() => decodeCtrl(pack({ t: 'frobnicate', id: 1 })), 'ERR_FERRY_PROTO_UNKNOWN_MSG');
    assert.match(e.message, /'frobnicate'/);
    for (const t of [
      'x'.repeat(65),
      'bad\nname',
      5,
      null,
      ['ping'],
      '__proto__',
      'toString',
      'constructor',
    ]) {
      const err = throwsCode(() => decodeCtrl(pack({ t, id: 1 })), 'ERR_FERRY_PROTO_UNKNOWN_MSG', String(t));
      if (typeof t === 'string' && t.length > 64) assert.doesNotMatch(err.message, /xxxx/);
    }
  });

  const WRONG: { readonly [K in FieldKind]: readonly unknown[] } = {
    u32: [-1, 2 ** 32, 1.5, '1', null, true, 2 ** 53, Number.NaN, [], {}],
    zero: [1, -1, 0.5, '0', null],
    size: [-1, 0.5, 2 ** 53, '1', null, Number.POSITIVE_INFINITY],
    status: [1, 0.5, -(2 ** 31) - 1, '-1', null],
    text: [5, null, 'x'.repeat(CTRL_MAX_TEXT + 1), ['a'], {}, Buffer.from('a')],
    short: [5, null, 'x'.repeat(CTRL_MAX_SHORT_TEXT + 1)],
    fds: [
      'doorbell',
      ['bogus'],
      [1],
      Array(CTRL_MAX_FDS + 1).fill('wake'),
      Array(1000).fill('wake'),
      null,
      { 0: 'wake' },
    ],
    fifos: [null, [], 5, { segment: 1 }, { ...fifosOf(1), slot: -1 }, { ...fifosOf(1), rxSize: 0.5 }],
    fifosOrNull: [[], 5, 'null', { ...fifosOf(1), segment: 2 ** 32 }],
    optU32: [-1, 2 ** 32, 1.5, '1', null, true, Number.NaN, {}],
    flag: [null, 0, 1, 'true', []],
    // On the wire: one bin of 32 bytes per pair, at most 32 pairs. Maps (the retired format) are refused.
    pairs: [
      null,
      5,
      {},
      [5],
      [{ session: 1, port: 2, fifos: fifosOf(1) }],
      new Uint8Array(31),
      new Uint8Array(33),
      new Uint8Array(33 * 32),
      'x'.repeat(32),
    ],
    slots: [null, 5, ['1'], [-1], [2 ** 32], Array(65).fill(1), { 0: 1 }],
    tls: [
      null,
      5,
      'cert',
      [],
      { cert: 5 },
      { key: null },
      { rejectUnauthorized: 'yes' },
      { cutThrough: 1 },
      { servername: 'x'.repeat(CTRL_MAX_SHORT_TEXT + 1) },
    ],
  };

  it('refuses a wrong type or range in every field of every message, naming the field', () => {
    for (const t of CTRL_TYPES) {
      for (const [key, kind] of Object.entries(CTRL_SCHEMA[t])) {
        for (const bad of WRONG[kind]) {
          const e = throwsCode(
            () => decodeCtrl(pack({ ...wire(t), [key]: bad })),
            'ERR_FERRY_PROTO_MALFORMED',
            `${t}.${key} = ${JSON.stringify(bad)}`,
          );
          assert.match(e.message, new RegExp(`${t}\\.${key}`));
        }
      }
    }
  });

  it('refuses a missing field in every message (optional fields aside)', () => {
    for (const t of CTRL_TYPES) {
      for (const [key, kind] of Object.entries(CTRL_SCHEMA[t])) {
        if (kind === 'tls' || kind === 'optU32' || kind === 'flag') continue;
        const m = wire(t);
        delete m[key];
        throwsCode(() => decodeCtrl(pack(m)), 'ERR_FERRY_PROTO_MALFORMED', `${t} without ${key}`);
      }
    }
  });

  it('takes hello with and without reattach (older SDKs never send it)', () => {
    const hello = sample('hello');
    assert.equal('reattach' in hello, false);
    assert.deepEqual(decodeCtrl(pack(hello)), hello);
    assert.deepEqual(decodeCtrl(encodeCtrl({ ...hello, reattach: 3 } as CtrlMessage)), {
      ...hello,
      reattach: 3,
    });
    throwsCode(
      () => decodeCtrl(pack({ ...hello, reattach: -1 })),
      'ERR_FERRY_PROTO_MALFORMED',
      'reattach -1',
    );
  });

  it('takes listen and connect without tls (older peers) and with it, and drops unknown tls keys', () => {
    const listen = { t: 'listen', id: 1, uri: 'tls://0.0.0.0:443' };
    assert.deepEqual(decodeCtrl(pack(listen)), listen);
    const tls = { cert: 'PEM', key: 'PEM', cutThrough: false };
    assert.deepEqual(decodeCtrl(pack({ ...listen, tls: { ...tls, extra: 1 } })), { ...listen, tls });
    const connect = { t: 'connect', id: 2, uri: 'tls://h:1', rxFifoSize: 0, txFifoSize: 0 };
    const ctls = { servername: 'example.org', rejectUnauthorized: false };
    assert.deepEqual(decodeCtrl(encodeCtrl({ ...connect, tls: ctls } as CtrlMessage)), {
      ...connect,
      tls: ctls,
    });
    assert.deepEqual(decodeCtrl(encodeCtrl(connect as CtrlMessage)), connect);
  });

  it('never yields a lone surrogate from CESU-8 bytes (replaced or refused)', () => {
    // {t: 'listen', id: 1, uri: <ED A0 80>}: TextDecoder makes U+FFFD of it; msgpackr's pure-JS reader
    // (used where TextDecoder is missing) would make '\ud800', which the schema refuses.
    const bytes = new Uint8Array([
      0x83,
      0xa1,
      0x74,
      0xa6,
      ...Buffer.from('listen'),
      0xa2,
      0x69,
      0x64,
      0x01,
      0xa3,
      ...Buffer.from('uri'),
      0xa3,
      0xed,
      0xa0,
      0x80,
    ]);
    try {
      const m = decodeCtrl(bytes);
      assert.equal(m.t === 'listen' && m.uri, '\ufffd\ufffd\ufffd');
    } catch (e) {
      assert.ok(e instanceof FerryError && e.code === 'ERR_FERRY_PROTO_MALFORMED');
    }
  });

  it('never echoes field values (a token must not reach an error message)', () => {
    const e = throwsCode(
      () => decodeCtrl(pack({ ...sample('hello'), token: 'TOPSECRET'.repeat(40) })),
      'ERR_FERRY_PROTO_MALFORMED',
    );
    assert.doesNotMatch(e.message, /TOPSECRET/);
  });

  it('accepts integers written as exact floats or int64, and refuses inexact ones', () => {
    const f64 = (n: number): number[] => {
      const b = Buffer.alloc(9);
      b[0] = 0xcb;
      b.writeDoubleBE(n, 1);
      return [...b];
    };
    // {t: 'ping', id: <x>} with x hand-written.
    const ping = (idBytes: number[]): Uint8Array =>
      new Uint8Array([0x82, 0xa1, 0x74, 0xa4, ...Buffer.from('ping'), 0xa2, 0x69, 0x64, ...idBytes]);
    assert.deepEqual(decodeCtrl(ping(f64(7))), { t: 'ping', id: 7 });
    assert.deepEqual(decodeCtrl(ping([0xcf, 0, 0, 0, 0, 0, 0, 0, 9])), { t: 'ping', id: 9 });
    assert.deepEqual(decodeCtrl(ping([0xd3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff])), {
      t: 'ping',
      id: 2 ** 32 - 1,
    });
    throwsCode(() => decodeCtrl(ping(f64(7.5))), 'ERR_FERRY_PROTO_MALFORMED');
    throwsCode(
      () => decodeCtrl(ping([0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
      'ERR_FERRY_PROTO_MALFORMED',
    );
    throwsCode(() => decodeCtrl(ping([0xd3, 0, 0, 0, 1, 0, 0, 0, 0])), 'ERR_FERRY_PROTO_MALFORMED');
    throwsCode(() => decodeCtrl(ping([0xc0])), 'ERR_FERRY_PROTO_MALFORMED');
  });

  it('ignores unknown keys and does not copy them, nor __proto__', () => {
    const m = decodeCtrl(pack({ ...sample('listen'), extra: 1, nested: { a: 1 } }));
    assert.deepEqual(Object.keys(m), ['t', 'id', 'uri']);
    // {"__proto__": {"polluted": 1}, "t": "ping", "id": 1} written by hand: JS object literals cannot.
    const bytes = new Uint8Array([
      0x83,
      0xa9,
      ...Buffer.from('__proto__'),
      0x81,
      0xa8,
      ...Buffer.from('polluted'),
      0x01,
      0xa1,
      0x74,
      0xa4,
      ...Buffer.from('ping'),
      0xa2,
      0x69,
      0x64,
      0x01,
    ]);
    const p = decodeCtrl(bytes);
    assert.deepEqual(p, { t: 'ping', id: 1 });
    assert.equal(Object.getPrototypeOf(p), Object.prototype);
    assert.equal('polluted' in {}, false);
    assert.equal('polluted' in p, false);
  });

  it('refuses deep nesting and huge declared lengths quickly', () => {
    const deep = new Uint8Array(CTRL_MAX_MESSAGE_BYTES).fill(0x91);
    throwsCode(() => decodeCtrl(deep), 'ERR_FERRY_PROTO_MALFORMED');
    const hugeArray = new Uint8Array([0x81, 0xa3, ...Buffer.from('fds'), 0xdd, 0xff, 0xff, 0xff, 0xff]);
    throwsCode(() => decodeCtrl(hugeArray), 'ERR_FERRY_PROTO_MALFORMED');
    const hugeMap = new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x74]);
    throwsCode(() => decodeCtrl(hugeMap), 'ERR_FERRY_PROTO_MALFORMED');
  });

  it('keeps no state between decodes (msgpackr record definitions are forgotten)', () => {
    const records = new Packr({ useRecords: true });
    const withRecord = new Uint8Array(records.pack({ t: 'ping', id: 5 }));
    try {
      decodeCtrl(withRecord);
    } catch (e) {
      assert.ok(e instanceof FerryError);
    }
    // 0x40..0x7f are plain positive fixints unless a record structure is live.
    const m = { ...CTRL_SAMPLES.unlisten, id: 0x40, listener: 0x7f };
    assert.deepEqual(decodeCtrl(encodeCtrl(m)), m);
    assert.deepEqual(decodeCtrl(fixture('hello')), CTRL_SAMPLES.hello);
  });

  it('leaves the caller buffer untouched', () => {
    const bytes = fixture('accepted');
    const copy = bytes.slice();
    decodeCtrl(bytes);
    assert.deepEqual(bytes, copy);
    assert.deepEqual(Object.keys(bytes), Object.keys(copy));
  });
});

describe('encode rejects invalid messages (programmer errors)', () => {
  it('throws ERR_INVALID_ARG_VALUE naming the field', () => {
    const bad: [CtrlType, string, unknown][] = [
      ['ping', 'id', -1],
      ['listen', 'uri', 'x'.repeat(CTRL_MAX_TEXT + 1)],
      ['hello', 'fds', ['doorbell', 'nope']],
      ['accepted', 'id', 3],
      ['connect-reply', 'fifos', undefined],
      ['status', 'st', 3],
      ['listen', 'uri', 'a\ud800b'],
      ['hello', 'token', '\udc00'],
    ];
    for (const [t, key, value] of bad) {
      const m = { ...sample(t), [key]: value } as unknown as CtrlMessage;
      const e = throwsCode(() => encodeCtrl(m), 'ERR_INVALID_ARG_VALUE', `${t}.${key}`);
      assert.match(e.message, new RegExp(`${t}\\.${key}`));
    }
    throwsCode(() => encodeCtrl({ t: 'nope', id: 1 } as unknown as CtrlMessage), 'ERR_INVALID_ARG_VALUE');
  });

  it('refuses pool pairs whose offsets or sizes do not fit the packed u32s', () => {
    for (const t of ['pool-grant', 'pool-serve'] as const) {
      const pair = CTRL_SAMPLES[t].pairs[0];
      assert.ok(pair);
      const m = { ...CTRL_SAMPLES[t], pairs: [{ ...pair, fifos: { ...pair.fifos, rxOffset: 2 ** 32 } }] };
      const e = throwsCode(() => encodeCtrl(m), 'ERR_INVALID_ARG_VALUE', t);
      assert.match(e.message, new RegExp(`${t}\\.pairs`));
    }
  });

  it('packs pool pairs in 32 bytes each, and reads back every field', () => {
    const pairs = Array.from({ length: 32 }, (_, i) => ({
      session: 1000 + i,
      port: 40000 + i,
      fifos: {
        segment: 7,
        rxOffset: 4096 * i,
        txOffset: 4096 * i + 64,
        rxSize: 1 << 20,
        txSize: 1 << 16,
        slot: i,
      },
    }));
    const m = { ...CTRL_SAMPLES['pool-grant'], pairs } as CtrlMessage;
    const bytes = encodeCtrl(m);
    const bin = (new Packr({ useRecords: false }).unpack(Buffer.from(bytes)) as { pairs: Uint8Array }).pairs;
    assert.equal(bin.length, 32 * 32);
    assert.deepEqual(decodeCtrl(bytes), m);
  });

  it('does not write extra properties of the input', () => {
    const m = { ...CTRL_SAMPLES.detach, secret: 'x' } as CtrlMessage;
    assert.deepEqual(encodeCtrl(m), fixture('detach'));
  });
});
