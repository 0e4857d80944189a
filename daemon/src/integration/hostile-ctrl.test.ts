/** Raw SEQPACKET clients that send garbage: each gets a clear error, ferryd keeps serving. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import {
  close,
  connectUnix,
  decodeCtrl,
  encodeCtrl,
  recvMsg,
  sendMsg,
  unixSocket,
} from '@ferry/sdk/internal';
import { type AppHandle, type DaemonHandle, startApp, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let echo: AppHandle;
let user: AppHandle;
let uri = '';

before(async () => {
  d = await startDaemon();
  echo = await startApp(d.socket);
  user = await startApp(d.socket);
  uri = String((await echo.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' }))['uri']);
});

after(async () => {
  await echo?.kill();
  await user?.kill();
  await d?.stop();
});

function rawClient(): number {
  const fd = unixSocket('seqpacket', { nonblock: true });
  connectUnix(fd, d.socket);
  return fd;
}

/** Waits (bounded) for one datagram; null on EOF. */
async function recvOne(fd: number, timeoutMs = 5000): Promise<Uint8Array | null> {
  const buf = new Uint8Array(65536);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = recvMsg(fd, buf, 4);
    if (r) {
      for (const f of r.fds) close(f);
      return r.bytes === 0 ? null : buf.slice(0, r.bytes);
    }
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error('no reply from ferryd');
}

async function echoStillWorks(tag: string): Promise<void> {
  await user.ok({ op: 'connect', tag, uri });
  const sent = await user.ok({ op: 'send', tag, bytes: 100_000, seed: 42, chunk: 4096, end: true });
  const end = await user.waitFor((e) => e.event === 'end' && e.tag === tag);
  assert.equal(end['sha256'], sent['sha256']);
}

test('random bytes get an error reply and the channel closes; others keep working', async () => {
  for (let i = 0; i < 20; i++) {
    const fd = rawClient();
    sendMsg(fd, randomBytes(1 + ((i * 37) % 500)));
    const reply = await recvOne(fd);
    assert.ok(reply, 'ferryd answered before closing');
    const msg = decodeCtrl(reply);
    assert.equal(msg.t, 'error');
    assert.ok('st' in msg && msg.st < 0);
    assert.equal(await recvOne(fd), null, 'then closed the channel');
    close(fd);
  }
  await echoStillWorks('after-garbage');
});

test('a request before hello is refused with ERR_FERRY_NOT_ATTACHED semantics', async () => {
  const fd = rawClient();
  sendMsg(fd, encodeCtrl({ t: 'connect', id: 7, uri, rxFifoSize: 0, txFifoSize: 0 }));
  const reply = await recvOne(fd);
  assert.ok(reply);
  const msg = decodeCtrl(reply);
  assert.equal(msg.t, 'hello-reply');
  assert.ok('st' in msg && msg.st < 0);
  close(fd);
});

test('an oversized datagram is refused as too large', async () => {
  const fd = rawClient();
  sendMsg(fd, new Uint8Array(60_000));
  const reply = await recvOne(fd);
  assert.ok(reply);
  const msg = decodeCtrl(reply);
  assert.equal(msg.t, 'error');
  assert.match('err' in msg ? msg.err : '', /large/i);
  close(fd);
});

test('a hello with an incompatible version is refused with a clear error', async () => {
  const fd = rawClient();
  sendMsg(
    fd,
    encodeCtrl({
      t: 'hello',
      id: 1,
      version: 99,
      minVersion: 99,
      features: 0,
      name: 'future',
      namespace: 'default',
      token: '',
      fds: [],
    }),
  );
  const reply = await recvOne(fd);
  assert.ok(reply);
  const msg = decodeCtrl(reply);
  assert.equal(msg.t, 'hello-reply');
  assert.match('err' in msg ? msg.err : '', /version|speaks/i);
  close(fd);
  await echoStillWorks('after-version');
  const stats = await d.stats();
  const ctrl = stats['ctrl'] as { badMessages: number; helloRejected: number };
  assert.ok(ctrl.badMessages >= 21);
  assert.ok(ctrl.helloRejected >= 2);
});
