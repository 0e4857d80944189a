import assert from 'node:assert/strict';
import { test } from 'node:test';
import { statusOf } from '@ferry/sdk/internal';
import { tcpError } from './tcp-errors.js';

test('node:net errors keep their POSIX code when the status table has it', () => {
  for (const code of ['ECONNREFUSED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ECONNRESET', 'EADDRINUSE'] as const) {
    const e = tcpError(Object.assign(new Error('x'), { code, syscall: 'connect' }), 'tcp://10.0.0.1:80');
    assert.equal(e.code, code);
    assert.equal(e.syscall, 'connect');
    assert.match(e.message, /tcp:\/\/10\.0\.0\.1:80/);
    assert.ok(statusOf(e.code) < 0);
  }
});

test('codes the table lacks map to their nearest meaning, naming the original', () => {
  assert.equal(tcpError({ code: 'EPIPE' }, 'w').code, 'ECONNRESET');
  const net = tcpError({ code: 'ENETUNREACH' }, 'c');
  assert.equal(net.code, 'EHOSTUNREACH');
  assert.match(net.message, /ENETUNREACH/);
  assert.equal(tcpError({ code: 'ENOTFOUND' }, 'c').code, 'EHOSTUNREACH');
  const odd = tcpError(new Error('weird'), 'c');
  assert.equal(odd.code, 'ERR_FERRY_SYS');
  assert.match(odd.message, /weird/);
});
