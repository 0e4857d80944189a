import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { ferryEnv } from './ferry-env.js';
import { resolveHandoff, resolveSocketPath } from './options.js';

test('the connect path reads each FERRY_* variable once per loop turn; a change applies from the next', async () => {
  const saved = { socket: process.env['FERRY_SOCKET'], tcp: process.env['FERRY_TCP_MODE'] };
  try {
    await nextTurn();
    process.env['FERRY_SOCKET'] = '/tmp/ferry-env-a.sock';
    process.env['FERRY_TCP_MODE'] = 'handoff';
    assert.equal(resolveSocketPath(), '/tmp/ferry-env-a.sock');
    assert.equal(resolveHandoff(undefined, 'tcp://127.0.0.1:1'), true);
    process.env['FERRY_SOCKET'] = '/tmp/ferry-env-b.sock';
    process.env['FERRY_TCP_MODE'] = 'relay';
    assert.equal(resolveSocketPath(), '/tmp/ferry-env-a.sock', 'same turn: as first read');
    assert.equal(ferryEnv().tcpMode, 'handoff');
    assert.equal(resolveSocketPath('/explicit.sock'), '/explicit.sock', 'an option still wins');
    await nextTurn();
    assert.equal(resolveSocketPath(), '/tmp/ferry-env-b.sock', 'next turn: read again');
    assert.equal(resolveHandoff(undefined, 'tcp://127.0.0.1:1'), false);
  } finally {
    if (saved.socket === undefined) delete process.env['FERRY_SOCKET'];
    else process.env['FERRY_SOCKET'] = saved.socket;
    if (saved.tcp === undefined) delete process.env['FERRY_TCP_MODE'];
    else process.env['FERRY_TCP_MODE'] = saved.tcp;
  }
});
