import assert from 'node:assert/strict';
import { test } from 'node:test';
import { directReadOf } from './direct-read.js';
import { bindHost, connectTcp, listenTcp, tcpUri } from './tcp-kernel.js';

test('listener hosts bind where they say; kernel addresses become session URIs', () => {
  assert.equal(bindHost('*'), '0.0.0.0');
  assert.equal(bindHost('0.0.0.0'), '0.0.0.0');
  assert.equal(bindHost('localhost'), '127.0.0.1');
  assert.equal(bindHost('::1'), '::1');
  assert.equal(tcpUri('::ffff:127.0.0.1', 80), 'tcp://127.0.0.1:80');
  assert.equal(tcpUri('::1', 8080), 'tcp://[::1]:8080');
});

test('listenTcp gives the kernel port; a second bind is EADDRINUSE; connectTcp reaches it', async () => {
  const server = await listenTcp({ scheme: 'tcp', host: '127.0.0.1', port: 0 }, (s) => s.end('hi'));
  try {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    assert.ok(port > 0);
    await assert.rejects(
      listenTcp({ scheme: 'tcp', host: '127.0.0.1', port }, () => {}),
      {
        code: 'EADDRINUSE',
      },
    );
    const sock = await connectTcp({ scheme: 'tcp', host: '127.0.0.1', port }, 2000);
    // A tcp:// socket reads through a DirectRead (no 'data' events): the pump attaches to it.
    const reader = directReadOf(sock);
    assert.ok(reader);
    let text = '';
    const buf = new Uint8Array(16);
    reader.attach({
      nextBuffer: () => buf,
      onRead: (n, b) => {
        text += Buffer.from(b.subarray(0, n)).toString();
      },
    });
    await new Promise<void>((resolve) => {
      sock.on('end', () => resolve());
      sock.resume();
    });
    assert.equal(text, 'hi');
    sock.destroy();
    // A tls:// one does not: TLS reads the kernel socket itself.
    const raw = await connectTcp({ scheme: 'tls', host: '127.0.0.1', port }, 2000);
    assert.equal(directReadOf(raw), undefined);
    raw.destroy();
  } finally {
    server.close();
  }
});

test('connectTcp to a closed port is ECONNREFUSED', async () => {
  const server = await listenTcp({ scheme: 'tcp', host: '127.0.0.1', port: 0 }, () => {});
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  await new Promise((r) => server.close(r));
  await assert.rejects(connectTcp({ scheme: 'tcp', host: '127.0.0.1', port }, 2000), {
    code: 'ECONNREFUSED',
  });
});
