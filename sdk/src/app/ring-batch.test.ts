import assert from 'node:assert/strict';
import { test } from 'node:test';
import { holdRings, pendingRings, releaseRings, ringSoon } from './ring-batch.js';

function ringable() {
  const r = { rings: 0, ringNow: () => r.rings++ };
  return r;
}

test('ring-batch: outside a poll a ring goes out at once', () => {
  const a = ringable();
  ringSoon(a);
  assert.equal(a.rings, 1);
  assert.equal(pendingRings(), 0);
});

test('ring-batch: rings asked for during a poll go out once, when the outermost poll ends', async () => {
  const a = ringable();
  const b = ringable();
  holdRings();
  holdRings();
  ringSoon(a);
  ringSoon(a);
  ringSoon(b);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(a.rings, 0, 'held while a poll runs');
  assert.equal(pendingRings(), 2);
  releaseRings();
  assert.equal(a.rings, 0, 'an outer poll still holds it');
  releaseRings();
  assert.equal(a.rings, 1, 'rung once at the end of the outer poll');
  assert.equal(b.rings, 1);
  assert.equal(pendingRings(), 0);
  releaseRings();
  ringSoon(a);
  assert.equal(a.rings, 2, 'an unbalanced release leaves nothing held');
});
