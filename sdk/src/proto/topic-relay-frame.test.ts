// Tests for the topic relay's frames: any chunking round-trips, hostile bytes fail with
// ERR_FERRY_PROTO_MALFORMED and never anything else.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../errors.js';
import {
  encodeRelayJson,
  RELAY_KIND,
  RelayDecoder,
  type RelayFrame,
  relayRecordBytes,
  writeRelayRecordHeader,
} from './topic-relay-frame.js';

function record(payload: Uint8Array, gap: number): Buffer {
  const out = Buffer.alloc(relayRecordBytes(payload.length));
  writeRelayRecordHeader(out, 0, payload.length, gap);
  out.set(payload, relayRecordBytes(0));
  return out;
}

describe('topic relay frames', () => {
  it('any sequence of frames, cut anywhere, decodes to what was encoded', () => {
    const frame = fc.oneof(
      fc.record({ gap: fc.nat(0xffff_ffff), payload: fc.uint8Array({ maxLength: 300 }) }),
      fc.record({ code: fc.string({ maxLength: 40 }) }),
    );
    fc.assert(
      fc.property(
        fc.array(frame, { maxLength: 20 }),
        fc.array(fc.nat(400), { maxLength: 10 }),
        (frames, cuts) => {
          const bytes = Buffer.concat(
            frames.map((f) =>
              'payload' in f ? record(f.payload, f.gap) : encodeRelayJson(RELAY_KIND.BYE, { code: f.code }),
            ),
          );
          const dec = new RelayDecoder(1024);
          const got: RelayFrame[] = [];
          let at = 0;
          for (const c of [...cuts].sort((x, y) => x - y)) {
            const end = Math.min(bytes.length, Math.max(at, c));
            got.push(...dec.push(bytes.subarray(at, end)));
            at = end;
          }
          got.push(...dec.push(bytes.subarray(at)));
          assert.equal(dec.pending, 0);
          assert.equal(got.length, frames.length);
          frames.forEach((f, i) => {
            const g = got[i] as RelayFrame;
            if ('payload' in f) {
              assert.equal(g.kind, RELAY_KIND.RECORD);
              assert.deepEqual(g.kind === RELAY_KIND.RECORD && [g.gap, [...g.payload]], [
                f.gap,
                [...f.payload],
              ]);
            } else {
              assert.deepEqual(g.kind !== RELAY_KIND.RECORD && g.json, { code: f.code });
            }
          });
        },
      ),
      { numRuns: 300 },
    );
  });

  it('random bytes either decode or fail with ERR_FERRY_PROTO_MALFORMED', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          new RelayDecoder(64).push(Buffer.from(bytes));
        } catch (err) {
          assert.ok(err instanceof FerryError);
          assert.equal(err.code, 'ERR_FERRY_PROTO_MALFORMED');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('a length above the limit is refused before the body arrives', () => {
    const dec = new RelayDecoder(100);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(4 + 101, 0);
    head.writeUInt32LE(RELAY_KIND.RECORD, 4);
    assert.throws(() => dec.push(head), { code: 'ERR_FERRY_PROTO_MALFORMED' });
    const json = Buffer.alloc(8);
    json.writeUInt32LE(5000, 0);
    json.writeUInt32LE(RELAY_KIND.HELLO, 4);
    assert.throws(() => new RelayDecoder(100).push(json), { code: 'ERR_FERRY_PROTO_MALFORMED' });
    const reserved = Buffer.alloc(8);
    reserved.writeUInt32LE(RELAY_KIND.BYE | 0x100, 4);
    assert.throws(() => new RelayDecoder(100).push(reserved), { code: 'ERR_FERRY_PROTO_MALFORMED' });
  });
});
