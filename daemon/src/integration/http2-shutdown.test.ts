/**
 * http2 over an SDK socket when the peer's FIN comes in while the session has a write scheduled.
 * http2 wraps a socket with no native handle in node's JSStreamSocket; when the peer's FIN makes
 * the wrapper end itself, its shutdown waits for our end() callback, and a write from its native
 * owner meanwhile is an ERR_INTERNAL_ASSERTION thrown from an immediate: uncaught, a crash of the
 * app. The http2 session's writes are native immediates, so end()'s callback must come before the
 * check phase. flake4 caught this at load 4-7 in http-parser-handle's http2 test; here the write
 * is scheduled (a ping) just before the FIN is delivered, every run.
 * In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http2 from 'node:http2';
import { after, before, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let ferry: Server;
let uri = '';
const accepted: Socket[] = [];

/** An empty SETTINGS frame: all a server preface needs. */
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
/** The client's connection preface and its first SETTINGS frame come first; 24 + 9 bytes at least. */
const PREFACE_BYTES = 24 + 9;

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  // A raw server: its preface, then a FIN once the client's preface is in.
  ferry = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.write(SETTINGS);
    let got = 0;
    s.on('data', (b: Buffer) => {
      got += b.length;
      if (got >= PREFACE_BYTES && !s.writableEnded) s.end();
    });
  });
  await new Promise<void>((resolve) => ferry.listen('tcp://127.0.0.1:0', resolve));
  uri = ferry.address()?.uri ?? '';
});

after(async () => {
  for (const s of accepted) s.destroy();
  await new Promise<void>((resolve) => ferry.close(() => resolve()));
  await d.stop();
});

test('end() calls back before the check phase: an immediate queued first runs after it', async () => {
  const s = connect({ uri }).on('error', () => {});
  await once(s, 'connect');
  const order: string[] = [];
  setImmediate(() => order.push('immediate'));
  s.end(() => order.push('ended'));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['ended', 'immediate']);
  s.destroy();
});

test('http2 session: the peer’s FIN while a write is scheduled does not crash the app', async () => {
  for (let round = 0; round < 5; round++) {
    let session: http2.ClientHttp2Session | null = null;
    let pinged = false;
    const sock = connect({ uri }).on('error', () => {});
    // Ours runs before the wrapper's 'end' listener: the session schedules its ping's write (a
    // native immediate), then the wrapper sees EOF and ends, and its shutdown waits for our end().
    sock.once('end', () => {
      if (session && !session.destroyed) pinged = session.ping(() => {});
    });
    session = http2.connect('http://ferry.invalid', { createConnection: () => sock });
    session.on('error', () => {});
    await once(session, 'close');
    assert.ok(pinged, `round ${round}: the ping was sent while the FIN came in`);
    // Whatever became of the ping, the app is alive: a few loop turns for a late immediate.
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }
});
