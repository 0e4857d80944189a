import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fifoFootprint, initFifo } from '../shm/fifo.js';
import { FifoConsumer } from '../shm/fifo-consumer.js';
import { FifoProducer } from '../shm/fifo-producer.js';
import type { AppSegment } from './app-segment.js';
import { AppSession, type SessionOwner } from './app-session.js';

const SIZE = 128 * 1024;

/** A session over two fifos in a plain buffer; the segment only counts posts. */
function makeSession(daemonPeer = false) {
  const txOffset = 64;
  const rxOffset = txOffset + fifoFootprint(SIZE);
  const buffer = new SharedArrayBuffer(rxOffset + fifoFootprint(SIZE));
  initFifo(buffer, txOffset, SIZE);
  initFifo(buffer, rxOffset, SIZE);
  const posts: number[] = [];
  const segment = {
    buffer,
    daemonPeer,
    add() {},
    remove() {},
    post(slot: number) {
      posts.push(slot);
    },
    postSoon(slot: number) {
      posts.push(-slot);
    },
  } as unknown as AppSegment;
  const session = new AppSession(1, segment, {
    segment: 1,
    txOffset,
    rxOffset,
    txSize: SIZE,
    rxSize: SIZE,
    slot: 3,
  });
  const owner: SessionOwner = { onReadable() {}, onWritable() {}, onFailure() {} };
  session.open(owner);
  // The peer's end of our tx fifo, asleep (armed) as a reader that waits for data.
  const peer = new FifoConsumer(buffer, txOffset, SIZE);
  // The peer's end of our rx fifo.
  const peerTx = new FifoProducer(buffer, rxOffset, SIZE);
  return { session, posts, peer, peerTx };
}

test('held posts: a header and a body written together ring a sleeping reader once, after the body', () => {
  const { session, posts, peer } = makeSession();
  const body = new Uint8Array(64 * 1024).fill(0x61);
  const header = 'HTTP/1.1 200 OK\r\ncontent-length: 65536\r\n\r\n';

  assert.equal(peer.armData(), false);
  assert.equal(session.writeString(header, 'latin1', header.length), header.length);
  assert.deepEqual(posts, [3], 'unheld: rung after the header, before the body is there');
  assert.equal(session.write(body), body.length);
  peer.drop(peer.readable());

  posts.length = 0;
  assert.equal(peer.armData(), false);
  session.holdPosts();
  assert.equal(session.writeString(header, 'latin1', header.length), header.length);
  assert.equal(session.write(body), body.length);
  assert.deepEqual(posts, [], 'nothing told while held');
  session.releasePosts();
  assert.deepEqual(posts, [3], 'one post after the last write');
  assert.equal(peer.readable(), header.length + body.length, 'the whole message is there when rung');

  // Released with nothing written: no post; a reader that did not arm: no post either.
  posts.length = 0;
  session.holdPosts();
  session.releasePosts();
  peer.drop(peer.readable());
  session.holdPosts();
  session.write(body);
  session.releasePosts();
  assert.deepEqual(posts, [], 'the reader was not asleep');
});

test('held posts are told before the writer waits for space (no sleeping pair with bytes in the fifo)', () => {
  const { session, posts, peer } = makeSession();
  assert.equal(peer.armData(), false);
  session.holdPosts();
  const big = new Uint8Array(SIZE + 100);
  assert.equal(session.write(big), SIZE, 'partial: the fifo is full');
  assert.deepEqual(posts, []);
  assert.equal(session.waitForSpace(), false);
  assert.deepEqual(posts, [3], 'the reader hears of the full fifo before the writer sleeps');
  // Writes after that (still inside the caller's held region) tell the reader as usual.
  peer.drop(SIZE);
  assert.equal(peer.armData(), false);
  session.write(new Uint8Array(10));
  assert.deepEqual(posts, [3, 3]);
  session.releasePosts();
  assert.deepEqual(posts, [3, 3]);
});

test('deferred writes: a sleeping reader is told once a quarter of the fifo went by untold, and at tellDeferred()', () => {
  const { session, posts, peer } = makeSession();
  const chunk = new Uint8Array(16 * 1024).fill(0x62);
  assert.equal(peer.armData(), false);
  assert.equal(session.writeDeferred(chunk), chunk.length);
  assert.deepEqual(posts, [], 'an eighth of the fifo: not told yet');
  assert.equal(peer.readable(), chunk.length, 'the bytes are visible at once');
  assert.equal(session.writeDeferred(chunk), chunk.length);
  assert.deepEqual(posts, [3], 'a quarter of the fifo went by: told');
  session.tellDeferred();
  assert.deepEqual(posts, [3], 'nothing left untold: no second post');

  // The end of the writer's batch tells what went untold.
  peer.drop(peer.readable());
  posts.length = 0;
  assert.equal(peer.armData(), false);
  assert.equal(session.writeDeferred(chunk.subarray(0, 64)), 64);
  assert.deepEqual(posts, []);
  session.tellDeferred();
  assert.deepEqual(posts, [3], 'told at the end of the batch');

  // Inside held posts, deferred writes are told when the posts are released.
  peer.drop(peer.readable());
  posts.length = 0;
  assert.equal(peer.armData(), false);
  session.holdPosts();
  session.writeDeferred(new Uint8Array(SIZE / 2));
  session.tellDeferred();
  assert.deepEqual(posts, [], 'nothing told while held');
  session.releasePosts();
  assert.deepEqual(posts, [3]);
});

test('a full close tells a peer app only while it may still write (no FIN from it yet); ferryd always', () => {
  // postSoon is recorded as -slot.
  const open = makeSession();
  open.session.stopReading();
  assert.deepEqual(open.posts, [-3], 'the peer may write on: it must hear of the close (EPIPE)');
  assert.equal(open.peer.readable(), 0);

  const finished = makeSession();
  finished.peerTx.fin();
  finished.session.stopReading();
  assert.deepEqual(finished.posts, [], 'the peer sent FIN: nothing it does depends on our close');
  assert.equal(finished.peerTx.peerClosed, true, 'the close is still in the fifo for the peer to see');

  const carried = makeSession(true);
  carried.peerTx.fin();
  carried.session.stopReading();
  assert.deepEqual(carried.posts, [-3], 'ferryd, as the peer of a session it carries, is told');
});

test('a commit that tells the reader tells it of the deferred bytes too: no second post for them', async () => {
  const { session, posts, peer } = makeSession();
  for (const endOfTick of [false, true]) {
    posts.length = 0;
    assert.equal(peer.armData(), false);
    assert.equal(session.writeDeferred(new Uint8Array(64)), 64);
    const view = session.reserve(32);
    assert.equal(session.commit(view.length, endOfTick), 32);
    if (endOfTick) await new Promise<void>((resolve) => process.nextTick(resolve));
    assert.deepEqual(posts, [3], 'the commit rings the sleeping reader');
    // The reader reads all of it (the deferred bytes included) and sleeps again.
    assert.equal(peer.readable(), 96);
    peer.drop(96);
    assert.equal(peer.armData(), false);
    session.tellDeferred();
    assert.deepEqual(posts, [3], 'the deferred bytes were told with the commit: no wake for nothing');
  }
});
