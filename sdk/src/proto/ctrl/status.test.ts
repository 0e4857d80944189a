// Tests for the wire status <-> error code mapping.
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, it } from 'node:test';
import { ERROR_MESSAGES, type ErrorCode, FerryError } from '../../errors.js';
import { codeOf, errorFromWire, STATUS_OK, statusOf, WIRE_STATUS } from './status.js';

const CODES = Object.keys(ERROR_MESSAGES) as ErrorCode[];

describe('wire status mapping', () => {
  it('gives every error code exactly one status, and no two codes the same status', () => {
    assert.deepEqual(Object.keys(WIRE_STATUS).sort(), [...CODES].sort());
    const seen = new Map<number, ErrorCode>();
    for (const code of CODES) {
      const st = statusOf(code);
      assert.ok(Number.isSafeInteger(st) && st < STATUS_OK && st >= -0x8000_0000, `${code}: ${st}`);
      assert.equal(seen.get(st), undefined, `${code} and ${seen.get(st)} share status ${st}`);
      seen.set(st, code);
    }
  });

  it('is inverted exactly by codeOf', () => {
    for (const code of CODES) assert.equal(codeOf(statusOf(code)), code);
  });

  it('sends POSIX codes as minus their Linux errno, Ferry codes below -1000', () => {
    const errno = constants.errno as Record<string, number | undefined>;
    for (const code of CODES) {
      if (code.startsWith('E') && !code.startsWith('ERR_')) {
        if (process.platform === 'linux') assert.equal(statusOf(code), -(errno[code] ?? Number.NaN), code);
        assert.ok(statusOf(code) > -1000, code);
      } else {
        assert.ok(statusOf(code) <= -1000, code);
      }
    }
  });

  it('maps an unknown negative status to ERR_FERRY_PROTO_UNKNOWN_STATUS', () => {
    for (const st of [-999, -1099, -0x8000_0000, -5]) {
      if (Object.values(WIRE_STATUS).includes(st as never)) continue;
      assert.equal(codeOf(st), 'ERR_FERRY_PROTO_UNKNOWN_STATUS');
    }
  });

  it('refuses non-failure statuses in codeOf (programmer error)', () => {
    for (const st of [0, 1, 1.5, -1.5, Number.NaN, -(2 ** 60)]) {
      assert.throws(
        () => codeOf(st),
        (e: unknown) => e instanceof FerryError && e.code === 'ERR_INVALID_ARG_VALUE',
      );
    }
  });

  it('builds a FerryError carrying code, wireStatus and the peer message verbatim', () => {
    const e = errorFromWire(statusOf('ECONNREFUSED'), 'Connection refused: tcp://10.0.0.2:80');
    assert.ok(e instanceof FerryError);
    assert.equal(e.code, 'ECONNREFUSED');
    assert.equal(e.wireStatus, -111);
    assert.equal(e.message, 'Connection refused: tcp://10.0.0.2:80');
  });

  it('falls back to the table message when err is empty, and names unknown statuses', () => {
    assert.equal(errorFromWire(statusOf('ERR_FERRY_LIMIT'), '').message, ERROR_MESSAGES.ERR_FERRY_LIMIT);
    const e = errorFromWire(-1999, 'quota exceeded');
    assert.equal(e.code, 'ERR_FERRY_PROTO_UNKNOWN_STATUS');
    assert.equal(e.wireStatus, -1999);
    assert.match(e.message, /\(-1999\): quota exceeded$/);
  });
});
