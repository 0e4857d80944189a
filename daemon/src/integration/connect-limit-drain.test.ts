/**
 * A server at its session limit: before refusing a connect, ferryd reads the channels of the
 * server and of its sessions' peers (close notices go lazily), and what it reads there can be the
 * server leaving. The connect is then refused: ferryd opens nothing to an app that is gone (a
 * session it would never reset, a segment it would never announce or free). The server leaves by
 * a detach sent without ringing ferryd, so ferryd reads it exactly in that check, on every run.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type CtrlMessage, FEATURE, parseUri } from '@ferry/sdk/internal';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { closeAll, RawApp } from '../testing/hostile.js';

const STREAM = FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE;
const dir = mkdtempSync(join(tmpdir(), 'ferry-limit-drain-'));
const running: { stop(): Promise<void> }[] = [];
after(async () => {
  closeAll();
  for (const r of running.reverse()) await r.stop();
  rmSync(dir, { recursive: true, force: true });
});

const connect = (uri: string): CtrlMessage => ({ t: 'connect', id: 0, uri, rxFifoSize: 0, txFifoSize: 0 });

/**
 * A ferryd (maxSessionsPerApp 2) and a raw server at its limit that has closed both its sessions
 * and detached, none of it read yet. The client closed its ends (read at once: the request after
 * them is answered, so they were); the server did not ring ferryd, which reads its closes and
 * detach only when a limit check drains the server's channel: the closes free both sessions
 * (room again), and the detach ends the server.
 */
async function leavingAtLimit(): Promise<{ d: DaemonHandle; uri: string; client: RawApp }> {
  const file = join(dir, `ferryd-${running.length}.json`);
  writeFileSync(file, JSON.stringify({ maxSessionsPerApp: 2, fastConnectPool: 0 }));
  const d = await startDaemon(['--config', file]);
  running.push(d);
  const srv = await RawApp.attach(d.socket, 'server', STREAM);
  const l = await srv.request({ t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0' });
  const uri = l.t === 'listen-reply' ? l.uri : '';
  const client = await RawApp.attach(d.socket, 'client-1', STREAM);
  const mine: number[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await client.request(connect(uri));
    assert.ok(r.t === 'connect-reply' && r.st === 0, JSON.stringify(r));
    mine.push(r.session);
  }
  const theirs: number[] = [];
  for (let i = 0; i < 2; i++) {
    const a = await srv.next((m) => m.t === 'accepted');
    if (a.t === 'accepted') theirs.push(a.session);
  }
  for (const session of mine) client.send({ t: 'close', id: 0, session });
  const barrier = await client.request({ t: 'unlisten', id: 0, listener: 999_999 });
  assert.equal(barrier.t, 'status');
  for (const session of theirs) srv.send({ t: 'close', id: 0, session }, [], false);
  srv.send({ t: 'detach', id: 7 }, [], false);
  return { d, uri, client };
}

/** The client lets go of its segment with the server; then ferryd holds nothing. */
async function nothingLeft(d: DaemonHandle, client: RawApp): Promise<void> {
  const del = await client.next((m) => m.t === 'segment-del');
  if (del.t === 'segment-del') client.send({ t: 'segment-released', id: 0, segment: del.segment });
  let last = '';
  await eventually(
    async () => {
      const s = await d.stats();
      last = JSON.stringify({ sessions: s['sessions'], segments: s['segments'], listeners: s['listeners'] });
      return last === JSON.stringify({ sessions: 0, segments: 0, listeners: 0 });
    },
    10_000,
    'ferryd holds no session, segment or listener',
  ).catch((e: Error) => {
    throw new Error(`${e.message}: ${last}`);
  });
}

test('a server that leaves while ferryd checks its session limit: the connect is refused, nothing is left', async () => {
  const { d, uri, client } = await leavingAtLimit();
  const c2 = await RawApp.attach(d.socket, 'client-2', STREAM);
  const r = await c2.request(connect(uri));
  assert.equal(r.t, 'connect-reply');
  assert.equal(r.t === 'connect-reply' ? r.st : 0, -111, `ECONNREFUSED: ${JSON.stringify(r)}`);
  await nothingLeft(d, client);
});

test('the same for a TCP connection to its listener: reset, nothing is left', async () => {
  const { d, uri, client } = await leavingAtLimit();
  const { port } = parseUri(uri);
  const sock = netConnect(port, '127.0.0.1');
  const end = await new Promise<string>((resolve) => {
    sock.on('error', (e: Error & { code?: string }) => resolve(e.code ?? 'error'));
    sock.on('close', () => resolve('close'));
    sock.setTimeout(10_000, () => resolve('timeout'));
  });
  sock.destroy();
  assert.ok(['ECONNRESET', 'close'].includes(end), `the kernel connection ended (${end})`);
  await nothingLeft(d, client);
});
