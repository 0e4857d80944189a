import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { socketFds, tcpPair } from '../testing/net-peer.js';
import { resetSocket } from './reset-socket.js';

/** 'close', or the first 'error' (a socket whose reset failed never closes). */
function closeOrError(s: Socket): Promise<Error | null> {
  return new Promise((resolve) => {
    s.once('error', (err) => resolve(err));
    s.once('close', () => resolve(null));
  });
}

test('a socket whose shutdown is pending (end() just called) is closed, not leaked', async () => {
  const before = socketFds();
  const { server, client, accepted } = await tcpPair();
  accepted.on('error', () => {});
  const peerEnded = new Promise<void>((resolve) => accepted.once('end', resolve));
  accepted.resume();
  client.write('last bytes');
  client.end();
  // As the pump does when an app's FIN and its death are read in one turn: the write completed,
  // node asked libuv to shut down, and the FIN is not out yet.
  await new Promise<void>((resolve) => process.nextTick(resolve));
  const outcome = closeOrError(client);
  resetSocket(client);
  assert.equal(await outcome, null, 'the socket closed without an error');
  await peerEnded;
  accepted.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(socketFds(), before, 'no descriptor left open');
});

test('a socket that has not ended is reset: the remote sees ECONNRESET', async () => {
  const { server, client, accepted } = await tcpPair();
  const seen = new Promise<string | undefined>((resolve) => {
    accepted.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
    accepted.once('end', () => resolve('end'));
  });
  accepted.resume();
  client.write('bytes');
  await new Promise((r) => setTimeout(r, 20));
  const outcome = closeOrError(client);
  resetSocket(client);
  assert.equal(await outcome, null);
  assert.equal(await seen, 'ECONNRESET');
  accepted.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
