import assert from 'node:assert/strict';
import { test } from 'node:test';
import { slowestOf } from './perf-client.js';

test('slowestOf gives the n slowest round trips, slowest first, each with its index and start', () => {
  const samples = [5, 90, 7, 300, 90, 1];
  const starts = [100, 200, 300, 400, 500, 600];
  assert.deepEqual(slowestOf(samples, starts, 3), [
    { index: 3, atUs: 400, us: 300 },
    { index: 1, atUs: 200, us: 90 },
    { index: 4, atUs: 500, us: 90 },
  ]);
  assert.equal(slowestOf(samples, starts, 100).length, samples.length);
  assert.deepEqual(slowestOf(samples, starts, 0), []);
  assert.deepEqual(slowestOf([], [], 5), []);
});
