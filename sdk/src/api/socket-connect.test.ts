import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Attachment } from '../app/attachment.js';
import type { FastSession } from '../app/fast-pools.js';
import { type Connectable, takeFast } from './socket-connect.js';

/** A socket and a pool that record what a fast connect does, in order. */
function fakes(onHand: boolean) {
  const order: string[] = [];
  const fast = {
    session: { segment: { ringPendingNow: () => order.push('ring') } },
    local: { scheme: 'tcp', host: '127.0.0.1', port: 1 },
    remote: { scheme: 'tcp', host: '127.0.0.1', port: 2 },
  } as unknown as FastSession;
  const att = { pools: { take: () => (onHand ? fast : null) } } as unknown as Attachment;
  const sock = {
    _attach: () => order.push('attach'),
    emit: (ev: string) => order.push(ev) > 0,
    onWritable: () => order.push('write'),
    _start: () => order.push('start'),
  } as unknown as Connectable;
  return { order, att, sock };
}

test('a fast connect rings the server once its first bytes are in the fifo, not at the end of the turn', () => {
  const { order, att, sock } = fakes(true);
  assert.equal(takeFast(sock, att, 'tcp://127.0.0.1:2'), true);
  assert.deepEqual(order, ['attach', 'connect', 'write', 'ready', 'start', 'ring']);
});

test('no pair on hand: nothing is bound and nobody is rung', () => {
  const { order, att, sock } = fakes(false);
  assert.equal(takeFast(sock, att, 'tcp://127.0.0.1:2'), false);
  assert.deepEqual(order, []);
});
