/**
 * A session-reset that comes before the connect-reply of its session (ferryd sends the reply
 * first; an SDK must not depend on it to never hang): the reply takes the reset, and the socket
 * fails with ECONNRESET instead of waiting on a peer that is gone; a reply whose segment is gone
 * with the peer fails with that reset, not as a malformed reply. The test plays ferryd by hand on
 * a SEQPACKET socket: HELLO, then the messages of the race in the bad order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { FerryError } from '../errors.js';
import { connect } from '../index.js';
import { decodeCtrl, encodeCtrl } from '../proto/ctrl/index.js';
import { type CtrlMessage, FEATURE, PROTO_VERSION } from '../proto/ctrl/messages.js';
import { eventQueueFootprint, fifoFootprint, initEventQueue, initFifo, Segment } from '../shm/index.js';
import { accept, bindUnix, close, listen, pipe2, recvMsg, ring, sendMsg, unixSocket } from '../sys/index.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-early-reset-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 1024 * 1024;
const CAP = 64;
const FIFO = 4096;

/** ferryd's side of one app's control channel, by hand. */
class FakeFerryd {
  readonly path: string;
  #listen: number;
  #fd = -1;
  #appWake = -1;
  #rx = new Uint8Array(65537);
  readonly #held: number[] = [];

  constructor(name: string) {
    this.path = join(dir, `${name}.sock`);
    this.#listen = unixSocket('seqpacket', { nonblock: true });
    bindUnix(this.#listen, this.path);
    listen(this.#listen, 4);
  }

  /** Accepts the app and answers its HELLO (bounded). */
  async attach(): Promise<void> {
    const end = Date.now() + 5000;
    while (this.#fd < 0 && Date.now() < end) {
      this.#fd = accept(this.#listen, { nonblock: true });
      if (this.#fd < 0) await new Promise((r) => setTimeout(r, 2));
    }
    assert.ok(this.#fd >= 0, 'the app connected');
    const { msg, fds } = await this.recv((m) => m.t === 'hello');
    assert.equal(msg.t, 'hello');
    const roles = msg.t === 'hello' ? msg.fds : [];
    this.#appWake = fds[roles.indexOf('wake')] ?? -1;
    this.#held.push(...fds);
    // Our wake pipe: the app rings its write end; we read the socket directly instead.
    const [wakeR, wakeW] = pipe2({ nonblock: true });
    this.#held.push(wakeR);
    const features = FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE;
    this.send(
      {
        t: 'hello-reply',
        id: msg.id,
        st: 0,
        err: '',
        version: PROTO_VERSION,
        features,
        appId: 1,
        fds: ['wake'],
      },
      [wakeW],
    );
    close(wakeW);
  }

  send(msg: CtrlMessage, fds: number[] = []): void {
    assert.ok(sendMsg(this.#fd, encodeCtrl(msg), fds) >= 0);
    if (this.#appWake >= 0) ring(this.#appWake);
  }

  /** The next message matching `pred` from the app (others dropped), bounded. */
  async recv(pred: (m: CtrlMessage) => boolean): Promise<{ msg: CtrlMessage; fds: number[] }> {
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      const r = recvMsg(this.#fd, this.#rx, 8);
      if (r === null) {
        await new Promise((res) => setTimeout(res, 2));
        continue;
      }
      assert.ok(r.bytes > 0, 'the app closed its channel');
      const msg = decodeCtrl(this.#rx.subarray(0, r.bytes));
      if (pred(msg)) return { msg, fds: r.fds };
      for (const fd of r.fds) close(fd);
    }
    throw new Error('no such message from the app in 5 s');
  }

  close(): void {
    for (const fd of this.#held.splice(0)) close(fd);
    if (this.#fd >= 0) close(this.#fd);
    close(this.#listen);
  }
}

/** A segment with one fifo pair, as ferryd would lay it out; what segment-add and the reply name. */
function pairSegment(id: number) {
  const seg = Segment.create('early-reset-test', SIZE);
  const toApp = seg.alloc(eventQueueFootprint(CAP));
  const toPeer = seg.alloc(eventQueueFootprint(CAP));
  initEventQueue(seg.buffer, toApp, CAP);
  initEventQueue(seg.buffer, toPeer, CAP);
  const tx = seg.alloc(fifoFootprint(FIFO));
  const rx = seg.alloc(fifoFootprint(FIFO));
  initFifo(seg.buffer, tx, FIFO);
  initFifo(seg.buffer, rx, FIFO);
  const add: CtrlMessage = {
    t: 'segment-add',
    id: 0,
    segment: id,
    size: SIZE,
    rxQueueOffset: toApp,
    txQueueOffset: toPeer,
    queueCapacity: CAP,
    maxSlot: CAP - 1,
    fds: ['segment', 'doorbell'],
  };
  const fifos = { segment: id, txOffset: tx, rxOffset: rx, txSize: FIFO, rxSize: FIFO, slot: 0 };
  return { seg, add, fifos };
}

/** Connects through `ferryd`; resolves with what the socket went through within 3 s. */
async function race(
  ferryd: FakeFerryd,
  withSegment: boolean,
): Promise<{ events: string[]; err: FerryError | null; letGo: boolean }> {
  const sock = connect({ uri: 'tcp://127.0.0.1:9', socket: ferryd.path, reattachTimeoutMs: 0 });
  const events: string[] = [];
  let err: FerryError | null = null;
  sock.on('connect', () => events.push('connect'));
  sock.on('error', (e: FerryError) => {
    events.push('error');
    err = e;
  });
  const closed = new Promise<void>((r) => sock.once('close', () => r()));
  await ferryd.attach();
  const { msg } = await ferryd.recv((m) => m.t === 'connect');
  const { seg, add, fifos } = pairSegment(5);
  const [bellR, bellW] = pipe2({ nonblock: true });
  try {
    // The bad order: the session's reset first (its server died), then its segment and reply.
    ferryd.send({ t: 'session-reset', id: 0, session: 77, st: -104, err: 'peer app went away' });
    if (withSegment) ferryd.send(add, [seg.fd, bellW]);
    ferryd.send({
      t: 'connect-reply',
      id: msg.id,
      st: 0,
      err: '',
      session: 77,
      fifos,
      localUri: 'tcp://127.0.0.1:49152',
      remoteUri: 'tcp://127.0.0.1:9',
      fds: [],
      transport: 'ct',
    });
    await Promise.race([closed, new Promise((r) => setTimeout(r, 3000))]);
    // The app lets go of the session it was told of: ferryd hears a reset or close naming it.
    const letGo = await ferryd
      .recv((m) => (m.t === 'reset' || m.t === 'close') && m.session === 77)
      .then(
        () => true,
        () => false,
      );
    return { events, err, letGo };
  } finally {
    sock.destroy();
    close(bellR);
    close(bellW);
    seg.release();
  }
}

test('a reset before its reply: the socket fails with ECONNRESET, it does not wait on a gone peer', async () => {
  const ferryd = new FakeFerryd('bound');
  try {
    const { events, err, letGo } = await race(ferryd, true);
    assert.deepEqual(events, ['connect', 'error'], `events: ${events.join(', ')}`);
    assert.equal((err as FerryError | null)?.code, 'ECONNRESET');
    assert.ok(letGo, 'ferryd heard the app let go of the session');
  } finally {
    ferryd.close();
  }
});

test('a reset before a reply whose segment is gone: ECONNRESET, not a malformed reply', async () => {
  const ferryd = new FakeFerryd('unbound');
  try {
    const { events, err, letGo } = await race(ferryd, false);
    assert.deepEqual(events, ['error'], `events: ${events.join(', ')}`);
    assert.equal((err as FerryError | null)?.code, 'ECONNRESET');
    assert.ok(letGo, 'ferryd heard the app let go of the session');
  } finally {
    ferryd.close();
  }
});
