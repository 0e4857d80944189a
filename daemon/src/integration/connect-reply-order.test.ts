/**
 * A connect's reply reaches the client before anything else about its session. ferryd may read
 * the server's channel while it handles the connect (a fast-connect pool top-up that finds the
 * segment full reads both apps' pending notices): what it reads there can be the server leaving,
 * which resets the new session and deletes its segment. A client told of those first dropped the
 * reset of a session it did not know yet, then bound the session (a socket never told its peer
 * died: app-death's "server killed while clients are connecting", about 1 run in 30) or found its
 * segment released (ERR_FERRY_PROTO_MALFORMED). Here the server leaves by a detach it sends
 * without ringing ferryd, so ferryd reads it exactly there, on every run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CtrlMessage, FEATURE } from '@ferry/sdk/internal';
import { type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { closeAll, RawApp } from '../testing/hostile.js';

const MiB = 1024 * 1024;
const FAST = FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE | FEATURE.FAST_CONNECT;
const dir = mkdtempSync(join(tmpdir(), 'ferry-reply-order-'));
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  closeAll();
  for (const r of running.reverse()) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A ferryd whose segments hold three pairs of 1 MiB fifos: the first connect's pool (4 pairs
 * wanted) finds the segment full, so its top-up reads the apps' channels.
 */
async function daemon(): Promise<DaemonHandle> {
  const file = join(dir, `ferryd-${running.length}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      fastConnectPool: 4,
      segmentSizeBytes: 7 * MiB,
      maxFifoSizeBytes: MiB,
      defaultFifoSizeBytes: MiB,
    }),
  );
  const d = await startDaemon(['--config', file]);
  running.push(d);
  return d;
}

/** A raw server listening on a port of its own, that has sent a detach ferryd has not read. */
async function leavingServer(d: DaemonHandle): Promise<string> {
  const srv = await RawApp.attach(d.socket, 'leaving-server', FAST);
  const l = await srv.request({ t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0' });
  assert.equal(l.t, 'listen-reply');
  // Not rung: ferryd reads it only when something drains this channel (the top-up below).
  srv.send({ t: 'detach', id: 7 }, [], false);
  return l.t === 'listen-reply' ? l.uri : '';
}

async function counts(d: DaemonHandle): Promise<string> {
  const s = await d.stats();
  return JSON.stringify({ sessions: s['sessions'], segments: s['segments'], listeners: s['listeners'] });
}

/** Waits (bounded) until ferryd holds no session, segment or listener. */
async function nothingHeld(d: DaemonHandle): Promise<void> {
  await eventually(
    async () => (await counts(d)) === JSON.stringify({ sessions: 0, segments: 0, listeners: 0 }),
    10_000,
    'ferryd holds no session, segment or listener',
  ).catch(async (e: Error) => {
    throw new Error(`${e.message}: ${await counts(d)}`);
  });
}

test('the connect-reply comes before the session-reset and segment-del of the server that left during the connect', async () => {
  const d = await daemon();
  const uri = await leavingServer(d);
  const cli = await RawApp.attach(d.socket, 'client', FAST);
  const reply = await cli.request({ t: 'connect', id: 0, uri, rxFifoSize: 0, txFifoSize: 0 });
  assert.equal(reply.t, 'connect-reply');
  if (reply.t !== 'connect-reply') return;
  // Made before ferryd read the detach (else this test shows nothing: it relies on that).
  assert.equal(reply.st, 0, `the connect was answered after the server left: ${JSON.stringify(reply)}`);
  const seg = reply.fifos?.segment ?? -1;
  // next() read messages in order up to the reply: what came before it is still in the inbox.
  const early = cli.inbox.filter(
    (m: CtrlMessage) =>
      (m.t === 'session-reset' && m.session === reply.session) ||
      (m.t === 'segment-del' && m.segment === seg),
  );
  assert.deepEqual(early, [], 'told of the end of a session before its reply');
  const reset = await cli.next((m) => m.t === 'session-reset' && m.session === reply.session);
  assert.equal(reset.t === 'session-reset' ? reset.st : 0, -104, 'ECONNRESET');
  await cli.next((m) => m.t === 'segment-del' && m.segment === seg);
  // The client lets go as an app does: ferryd keeps nothing of the server.
  cli.send({ t: 'close', id: 0, session: reply.session });
  cli.send({ t: 'segment-released', id: 0, segment: seg });
  await nothingHeld(d);
  cli.close();
});

test('an SDK client connecting while the server leaves gets a clear error and leaves nothing behind', async () => {
  const d = await daemon();
  const uri = await leavingServer(d);
  const user = await startApp(d.socket);
  running.push({ stop: () => user.kill() });
  const r = await user.call({ op: 'connect', tag: 'c', uri, timeout: 5000 }, 10_000);
  if (r['ok']) {
    // Connected, then reset: never a socket left open to a server that is gone.
    const e = await user.waitFor(
      (e) => (e.event === 'error' || e.event === 'close') && e.tag === 'c',
      10_000,
    );
    assert.equal(e.event === 'error' ? e['code'] : 'ECONNRESET', 'ECONNRESET', JSON.stringify(e));
  } else {
    assert.ok(['ECONNREFUSED', 'ECONNRESET'].includes(String(r['code'])), JSON.stringify(r));
  }
  await nothingHeld(d);
});
