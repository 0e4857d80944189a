import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cliInt, cliIntOr } from './cli-numbers.js';

test('command-line numbers: whole decimal integers in range, else an error naming the flag', () => {
  assert.equal(cliInt('n', '42', 1, 100), 42);
  assert.equal(cliInt('n', '0', 0, 0), 0);
  assert.equal(cliIntOr('n', undefined, 1, 9, 7), 7);
  for (const bad of ['', ' 5', '5 ', '1e3', '0x10', '3.5', 'abc', '101', '0', '99999999999999999']) {
    assert.throws(
      () => cliInt('timeout-ms', bad, 1, 100),
      (e: Error & { code?: string }) =>
        e.code === 'ERR_INVALID_ARG_VALUE' &&
        e.message === `--timeout-ms: expected an integer in 1..100, got ${JSON.stringify(bad)}`,
      bad,
    );
  }
});
