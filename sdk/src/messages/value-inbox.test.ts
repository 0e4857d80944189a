// The inbox behind message channels' and subscribers' iterators, alone.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type FerryError, ferryError } from '../errors.js';
import { ValueInbox } from './value-inbox.js';

function inbox(hwm: number) {
  const seen = { resumed: 0, handed: 0, end: false as boolean | FerryError };
  const box = new ValueInbox(hwm, {
    resume: () => seen.resumed++,
    handed: () => seen.handed++,
    ended: () => seen.end,
  });
  return { box, seen };
}

describe('ValueInbox', () => {
  it('values pushed before and after a step arrive in order; a waiter is handed its value', async () => {
    const { box, seen } = inbox(8);
    box.push(1);
    box.push(2);
    const first = box.next();
    assert.deepEqual(await box.next(), { done: false, value: 2 });
    assert.deepEqual(await first, { done: false, value: 1 });
    const waiting = box.next();
    box.push(3);
    assert.deepEqual(await waiting, { done: false, value: 3 });
    assert.equal(seen.handed, 1);
    assert.equal(box.size, 0);
  });

  it('resumes the reader when the buffer falls to half the mark, and after a batch taken from the mark', async () => {
    const { box, seen } = inbox(8);
    for (let i = 0; i < 8; i++) box.push(i);
    for (let i = 0; i < 3; i++) await box.next();
    assert.equal(seen.resumed, 0);
    await box.next();
    assert.equal(seen.resumed, 1, 'at 4 of 8 left');
    for (let i = 0; i < 4; i++) box.push(i);
    assert.equal(box.size, 8);
    const batch = await box.nextBatch();
    assert.equal((batch.value as unknown[]).length, 8);
    assert.equal(seen.resumed, 2);
  });

  it('a batch waiter gets everything pushed before the microtask in one array', async () => {
    const { box } = inbox(100);
    const step = box.nextBatch();
    box.push('a');
    box.push('b');
    box.push('c');
    assert.deepEqual(await step, { done: false, value: ['a', 'b', 'c'] });
  });

  it('ends: waiters are ended at once; later steps take what is buffered, then done or the error', async () => {
    const { box, seen } = inbox(8);
    const pending = box.next();
    box.endWaiters(null);
    assert.deepEqual(await pending, { done: true, value: undefined });
    box.push('kept');
    seen.end = true;
    assert.deepEqual(await box.next(), { done: false, value: 'kept' });
    assert.deepEqual(await box.next(), { done: true, value: undefined });
    const err = ferryError('ECONNRESET', 'gone');
    const failing = box.nextBatch();
    assert.deepEqual(await failing, { done: true, value: undefined });
    seen.end = err;
    await assert.rejects(box.next(), { code: 'ECONNRESET' });
    seen.end = false;
    const rejected = box.next();
    box.endWaiters(err);
    await assert.rejects(rejected, { code: 'ECONNRESET' });
  });
});
