// Tests for protocol version and feature negotiation.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FEATURE, PROTO_MIN_VERSION, PROTO_VERSION } from './messages.js';
import { negotiate, negotiateFeatures } from './version.js';

describe('negotiate', () => {
  it('agrees with itself on the current version', () => {
    assert.equal(negotiate(PROTO_VERSION, PROTO_MIN_VERSION), PROTO_VERSION);
  });

  it('picks the highest version both ranges contain', () => {
    assert.equal(negotiate(5, 2, 3, 1), 3);
    assert.equal(negotiate(3, 1, 5, 2), 3);
    assert.equal(negotiate(4, 4, 7, 1), 4);
    assert.equal(negotiate(9, 1, 9, 9), 9);
  });

  it('returns null when the ranges do not overlap', () => {
    assert.equal(negotiate(2, 1, 5, 3), null);
    assert.equal(negotiate(9, 6, 5, 3), null);
  });

  it('returns null for an inverted remote range or non-integers', () => {
    assert.equal(negotiate(1, 3, 5, 1), null);
    assert.equal(negotiate(Number.NaN, 1, 5, 1), null);
  });
});

describe('negotiateFeatures', () => {
  it('keeps the bits both sides have, as an unsigned 32-bit value', () => {
    assert.equal(negotiateFeatures(FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE, FEATURE.CUT_THROUGH), 1);
    assert.equal(negotiateFeatures(0xffff_ffff, 0x8000_0001), 0x8000_0001);
    assert.equal(negotiateFeatures(0, 0xffff_ffff), 0);
  });
});
