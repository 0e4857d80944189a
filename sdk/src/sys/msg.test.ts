// Tests for msg.ts: fd passing across processes, truncation, stray fds, EAGAIN, EOF and EPIPE.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { FerryError } from '../errors.js';
import { close, pipe2, read, write } from './fd.js';
import { Mapping } from './mapping.js';
import { fstatSize, ftruncate, memfdCreate } from './memfd.js';
import { recvMsg, sendMsg } from './msg.js';
import { fdCount, spawnPeer, until } from './testing/peer.js';
import { socketpair } from './unix-socket.js';

describe('sendMsg / recvMsg', () => {
  it('a memfd written by a child is read by the parent', async () => {
    const text = `hello from the child ${Date.now()}`;
    const peer = spawnPeer(['send-memfd', text]);
    try {
      const buf = new Uint8Array(16);
      const r = await until(() => recvMsg(peer.fd, buf, 4) ?? undefined);
      assert.equal(r.bytes, 1);
      assert.equal(r.fds.length, 1);
      const fd = r.fds[0] ?? -1;
      const size = fstatSize(fd);
      assert.equal(size, Buffer.byteLength(text));
      const m = Mapping.map(fd, size, { readOnly: true });
      close(fd);
      assert.equal(Buffer.from(new Uint8Array(m.buffer)).toString(), text);
      m.release();
      peer.closeFd();
      assert.equal(await peer.exited, 0);
    } finally {
      peer.dispose();
    }
  });

  it('a memfd written by the parent is read by a child', async () => {
    const text = 'written by the parent';
    const memfd = memfdCreate('ferry-msg-to-child');
    ftruncate(memfd, text.length);
    write(memfd, Buffer.from(text));
    const peer = spawnPeer(['echo-memfd']);
    try {
      assert.equal(sendMsg(peer.fd, new Uint8Array([1]), [memfd]), 1);
      close(memfd);
      const buf = new Uint8Array(64);
      const r = await until(() => recvMsg(peer.fd, buf, 0) ?? undefined);
      assert.equal(Buffer.from(buf.subarray(0, r.bytes)).toString(), text);
      assert.equal(await peer.exited, 0);
    } finally {
      peer.dispose();
    }
  });

  it('carries several fds in one message and returns null when nothing is queued', () => {
    const [a, b] = socketpair('seqpacket', { nonblock: true });
    const [r, w] = pipe2({ nonblock: true });
    try {
      const buf = new Uint8Array(8);
      assert.equal(recvMsg(b, buf, 4), null);
      assert.equal(sendMsg(a, Buffer.from('xyz'), [r, w, r]), 3);
      const got = recvMsg(b, buf, 3);
      assert.ok(got);
      assert.equal(got.fds.length, 3);
      assert.equal(got.truncated, false);
      // The received write end and read end are the same pipe.
      assert.equal(write(got.fds[1] ?? -1, new Uint8Array([42])), 1);
      assert.equal(read(got.fds[0] ?? -1, buf), 1);
      assert.equal(buf[0], 42);
      for (const fd of got.fds) close(fd);
    } finally {
      close(a);
      close(b);
      close(r);
      close(w);
    }
  });

  it('reports MSG_TRUNC for a datagram larger than the buffer', () => {
    const [a, b] = socketpair('seqpacket');
    try {
      sendMsg(a, new Uint8Array(100).fill(5));
      const buf = new Uint8Array(10);
      assert.deepEqual(recvMsg(b, buf, 0), { bytes: 10, fds: [], truncated: true });
      assert.equal(buf[9], 5);
    } finally {
      close(a);
      close(b);
    }
  });

  it('MSG_CTRUNC: every fd that arrived is closed and ERR_FERRY_FD_CTRUNC is thrown', async () => {
    const peer = spawnPeer(['send-fds', '8']);
    try {
      const buf = new Uint8Array(8);
      await once(peer.child, 'message');
      const before = fdCount();
      assert.throws(
        () => recvMsg(peer.fd, buf, 2),
        (err: unknown) => err instanceof FerryError && err.code === 'ERR_FERRY_FD_CTRUNC',
      );
      assert.equal(fdCount(), before);
    } finally {
      peer.dispose();
    }
  });

  it('fds that arrive with maxFds 0 are closed and ERR_FERRY_FD_UNEXPECTED is thrown', () => {
    const [a, b] = socketpair('seqpacket', { nonblock: true });
    const [r, w] = pipe2();
    try {
      sendMsg(a, Buffer.from('m1'), [r, w]);
      sendMsg(a, Buffer.from('m2'), [r, w, r, w]);
      // More than the stray-fd room (16): the kernel truncates, and still nothing leaks.
      sendMsg(
        a,
        Buffer.from('m3'),
        Array.from({ length: 40 }, () => r),
      );
      const before = fdCount();
      const buf = new Uint8Array(8);
      assert.throws(() => recvMsg(b, buf, 0), { code: 'ERR_FERRY_FD_UNEXPECTED' });
      assert.equal(Buffer.from(buf.subarray(0, 2)).toString(), 'm1');
      assert.equal(fdCount(), before);
      assert.throws(() => recvMsg(b, buf, 3), { code: 'ERR_FERRY_FD_UNEXPECTED' });
      assert.equal(fdCount(), before);
      assert.throws(() => recvMsg(b, buf, 0), { code: 'ERR_FERRY_FD_UNEXPECTED' });
      assert.equal(fdCount(), before);
      assert.equal(recvMsg(b, buf, 0), null);
    } finally {
      close(a);
      close(b);
      close(r);
      close(w);
    }
  });

  it('EAGAIN on a full socket returns -1; EOF is bytes 0; a closed peer gives EPIPE', () => {
    const [a, b] = socketpair('seqpacket', { nonblock: true });
    const big = new Uint8Array(32 * 1024);
    let sent = 0;
    let blocked = false;
    for (let i = 0; i < 10_000 && !blocked; i++) {
      const n = sendMsg(a, big);
      if (n === -1) blocked = true;
      else sent++;
    }
    assert.ok(blocked && sent > 0);
    // Closing a socket with unread data resets the peer (ECONNRESET); a clean close gives EPIPE.
    close(b);
    assert.throws(
      () => sendMsg(a, big),
      (err: unknown) => err instanceof FerryError && err.code === 'ECONNRESET' && err.syscall === 'sendmsg',
    );
    close(a);
    const [e, f] = socketpair('seqpacket', { nonblock: true });
    close(f);
    assert.throws(() => sendMsg(e, big), { code: 'EPIPE', syscall: 'sendmsg' });
    close(e);

    const [c, d] = socketpair('stream', { nonblock: true });
    close(c);
    assert.deepEqual(recvMsg(d, new Uint8Array(4), 1), { bytes: 0, fds: [], truncated: false });
    close(d);
  });

  it('rejects more than SCM_MAX_FD fds and bad maxFds', () => {
    const [a, b] = socketpair('seqpacket');
    try {
      assert.throws(() => sendMsg(a, new Uint8Array(1), new Array(254).fill(0)), {
        code: 'ERR_OUT_OF_RANGE',
      });
      assert.throws(() => recvMsg(b, new Uint8Array(1), -1), { code: 'ERR_OUT_OF_RANGE' });
    } finally {
      close(a);
      close(b);
    }
  });
});
