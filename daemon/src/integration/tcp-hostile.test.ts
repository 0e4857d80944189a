/** A raw app that misuses its TCP segment: ferryd resets its sessions and frees the memory. */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import {
  type CtrlMessage,
  close,
  connectUnix,
  decodeCtrl,
  encodeCtrl,
  FEATURE,
  PROTO_MIN_VERSION,
  PROTO_VERSION,
  pipe2,
  recvMsg,
  ring,
  sendMsg,
  unixSocket,
} from '@ferry/sdk/internal';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { collect, netConnect } from '../testing/net-peer.js';

let d: DaemonHandle;
const fds: number[] = [];

before(async () => {
  d = await startDaemon();
});

after(async () => {
  for (const fd of fds) close(fd);
  await d?.stop();
});

/** Waits (bounded) for the next message; its fds are closed at once, or kept in `keep`. */
async function next(fd: number, keep: number[] | null = null, timeoutMs = 5000): Promise<CtrlMessage> {
  const buf = new Uint8Array(65536);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const r = recvMsg(fd, buf, 4);
    if (r) {
      for (const f of r.fds) {
        if (keep) keep.push(f);
        else close(f);
      }
      if (r.bytes === 0) throw new Error('ferryd closed the channel');
      return decodeCtrl(buf.slice(0, r.bytes));
    }
    await new Promise((res) => setTimeout(res, 5));
  }
  throw new Error('no message from ferryd');
}

test('segment-released for a segment ferryd never deleted: TCP sessions reset, segment freed', async () => {
  const base = await d.stats();
  const ch = unixSocket('seqpacket', { nonblock: true });
  fds.push(ch);
  connectUnix(ch, d.socket);
  const [wakeR, wakeW] = pipe2({ nonblock: true });
  const [bellR, bellW] = pipe2({ nonblock: true });
  fds.push(wakeR, bellR);
  sendMsg(
    ch,
    encodeCtrl({
      t: 'hello',
      id: 1,
      version: PROTO_VERSION,
      minVersion: PROTO_MIN_VERSION,
      features: FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE,
      name: 'raw',
      namespace: 'default',
      token: '',
      fds: ['wake', 'doorbell'],
    }),
    [wakeW, bellW],
  );
  close(wakeW);
  close(bellW);
  // ferryd's wake pipe: held for as long as we live (its EOF means we died), rung after each send.
  const wake: number[] = [];
  assert.equal((await next(ch, wake)).t, 'hello-reply');
  fds.push(...wake);
  const send = (msg: CtrlMessage) => {
    sendMsg(ch, encodeCtrl(msg));
    for (const w of wake) ring(w);
  };
  send({ t: 'listen', id: 2, uri: 'tcp://127.0.0.1:0' });
  const lr = await next(ch);
  assert.ok(lr.t === 'listen-reply' && lr.st === 0);
  const port = Number(lr.uri.split(':').pop());

  const sock = await netConnect(port);
  const got = collect(sock);
  const add = await next(ch);
  assert.equal(add.t, 'segment-add');
  const acc = await next(ch);
  assert.ok(acc.t === 'accepted' && acc.transport === 'tcp');
  assert.equal(Number((await d.stats())['daemonSegments']), 1);

  send({ t: 'segment-released', id: 3, segment: acc.fifos.segment });
  assert.ok((await next(ch)).t === 'status');
  const how = await Promise.race([
    got.then((r) => r.how),
    new Promise<string>((resolve) => setTimeout(() => resolve('no reset within 5 s'), 5000).unref()),
  ]);
  assert.equal(how, 'ECONNRESET');
  await eventually(
    async () => {
      const s = await d.stats();
      return s['sessions'] === base['sessions'] && s['segments'] === 0 && s['daemonSegments'] === 0;
    },
    5000,
    'the session and both sides of the segment to go',
  );
});
