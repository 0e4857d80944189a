// Tests for poller.ts: FdPoller wakes on eventfds and SEQPACKET sockets and lets the process exit.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { close, eventfd, eventfdRead, eventfdWrite, pipe2 } from './fd.js';
import { recvMsg, sendMsg } from './msg.js';
import { type FdEvents, FdPoller } from './poller.js';
import { runExitCheck, until } from './testing/peer.js';
import { socketpair } from './unix-socket.js';

function nextEvent(
  poller: FdPoller,
  fd: number,
  interest: { readable?: boolean; writable?: boolean },
): Promise<FdEvents> {
  return new Promise((resolve) => poller.watch(fd, interest, resolve));
}

describe('FdPoller', () => {
  it('edge-triggered: one callback per eventfd write, without ever reading it', async () => {
    const poller = new FdPoller();
    const efd = eventfd(0, { nonblock: true });
    try {
      let calls = 0;
      poller.watch(efd, { readable: true, edge: true }, () => {
        calls++;
      });
      eventfdWrite(efd);
      await until(() => (calls >= 1 ? true : undefined), 2000);
      // Not drained, yet no further callbacks until the next write (level-triggered would spin).
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(calls, 1);
      eventfdWrite(efd);
      await until(() => (calls >= 2 ? true : undefined), 2000);
      assert.equal(calls, 2);
      assert.equal(eventfdRead(efd), 2n, 'the counter was never read by the poller');
    } finally {
      poller.close();
      close(efd);
    }
  });

  it('wakes when an eventfd is written, once per batch', async () => {
    const poller = new FdPoller();
    const efd = eventfd(0, { nonblock: true });
    try {
      const calls: FdEvents[] = [];
      const woke = new Promise<void>((resolve) =>
        poller.watch(efd, { readable: true }, (ev) => {
          calls.push(ev);
          eventfdRead(efd);
          resolve();
        }),
      );
      eventfdWrite(efd);
      eventfdWrite(efd);
      await woke;
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0], { readable: true, writable: false, hangup: false, error: false });
    } finally {
      poller.close();
      close(efd);
    }
  });

  it('watches a SEQPACKET socket: readable on a datagram, hangup when the peer closes', async () => {
    const poller = new FdPoller();
    const [a, b] = socketpair('seqpacket', { nonblock: true });
    try {
      const events: FdEvents[] = [];
      let received = 0;
      const buf = new Uint8Array(4);
      poller.watch(b, { readable: true }, (ev) => {
        events.push(ev);
        // Drain inside the callback, as level-triggered watches require.
        for (let i = 0; i < 100; i++) {
          const r = recvMsg(b, buf, 0);
          if (r === null || r.bytes === 0) break;
          received++;
        }
        if (ev.hangup) poller.unwatch(b);
      });
      sendMsg(a, Buffer.from('x'));
      sendMsg(a, Buffer.from('y'));
      await until(() => (received === 2 ? true : undefined));
      assert.deepEqual(events, [{ readable: true, writable: false, hangup: false, error: false }]);
      close(a);
      await until(() => (events.some((e) => e.hangup) ? true : undefined));
      assert.equal(events.length, 2);
      assert.equal(poller.size, 0);
    } finally {
      poller.close();
      close(b);
    }
  });

  it('reports writability and switches interest with a second watch()', async () => {
    const poller = new FdPoller();
    const [r, w] = pipe2({ nonblock: true });
    try {
      const ev = await nextEvent(poller, w, { writable: true });
      assert.equal(ev.writable, true);
      poller.watch(w, { readable: true }, () => assert.fail('a pipe write end is never readable'));
      poller.unwatch(w);
      // unwatch after the fd is closed is harmless.
      const ev2 = nextEvent(poller, r, { readable: true });
      close(w);
      assert.equal((await ev2).hangup, true);
      close(r);
      poller.unwatch(r);
    } finally {
      poller.close();
    }
  });

  it('throws after close() and rejects bad arguments', () => {
    const poller = new FdPoller();
    assert.throws(() => poller.watch(1.5, { readable: true }, () => {}), { code: 'ERR_INVALID_ARG_TYPE' });
    assert.throws(() => poller.watch(-1, { readable: true }, () => {}), {
      code: 'EBADF',
      syscall: 'epoll_ctl',
    });
    poller.close();
    poller.close();
    assert.throws(() => poller.watch(0, { readable: true }, () => {}), { code: 'ERR_FERRY_SOCKET_CLOSED' });
  });

  it('does not keep the process alive after close()', async () => {
    assert.deepEqual(await runExitCheck('poller-close'), { out: 'woke\n', code: 0 });
  });

  it('does not keep the process alive once nothing is watched', async () => {
    assert.deepEqual(await runExitCheck('poller-unwatch'), { out: 'woke\n', code: 0 });
  });
});
