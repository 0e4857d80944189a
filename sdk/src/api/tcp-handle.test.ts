// Tests for tcp-handle.ts: a handed TCP descriptor opened as a node:net socket without type guessing.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import * as net from 'node:net';
import { describe, it } from 'node:test';
import { close } from '../sys/fd.js';
import { tcpConnect, tcpConnected, tcpSocket } from '../sys/tcp-socket.js';
import { tcpWrapKind, wrapTcpFd } from './tcp-handle.js';

async function connectedFd(port: number): Promise<number> {
  const fd = tcpSocket('127.0.0.1');
  let ok = tcpConnect(fd, '127.0.0.1', port);
  for (let i = 0; !ok && i < 3000; i++) {
    await new Promise((r) => setTimeout(r, 1));
    ok = tcpConnected(fd, '127.0.0.1', port);
  }
  assert.ok(ok, 'loopback connect completed');
  return fd;
}

describe('wrapTcpFd', () => {
  it('makes the TCP handle directly here (node 20 has the binding)', () => {
    assert.equal(tcpWrapKind(), 'handle');
  });

  it('looks the binding up at the first use, not when the module loads', () => {
    const url = new URL('./tcp-handle.js', import.meta.url).href;
    // Counts process.binding calls around the import and around the first use.
    const script = `
      let calls = 0;
      const orig = process.binding;
      process.binding = function (name) { calls++; return orig.call(process, name); };
      const m = await import(${JSON.stringify(url)});
      const atLoad = calls;
      const kind = m.tcpWrapKind();
      m.tcpWrapKind();
      process.stdout.write(JSON.stringify({ atLoad, afterUse: calls, kind }));`;
    const r = spawnSync(process.execPath, ['--no-deprecation', '--input-type=module', '-e', script], {
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { atLoad: 0, afterUse: 1, kind: 'handle' });
  });

  it('a wrapped descriptor carries bytes both ways, half-closes and ends like net.Socket', async () => {
    const server = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('data', (d) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
      s.on('end', () => s.end());
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const fd = await connectedFd((server.address() as net.AddressInfo).port);
    const sock = wrapTcpFd(fd, { readable: true, writable: true, allowHalfOpen: true });
    assert.equal(sock.remoteAddress, '127.0.0.1');
    const chunks: Buffer[] = [];
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.write('hello');
    sock.end();
    await once(sock, 'end');
    assert.equal(Buffer.concat(chunks).toString(), 'echo:hello');
    sock.destroy();
    await once(sock, 'close');
    server.close();
  });

  it('a descriptor that is not open fails with EBADF, not a crash', async () => {
    const fd = tcpSocket('127.0.0.1');
    close(fd);
    assert.throws(
      () => wrapTcpFd(fd, {}),
      (err: NodeJS.ErrnoException) => err.code === 'EBADF',
    );
  });

  it('--pending-deprecation falls back to net.Socket({ fd }), with no warning', () => {
    const url = new URL('./tcp-handle.js', import.meta.url).href;
    const r = spawnSync(
      process.execPath,
      [
        '--pending-deprecation',
        '--input-type=module',
        '-e',
        `import { tcpWrapKind } from ${JSON.stringify(url)}; process.stdout.write(tcpWrapKind());`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.stdout, 'fd');
    assert.doesNotMatch(r.stderr, /DEP0111/);
  });
});
