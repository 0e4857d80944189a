/** The node:net test peers: closeServer is bounded even when a peer never lets go. */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { closeServer, netServer } from './net-peer.js';

test('closeServer ends a connection its peer keeps open after the grace, and resolves', async () => {
  const { server, port } = await netServer(() => {});
  const client = connect(port, '127.0.0.1');
  client.on('error', () => {});
  try {
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
    const ended = new Promise<void>((resolve) => client.once('close', () => resolve()));
    // The client never ends: without the grace, server.close() would wait for it forever.
    const outcome = await Promise.race([
      closeServer(server, 100).then(() => 'closed'),
      new Promise<string>((resolve) => setTimeout(() => resolve('still waiting after 5 s'), 5000).unref()),
    ]);
    assert.equal(outcome, 'closed');
    await ended;
  } finally {
    client.destroy();
  }
});
