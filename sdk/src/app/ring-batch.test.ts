import assert from 'node:assert/strict';
import { test } from 'node:test';
import { flushRings, holdRings, pendingRings, releaseRings, ringSoon } from './ring-batch.js';

function ringable() {
  const r = { rings: 0, ringNow: () => r.rings++ };
  return r;
}

test('ring-batch: posts outside a poll ring once, when the tick ends', async () => {
  const a = ringable();
  const b = ringable();
  ringSoon(a);
  ringSoon(a);
  ringSoon(b);
  assert.equal(a.rings, 0, 'not rung synchronously');
  assert.equal(pendingRings(), 2);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.equal(a.rings, 1);
  assert.equal(b.rings, 1);
  assert.equal(pendingRings(), 0);
});

test('ring-batch: posts during a poll ring when the outermost poll ends, not at the tick', async () => {
  const a = ringable();
  holdRings();
  holdRings();
  ringSoon(a);
  await new Promise<void>((resolve) => process.nextTick(resolve));
  assert.equal(a.rings, 0, 'held while a poll runs');
  releaseRings();
  assert.equal(a.rings, 0, 'an outer poll still holds it');
  ringSoon(a);
  releaseRings();
  assert.equal(a.rings, 1, 'rung once at the end of the outer poll');
  releaseRings();
  assert.equal(a.rings, 1, 'an unbalanced release rings nothing twice');
  flushRings();
  assert.equal(pendingRings(), 0);
});

test('ring-batch: a ring asked for while flushing is rung too', async () => {
  const b = ringable();
  const a = {
    rings: 0,
    ringNow: () => {
      a.rings++;
      ringSoon(b);
    },
  };
  ringSoon(a);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(a.rings, 1);
  assert.equal(b.rings, 1);
});
