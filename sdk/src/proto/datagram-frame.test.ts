// Datagram frame headers: addresses both families, limits, and hostile headers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { FerryError } from '../errors.js';
import {
  DGRAM_HEADER_BYTES,
  DGRAM_MAX_PAYLOAD,
  decodeDgramHeader,
  dgramFamilyOf,
  encodeDgramHeader,
  formatIPv6,
  parseIPv4,
  parseIPv6,
} from './datagram-frame.js';

describe('datagram frame header', () => {
  it('round-trips IPv4 and IPv6 peers and the cut-through form', () => {
    const h = new Uint8Array(DGRAM_HEADER_BYTES);
    encodeDgramHeader(h, 1234, { address: '198.18.0.7', port: 5353, family: 'IPv4' });
    assert.deepEqual(decodeDgramHeader(h), {
      length: 1234,
      peer: { address: '198.18.0.7', port: 5353, family: 'IPv4' },
    });
    encodeDgramHeader(h, DGRAM_MAX_PAYLOAD, { address: '2001:DB8::1', port: 65535, family: 'IPv6' });
    assert.deepEqual(decodeDgramHeader(h), {
      length: DGRAM_MAX_PAYLOAD,
      peer: { address: '2001:db8::1', port: 65535, family: 'IPv6' },
    });
    encodeDgramHeader(h, 0, null);
    assert.deepEqual(decodeDgramHeader(h), { length: 0, peer: null });
  });

  it('refuses oversized payloads (EMSGSIZE) and non-numeric addresses (EINVAL)', () => {
    const h = new Uint8Array(DGRAM_HEADER_BYTES);
    assert.throws(() => encodeDgramHeader(h, DGRAM_MAX_PAYLOAD + 1, null), { code: 'EMSGSIZE' });
    assert.throws(() => encodeDgramHeader(h, 1, { address: 'example.com', port: 1, family: 'IPv4' }), {
      code: 'EINVAL',
    });
    assert.throws(() => encodeDgramHeader(h, 1, { address: '1.2.3.4', port: 70000, family: 'IPv4' }), {
      code: 'EINVAL',
    });
  });

  it('treats a hostile header as a corrupt fifo, never anything else', () => {
    const h = new Uint8Array(DGRAM_HEADER_BYTES);
    new DataView(h.buffer).setUint32(0, DGRAM_MAX_PAYLOAD + 1, true);
    assert.throws(() => decodeDgramHeader(h), { code: 'ERR_FERRY_FIFO_CORRUPT' });
    new DataView(h.buffer).setUint32(0, 100, true);
    assert.throws(() => decodeDgramHeader(h, 99), { code: 'ERR_FERRY_FIFO_CORRUPT' });
    h[6] = 5;
    assert.throws(() => decodeDgramHeader(h), { code: 'ERR_FERRY_FIFO_CORRUPT' });
    assert.throws(() => decodeDgramHeader(h.subarray(0, 10)), { code: 'ERR_FERRY_FIFO_CORRUPT' });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 40 }), (bytes) => {
        try {
          const r = decodeDgramHeader(bytes);
          assert.ok(r.length <= DGRAM_MAX_PAYLOAD);
        } catch (err) {
          assert.ok(err instanceof FerryError && err.code === 'ERR_FERRY_FIFO_CORRUPT');
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parses and formats IP addresses', () => {
    assert.deepEqual(parseIPv4('127.0.0.1'), Uint8Array.of(127, 0, 0, 1));
    assert.equal(parseIPv4('256.0.0.1'), null);
    assert.equal(parseIPv4('1.2.3'), null);
    for (const [text, want] of [
      ['::', '::'],
      ['::1', '::1'],
      ['fe80::1', 'fe80::1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1'],
      ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
      ['1:0:3:4:5:6:7:8', '1:0:3:4:5:6:7:8'],
      ['::ffff:127.0.0.1', '::ffff:127.0.0.1'],
      ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ] as const) {
      const b = parseIPv6(text);
      assert.ok(b, text);
      assert.equal(formatIPv6(b), want, text);
    }
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', ':::', '1:2:3:4:5:6:7', '']) {
      assert.equal(parseIPv6(bad), null, bad);
    }
    assert.equal(dgramFamilyOf('10.1.2.3'), 'IPv4');
    assert.equal(dgramFamilyOf('::1'), 'IPv6');
    assert.equal(dgramFamilyOf('localhost'), null);
  });
});
