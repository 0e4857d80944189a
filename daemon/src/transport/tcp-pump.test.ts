/**
 * TcpPump against a real kernel TCP connection, with the app's side of the fifos driven here and a
 * stand-in for the pair segment (a buffer, and the event posts counted).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FifoProducer, fifoFootprint, initFifo } from '@ferry/sdk/internal';
import { socketFds, tcpPair } from '../testing/net-peer.js';
import type { DaemonSegment } from './daemon-end.js';
import { TcpPump } from './tcp-pump.js';

const SIZE = 4096;

test('an app that sent FIN and then died leaves no socket open: the kernel socket closes', async () => {
  const before = socketFds();
  const { server, client: sock, accepted: peer } = await tcpPair();
  peer.on('error', () => {});
  const remoteGot: Buffer[] = [];
  peer.on('data', (c: Buffer) => remoteGot.push(c));
  const remoteClosed = new Promise<void>((resolve) => peer.once('close', () => resolve()));

  // Two fifos: the app writes the first (ferryd reads it), ferryd writes the second.
  const buffer = new SharedArrayBuffer(2 * fifoFootprint(SIZE));
  const appTx = 0;
  const appRx = fifoFootprint(SIZE);
  initFifo(buffer, appTx, SIZE);
  initFifo(buffer, appRx, SIZE);
  const seg = {
    buffer,
    add() {},
    remove() {},
    post() {},
  } as unknown as DaemonSegment;
  const ref = { segment: 1, slot: 1, rxOffset: appTx, rxSize: SIZE, txOffset: appRx, txSize: SIZE };
  let pump: TcpPump | undefined;
  // 'close', or the first 'error': a socket whose reset failed never closes.
  const outcome = new Promise<string>((resolve) => {
    sock.once('error', (err: NodeJS.ErrnoException) => resolve(`${err.syscall} ${err.code}`));
    sock.once('close', () => resolve('close'));
  });
  pump = new TcpPump(sock, seg, ref, {
    onRemoteFin() {},
    // The app's death noticed in the same turn as its FIN, after end() asked for the shutdown (as
    // when its wake pipe's hangup is read in the same poll as the data doorbell).
    onAppFin: () => queueMicrotask(() => pump?.abort()),
    onRemoteReset() {},
    onDone() {},
  });
  pump.start();
  const app = new FifoProducer(buffer, appTx, SIZE);
  assert.equal(app.enqueue(Buffer.from('last words')), 10);
  app.fin();
  pump.onSlotEvent();

  assert.equal(await outcome, 'close');
  peer.end();
  await remoteClosed;
  assert.equal(Buffer.concat(remoteGot).toString(), 'last words');
  await new Promise<void>((resolve) => server.close(() => resolve()));
  assert.equal(socketFds(), before, 'no descriptor left open');
});
