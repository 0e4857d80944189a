import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { test } from 'node:test';
import { close, tcpAddresses, tcpConnect, tcpInfo, tcpNoDelay, tcpSocket } from '@ferry/sdk/internal';
import { hasBinary } from '../testing/net-peer.js';
import { acceptBare, ConnectWaiter } from './tcp-handoff.js';
import { listenTcp } from './tcp-kernel.js';

/**
 * A listener whose accept queue is full (its SYNs are dropped, so a connect stays in progress)
 * until `open()` makes it accept everything: then the next SYN retransmit gets through.
 */
async function fullListener(): Promise<{ port: number; open: () => void; stop: () => void } | null> {
  if (!hasBinary('python3')) return null;
  const script = [
    'import socket, sys',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'port = s.getsockname()[1]; fill = []',
    'for i in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    "    try: c.connect(('127.0.0.1', port))",
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(port, flush=True)',
    'sys.stdin.readline()',
    'kept = []',
    'while True: kept.append(s.accept()[0])',
  ].join('\n');
  const p = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [d] = (await once(p.stdout, 'data')) as [Buffer];
  return {
    port: Number(d.toString().trim()),
    open: () => p.stdin.write('accept\n'),
    stop: () => p.kill('SIGKILL'),
  };
}

test('a bare connect still in progress is handed once the handshake ends (ConnectWaiter)', async (t) => {
  const l = await fullListener();
  if (!l) {
    t.skip('python3 is not installed (needed to hold a connect in progress)');
    return;
  }
  const fd = tcpSocket('127.0.0.1');
  const waiter = new ConnectWaiter();
  try {
    assert.equal(tcpConnect(fd, '127.0.0.1', l.port), false, 'the SYN was dropped: in progress');
    const connected = waiter.wait(fd, '127.0.0.1', l.port, 30_000);
    l.open();
    await connected;
    assert.equal(tcpInfo(fd).state, 'ESTABLISHED');
    assert.equal(tcpAddresses(fd).remote.port, l.port);
  } finally {
    close(fd);
    l.stop();
  }
});

test('a bare connect that never completes fails with ETIMEDOUT, and the waiter lets go of it', async (t) => {
  const l = await fullListener();
  if (!l) {
    t.skip('python3 is not installed (needed to hold a connect in progress)');
    return;
  }
  const fd = tcpSocket('127.0.0.1');
  const waiter = new ConnectWaiter();
  try {
    assert.equal(tcpConnect(fd, '127.0.0.1', l.port), false);
    await assert.rejects(waiter.wait(fd, '127.0.0.1', l.port, 200), { code: 'ETIMEDOUT' });
  } finally {
    close(fd);
    l.stop();
  }
});

test('acceptBare: each accepted connection comes as a descriptor with its peer, no node:net Socket', async () => {
  const viaSocket: net.Socket[] = [];
  const server = await listenTcp(
    { scheme: 'tcp', host: '127.0.0.1', port: 0 },
    (s) => viaSocket.push(s),
    false,
  );
  const got: { fd: number; peer: { address: string; port: number } }[] = [];
  assert.equal(
    acceptBare(server, (fd, peer) => got.push({ fd, peer })),
    true,
  );
  const port = (server.address() as net.AddressInfo).port;
  const clients: net.Socket[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      const c = net.connect(port, '127.0.0.1');
      await once(c, 'connect');
      clients.push(c);
    }
    while (got.length < 3) await new Promise((r) => setTimeout(r, 5));
    assert.equal(viaSocket.length, 0);
    for (const [i, g] of got.entries()) {
      const c = clients[i] as net.Socket;
      assert.deepEqual(g.peer, { address: '127.0.0.1', port: c.localPort });
      // The descriptor is the connection (node's own handle was closed): bytes pass, NODELAY is
      // inherited from the listener.
      assert.equal(tcpNoDelay(g.fd), true);
      const inner = new net.Socket({ fd: g.fd, readable: true, writable: true });
      const data = once(c, 'data');
      inner.write(`hello ${i}`);
      assert.equal(((await data) as [Buffer])[0].toString(), `hello ${i}`);
      inner.destroy();
      await once(c, 'end');
    }
  } finally {
    for (const c of clients) c.destroy();
    server.close();
  }
});
