/**
 * Datagram frames written by hand into a relay fifo (no SDK), per docs/control-protocol.md: a
 * well-formed frame goes out to a node:dgram peer, a frame without a destination is dropped, and a
 * frame that breaks the framing resets the relay, frees the endpoint and leaves ferryd calm.
 */
import assert from 'node:assert/strict';
import { createSocket, type RemoteInfo } from 'node:dgram';
import { after, before, test } from 'node:test';
import { EventQueueProducer, FifoProducer, ring } from '@ferry/sdk/internal';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { closeAll, cpuSecondsOver, DATAGRAM_FEATURES, RawApp } from '../testing/hostile.js';

let d: DaemonHandle;

before(async () => {
  d = await startDaemon();
});

after(async () => {
  await d?.stop();
  closeAll();
});

/** A frame as the protocol document lays it out, built here byte by byte. */
function frame(payload: Buffer, dest: { ip: number[]; port: number } | null, lengthField?: number): Buffer {
  const h = Buffer.alloc(24);
  h.writeUInt32LE(lengthField ?? payload.length, 0);
  if (dest) {
    h.writeUInt16LE(dest.port, 4);
    h[6] = 4;
    Buffer.from(dest.ip).copy(h, 8);
  }
  return Buffer.concat([h, payload]);
}

test('hand-written relay frames: good ones are sent, a bad one resets the relay and frees the endpoint', async () => {
  const base = await d.stats();
  const peer = createSocket('udp4');
  const got: { msg: Buffer; rinfo: RemoteInfo }[] = [];
  peer.on('message', (msg, rinfo) => got.push({ msg, rinfo }));
  await new Promise<void>((resolve) => peer.bind(0, '127.0.0.1', resolve));
  const peerPort = peer.address().port;
  try {
    const app = await RawApp.attach(d.socket, 'raw', DATAGRAM_FEATURES);
    app.send({ t: 'dgram-bind', id: 2, uri: 'udp://127.0.0.1:0', rxFifoSize: 4096, txFifoSize: 4096 });
    const add = await app.next();
    assert.ok(add.t === 'segment-add', JSON.stringify(add));
    const reply = await app.next();
    assert.ok(reply.t === 'dgram-bind-reply' && reply.st === 0 && reply.fifos, JSON.stringify(reply));
    const port = Number(reply.uri.split(':').pop());
    // RawApp mapped the segment on the way; it releases it (and the doorbell) on close.
    const mapped = app.segments.get(add.segment);
    assert.ok(mapped);
    const { segment: seg, peerDoorbellFd: bellFd } = mapped;
    const tx = new FifoProducer(seg.buffer, reply.fifos.txOffset, reply.fifos.txSize);
    const events = new EventQueueProducer(seg.buffer, add.txQueueOffset, add.queueCapacity);
    const post = (bytes: Buffer) => {
      assert.equal(tx.enqueueAtomic([bytes]), bytes.length);
      events.push(reply.fifos?.slot ?? 0);
      ring(bellFd);
    };

    // A frame with no destination is dropped; the ones around it go out, boundaries kept.
    const to = { ip: [127, 0, 0, 1], port: peerPort };
    post(
      Buffer.concat([
        frame(Buffer.from('one'), to),
        frame(Buffer.from('lost'), null),
        frame(Buffer.alloc(0), to),
      ]),
    );
    post(frame(Buffer.from('three'), to));
    await eventually(async () => got.length >= 3, 10_000, 'the peer to get three datagrams');
    assert.deepEqual(
      got.map((g) => g.msg.toString()),
      ['one', '', 'three'],
    );
    assert.ok(
      got.every((g) => g.rinfo.port === port),
      'sent from the bound port',
    );

    // A length beyond the limit: ferryd resets the relay and lets the endpoint go.
    post(frame(Buffer.alloc(8), to, 70_000));
    const reset = await app.next();
    assert.ok(reset.t === 'session-reset' && reset.session === reply.session, JSON.stringify(reset));
    assert.match(reset.err, /datagram length/);
    await eventually(
      async () => (await d.stats())['listeners'] === base['listeners'],
      5000,
      'the endpoint to be gone',
    );
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => probe.close(() => resolve()));

    const pid = d.proc.pid ?? 0;
    const used = await cpuSecondsOver(pid, 1000);
    assert.ok(used < 0.3, `ferryd used ${used.toFixed(2)} s of CPU in 1 s after the bad frame`);
    app.send({ t: 'close', id: 3, session: reply.session });
    assert.equal((await app.next()).t, 'status');
    app.send({ t: 'ping', id: 4 });
    assert.equal((await app.next()).t, 'pong');
    app.close();
  } finally {
    await new Promise<void>((resolve) => peer.close(() => resolve()));
  }
});
