// Tests for message frames: golden fixtures both ways, header rules, and hostile headers.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../errors.js';
import {
  encodeMessageHeader,
  frameBytes,
  type MessageHeader,
  type MessageKind,
  MSG_HEADER_BYTES,
  MSG_KIND,
  readMessageHeader,
  writeMessageHeader,
} from './message-frame.js';
import { createValueDecoder, ValueEncoder } from './message-values.js';

// Tests run from sdk/dist/proto; the fixtures stay in the source tree.
const FIXTURES = new URL('../../src/proto/fixtures/messages/', import.meta.url);

interface SampleFrame {
  kind: MessageKind;
  id?: number;
  /** A msgpack value body (omitted: empty body). */
  value?: unknown;
  /** LOAN: the payload before the value. */
  payload?: Uint8Array;
}

/** Each fixture is a stream of frames, each value encoded by one encoder in order. */
const SAMPLES: Record<string, SampleFrame[]> = {
  hello: [{ kind: MSG_KIND.HELLO, value: { v: 1, maxBytes: 64 * 1024 * 1024 } }],
  message: [{ kind: MSG_KIND.MESSAGE, value: { id: 1, ts: 1700000000000, name: 'x', vals: [1, 2, 3] } }],
  request: [{ kind: MSG_KIND.REQUEST, id: 7, value: { a: 1, b: 2 } }],
  reply: [{ kind: MSG_KIND.REPLY, id: 7, value: { sum: 3 } }],
  error: [{ kind: MSG_KIND.ERROR, id: 7, value: { name: 'TypeError', message: 'bad', code: 'E_BAD' } }],
  cancel: [{ kind: MSG_KIND.CANCEL, id: 7 }],
  reset: [{ kind: MSG_KIND.RESET }],
  pad: [{ kind: MSG_KIND.PAD, payload: new Uint8Array(8) }],
  loan: [{ kind: MSG_KIND.LOAN, payload: new Uint8Array([1, 2, 3, 4]), value: { type: 'x' } }],
  records: [
    { kind: MSG_KIND.HELLO, value: { v: 1, maxBytes: 1024 } },
    { kind: MSG_KIND.MESSAGE, value: { sym: 'X', px: 1.5 } },
    { kind: MSG_KIND.MESSAGE, value: { sym: 'Y', px: 2.5 } },
    { kind: MSG_KIND.MESSAGE, value: new Date(0) },
  ],
};

function encodeSample(frames: SampleFrame[]): Uint8Array {
  const enc = new ValueEncoder();
  const parts: number[] = [];
  for (const f of frames) {
    let body = new Uint8Array(0);
    if (f.value !== undefined) body = Uint8Array.from(enc.encode(f.value, 0, null, 0));
    const payload = f.payload ?? new Uint8Array(0);
    const all = new Uint8Array(payload.length + body.length);
    all.set(payload);
    all.set(body, payload.length);
    const aux = f.kind === MSG_KIND.LOAN ? payload.length : 0;
    const frame = new Uint8Array(frameBytes(all.length));
    writeMessageHeader(new DataView(frame.buffer), 0, f.kind, all.length, f.id ?? 0, aux);
    frame.set(all, MSG_HEADER_BYTES);
    parts.push(...frame);
  }
  return new Uint8Array(parts);
}

/** Parses a stream of frames the way the channel's reader does (headers, then bodies in order). */
function decodeStream(bytes: Uint8Array): { h: MessageHeader; value: unknown; payload: Uint8Array }[] {
  const dec = createValueDecoder();
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const out = [];
  let off = 0;
  while (off < bytes.length) {
    const h: MessageHeader = { bodyBytes: 0, kind: 0, id: 0, aux: 0 };
    const err = readMessageHeader(view, off, h, 1 << 20);
    assert.equal(err, null);
    const start = off + MSG_HEADER_BYTES;
    const valueStart = start + h.aux;
    const end = start + h.bodyBytes;
    const hasValue = h.kind !== MSG_KIND.PAD && end > valueStart;
    const value = hasValue ? dec.unpack(buf, { start: valueStart, end }) : undefined;
    out.push({ h: { ...h }, value, payload: bytes.slice(start, valueStart) });
    off += frameBytes(h.bodyBytes);
  }
  assert.equal(off, bytes.length, 'frames end exactly where the stream does');
  return out;
}

function fixture(name: string): Uint8Array {
  const hex = readFileSync(new URL(`${name}.hex`, FIXTURES), 'utf8').replace(/\s+/g, '');
  assert.match(hex, /^([0-9a-f]{2})+$/, `${name}.hex is lowercase hex`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

describe('golden fixtures', () => {
  it('has one fixture per sample', () => {
    const files = readdirSync(FIXTURES)
      .filter((f) => f.endsWith('.hex'))
      .map((f) => f.slice(0, -4))
      .sort();
    assert.deepEqual(files, Object.keys(SAMPLES).sort());
  });

  for (const [name, frames] of Object.entries(SAMPLES)) {
    it(`${name}: the sample encodes to the fixture and the fixture decodes to the sample`, () => {
      const bytes = fixture(name);
      assert.deepEqual(encodeSample(frames), bytes);
      const got = decodeStream(bytes);
      assert.equal(got.length, frames.length);
      got.forEach((g, i) => {
        const f = frames[i] as SampleFrame;
        assert.equal(g.h.kind, f.kind);
        assert.equal(g.h.id, f.id ?? 0);
        if (f.kind !== MSG_KIND.PAD) assert.deepEqual(g.value, f.value);
        if (f.kind === MSG_KIND.LOAN) assert.deepEqual(g.payload, f.payload);
      });
    });
  }

  it('the header of a request is laid out as documented (little-endian)', () => {
    const h = encodeMessageHeader(MSG_KIND.REQUEST, 0x0102_0304, 0x0a0b_0c0d);
    assert.equal(Buffer.from(h).toString('hex'), '04030201' + '03000000' + '0d0c0b0a' + '00000000');
  });

  it('a repeated shape is a record reference: the second frame is smaller than the first', () => {
    const bytes = fixture('records');
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const sizes: number[] = [];
    let off = 0;
    while (off < bytes.length) {
      const len = view.getUint32(off, true);
      sizes.push(len);
      off += frameBytes(len);
    }
    assert.ok((sizes[2] as number) < (sizes[1] as number), `sizes ${sizes.join(', ')}`);
  });
});

describe('frame sizes', () => {
  it('pads every frame to a multiple of 8', () => {
    for (let body = 0; body < 100; body++) {
      const n = frameBytes(body);
      assert.equal(n % 8, 0);
      assert.ok(n >= MSG_HEADER_BYTES + body && n < MSG_HEADER_BYTES + body + 8);
    }
    assert.equal(frameBytes(2 ** 32 - 1), 2 ** 32 + 16);
  });
});

describe('hostile headers', () => {
  const check = (bytes: number[], max = 1024) => {
    const b = new Uint8Array(16);
    b.set(bytes);
    const h: MessageHeader = { bodyBytes: 0, kind: 0, id: 0, aux: 0 };
    return readMessageHeader(new DataView(b.buffer), 0, h, max);
  };
  const code = (e: FerryError | null) => e?.code ?? null;

  it('refuses unknown kinds, reserved bits, wrong ids and aux', () => {
    assert.equal(code(check([8, 0, 0, 0, 9])), 'ERR_FERRY_MSG_MALFORMED');
    assert.equal(code(check([8, 0, 0, 0, 2, 1])), 'ERR_FERRY_MSG_MALFORMED');
    assert.equal(code(check([8, 0, 0, 0, 2, 0, 0, 1])), 'ERR_FERRY_MSG_MALFORMED');
    // A request with id 0, a message with an id.
    assert.equal(code(check([8, 0, 0, 0, 3])), 'ERR_FERRY_MSG_MALFORMED');
    assert.equal(code(check([8, 0, 0, 0, 2, 0, 0, 0, 1])), 'ERR_FERRY_MSG_MALFORMED');
    // aux on a message; a loan whose payload is longer than its body.
    assert.equal(code(check([8, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1])), 'ERR_FERRY_MSG_MALFORMED');
    assert.equal(code(check([8, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 9])), 'ERR_FERRY_MSG_MALFORMED');
    // A cancel with a body.
    assert.equal(code(check([8, 0, 0, 0, 6, 0, 0, 0, 1])), 'ERR_FERRY_MSG_MALFORMED');
  });

  it('a body longer than the limit is EMSGSIZE (a length lie cannot make the reader allocate)', () => {
    assert.equal(code(check([0xff, 0xff, 0xff, 0xff, 2])), 'EMSGSIZE');
    assert.equal(code(check([1, 4, 0, 0, 2], 1024)), 'EMSGSIZE');
    assert.equal(check([0, 4, 0, 0, 2], 1024), null);
  });

  it('any 16 bytes give a valid header or a FerryError, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(1 << 20), (b, max) => {
        const h: MessageHeader = { bodyBytes: 0, kind: 0, id: 0, aux: 0 };
        const e = readMessageHeader(new DataView(b.buffer, b.byteOffset), 0, h, max);
        if (e !== null) {
          assert.ok(e instanceof FerryError);
          assert.ok(e.code === 'EMSGSIZE' || e.code === 'ERR_FERRY_MSG_MALFORMED');
        } else {
          assert.ok(h.bodyBytes <= max && h.kind <= 8);
        }
      }),
      { numRuns: 2000 },
    );
  });
});
