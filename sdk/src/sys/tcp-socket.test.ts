// Tests for tcp-socket.ts: bare TCP connects (ferryd's handoff connect), addresses, TCP_INFO, reset.

import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { close, read } from './fd.js';
import {
  isNumericAddress,
  isTcpSocket,
  setTcpNoDelay,
  tcpAddresses,
  tcpConnect,
  tcpConnected,
  tcpDisconnect,
  tcpInfo,
  tcpLocalAddress,
  tcpNoDelay,
  tcpReadEnd,
  tcpSocket,
} from './tcp-socket.js';

async function listening(
  host: string,
): Promise<{ server: net.Server; port: number; accepted: net.Socket[] }> {
  const accepted: net.Socket[] = [];
  const server = net.createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
  });
  server.listen(0, host);
  await once(server, 'listening');
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

describe('bare TCP sockets', () => {
  it('numeric addresses only: names and zones are not taken', () => {
    assert.ok(isNumericAddress('127.0.0.1'));
    assert.ok(isNumericAddress('::1'));
    assert.ok(isNumericAddress('::ffff:10.1.2.3'));
    assert.ok(isNumericAddress('2001:db8::8:800:200c:417a'));
    assert.ok(!isNumericAddress('localhost'));
    assert.ok(!isNumericAddress('fe80::1%eth0'));
    assert.ok(!isNumericAddress('256.1.1.1'));
    assert.ok(!isNumericAddress(''));
  });

  it('connects to a loopback listener at once, with TCP_NODELAY; addresses and TCP_INFO agree', async () => {
    const { server, port, accepted } = await listening('127.0.0.1');
    const fd = tcpSocket('127.0.0.1');
    try {
      assert.equal(tcpNoDelay(fd), true);
      // Loopback completes the handshake inside connect(); a pending one would say false.
      const now = tcpConnect(fd, '127.0.0.1', port);
      if (!now) {
        while (!tcpConnected(fd, '127.0.0.1', port)) await new Promise((r) => setTimeout(r, 5));
      }
      assert.ok(isTcpSocket(fd));
      const local = tcpLocalAddress(fd);
      const both = tcpAddresses(fd);
      assert.deepEqual(both.local, local);
      assert.deepEqual(both.remote, { address: '127.0.0.1', port, family: 'IPv4' });
      assert.equal(tcpInfo(fd).state, 'ESTABLISHED');
      // Connecting again says "connected", whatever the kernel's own answer (0 or EISCONN).
      assert.equal(tcpConnected(fd, '127.0.0.1', port), true);
      setTcpNoDelay(fd, false);
      assert.equal(tcpNoDelay(fd), false);
      while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
      const peer = accepted[0] as net.Socket;
      assert.equal(peer.remotePort, local.port);
      // A reset reaches the peer as ECONNRESET.
      const err = once(peer, 'error');
      tcpDisconnect(fd);
      const [e] = (await err) as [NodeJS.ErrnoException];
      assert.equal(e.code, 'ECONNRESET');
    } finally {
      close(fd);
      server.close();
    }
  });

  it('IPv6 loopback, when the host has it', async (t) => {
    let l: Awaited<ReturnType<typeof listening>>;
    try {
      l = await listening('::1');
    } catch {
      t.skip('no IPv6 loopback here');
      return;
    }
    const fd = tcpSocket('::1');
    try {
      if (!tcpConnect(fd, '::1', l.port)) {
        while (!tcpConnected(fd, '::1', l.port)) await new Promise((r) => setTimeout(r, 5));
      }
      assert.deepEqual(tcpAddresses(fd).remote, { address: '0:0:0:0:0:0:0:1', port: l.port, family: 'IPv6' });
    } finally {
      close(fd);
      l.server.close();
    }
  });

  it('a closed port is ECONNREFUSED; bad addresses and ports are refused before any syscall', async () => {
    const { server, port } = await listening('127.0.0.1');
    await new Promise((r) => server.close(r));
    const fd = tcpSocket('127.0.0.1');
    try {
      assert.throws(() => tcpConnect(fd, '127.0.0.1', port), { code: 'ECONNREFUSED', syscall: 'connect' });
      assert.throws(() => tcpConnect(fd, 'localhost', port), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => tcpConnect(fd, '127.0.0.1', 0), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => tcpConnect(fd, '127.0.0.1', 70000), { code: 'ERR_INVALID_ARG_VALUE' });
    } finally {
      close(fd);
    }
  });

  describe('tcpReadEnd: what the next read would say, FIN told apart from RST', () => {
    /** A bare client descriptor connected to a node:net server, and the server's socket. */
    async function pair(): Promise<{ fd: number; peer: net.Socket; done: () => void }> {
      const { server, port, accepted } = await listening('127.0.0.1');
      const fd = tcpSocket('127.0.0.1');
      if (!tcpConnect(fd, '127.0.0.1', port)) {
        while (!tcpConnected(fd, '127.0.0.1', port)) await new Promise((r) => setTimeout(r, 5));
      }
      while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
      const done = () => {
        close(fd);
        server.close();
      };
      return { fd, peer: accepted[0] as net.Socket, done };
    }
    async function until(what: () => boolean): Promise<void> {
      for (let i = 0; i < 1000 && !what(); i++) await new Promise((r) => setTimeout(r, 5));
      assert.ok(what(), 'state reached in 5 s');
    }

    it('open, then data (left queued), then the FIN behind it', async () => {
      const { fd, peer, done } = await pair();
      try {
        assert.equal(tcpReadEnd(fd), 'open');
        peer.end('abc');
        await until(() => tcpInfo(fd).state === 'CLOSE_WAIT');
        assert.equal(tcpReadEnd(fd), 'data');
        assert.equal(tcpReadEnd(fd), 'data', 'a peek takes nothing');
        assert.equal(read(fd, new Uint8Array(16)), 3);
        assert.equal(tcpReadEnd(fd), 'fin');
      } finally {
        done();
      }
    });

    it('an RST behind unread bytes: data, then ECONNRESET once, then end of stream', async () => {
      const { fd, peer, done } = await pair();
      try {
        peer.write('abc');
        peer.resetAndDestroy();
        await until(() => tcpInfo(fd).state === 'CLOSE');
        assert.equal(tcpReadEnd(fd), 'data');
        assert.equal(read(fd, new Uint8Array(16)), 3);
        assert.equal(tcpReadEnd(fd), 'ECONNRESET');
        assert.equal(tcpReadEnd(fd), 'fin', 'the kernel reports the error once');
      } finally {
        done();
      }
    });

    it('a FIN followed by an RST is still a FIN', async () => {
      const { fd, peer, done } = await pair();
      try {
        peer.end();
        await until(() => tcpInfo(fd).state === 'CLOSE_WAIT');
        peer.resetAndDestroy();
        await until(() => tcpInfo(fd).state === 'CLOSE');
        assert.equal(tcpReadEnd(fd), 'fin');
      } finally {
        done();
      }
    });

    it('a descriptor that is not a socket throws', () => {
      assert.throws(() => tcpReadEnd(0x7fff_fff0), { code: 'EBADF' });
    });
  });
});
