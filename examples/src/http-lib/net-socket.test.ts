/**
 * FerryNetSocket against node:net's behaviour where HTTP and drivers depend on it: idle timeouts,
 * close and its hadError, what the peer sees when a socket is destroyed (FIN after everything was
 * read, a reset with unread data), and server bookkeeping (getConnections, close).
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { after, before, test } from 'node:test';
import { type DaemonHandle, startDaemon } from '@ferry/daemon/testing';
import { connectThroughFerry, FerryNetSocket, listenThroughFerry } from '@ferry/sdk/http';
import { eventually } from '../testing/eventually.js';

let daemon: DaemonHandle;
let server: net.Server;
let uri = '';
const accepted: net.Socket[] = [];

before(async () => {
  daemon = await startDaemon();
  process.env['FERRY_SOCKET'] = daemon.socket;
  server = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  listenThroughFerry(server, 'tcp://127.0.0.1:0');
  await once(server, 'listening');
  uri = `tcp://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
});

after(async () => {
  for (const s of accepted) s.destroy();
  await new Promise((r) => server.close(r));
  await daemon.stop();
});

/** 'close' (events.once would reject on the 'error' these tests expect first). */
const closed = (s: net.Socket) => new Promise<void>((r) => s.once('close', () => r()));

async function pair(): Promise<{ client: FerryNetSocket; peer: net.Socket }> {
  const n = accepted.length;
  const client = connectThroughFerry(new FerryNetSocket(), uri, {});
  await once(client, 'connect');
  while (accepted.length === n) await new Promise((r) => setImmediate(r));
  return { client, peer: accepted[accepted.length - 1] as net.Socket };
}

test('a real net.Socket: instanceof, addresses, setTimeout emits timeout when idle', async () => {
  const { client, peer } = await pair();
  assert.ok(client instanceof net.Socket && peer instanceof net.Socket);
  assert.equal(client.remotePort, (server.address() as net.AddressInfo).port);
  assert.equal(peer.remoteAddress, '127.0.0.1');
  client.setTimeout(50);
  await once(client, 'timeout');
  assert.equal(client.timeout, 50);
  client.destroy();
  peer.destroy();
});

test('end both ways: end, finish, close(false) on both sides; server counts drop', async () => {
  const { client, peer } = await pair();
  const count = () => new Promise<number>((r) => server.getConnections((_e, c) => r(c)));
  assert.ok((await count()) >= 1);
  const before = await count();
  peer.on('data', (d: Buffer) => peer.end(d));
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.end('ping');
  const [[hadError], [peerHadError]] = await Promise.all([once(client, 'close'), once(peer, 'close')]);
  assert.equal(Buffer.concat(got).toString(), 'ping');
  assert.equal(hadError, false);
  assert.equal(peerHadError, false);
  assert.equal(await count(), before - 1);
});

test('destroy() after reading everything: the peer sees end (FIN), not a reset', async () => {
  const { client, peer } = await pair();
  const events: string[] = [];
  peer.on('end', () => events.push('end'));
  peer.on('error', (e: Error & { code?: string }) => events.push(`error ${e.code}`));
  peer.resume();
  client.destroy();
  await closed(peer);
  assert.deepEqual(events, ['end']);
});

test('destroy() with unread data: the peer sees ECONNRESET, as with a kernel RST', async () => {
  const { client, peer } = await pair();
  const errors: string[] = [];
  peer.on('error', (e: Error & { code?: string }) => errors.push(String(e.code)));
  peer.resume();
  client.pause();
  peer.write('unread');
  // Paused: the bytes wait in the socket, unread.
  await eventually(async () => client.readableLength > 0, 10_000, 'the bytes to arrive');
  client.destroy();
  await closed(peer);
  assert.deepEqual(errors, ['ECONNRESET']);
});

test('resetAndDestroy() resets', async () => {
  const { client, peer } = await pair();
  const errors: string[] = [];
  peer.on('error', (e: Error & { code?: string }) => errors.push(String(e.code)));
  client.resetAndDestroy();
  await closed(peer);
  assert.deepEqual(errors, ['ECONNRESET']);
});
