// Tests for unix-socket.ts: path and abstract sockets, names, credentials, and error codes.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { FerryError } from '../errors.js';
import { close, pipe2, read, write } from './fd.js';
import { recvMsg } from './msg.js';
import { spawnPeer, until } from './testing/peer.js';
import {
  accept,
  bindUnix,
  connectUnix,
  listen,
  peerCredentials,
  shutdown,
  socketName,
  socketpair,
  unixSocket,
} from './unix-socket.js';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-sys-'));
});
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const unique = (): string => `ferry-test-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;

describe('unix sockets', () => {
  it('path socket: bind, listen, connect, accept, exchange bytes, socketName round trip', () => {
    const path = join(dir, 'a.sock');
    const l = unixSocket('seqpacket', { nonblock: true });
    const c = unixSocket('seqpacket');
    try {
      bindUnix(l, path);
      assert.equal(socketName(l), path);
      assert.equal(socketName(c), '');
      listen(l);
      assert.equal(accept(l), -1);
      connectUnix(c, path);
      const s = accept(l);
      try {
        assert.ok(s >= 0);
        assert.equal(socketName(s), path);
        assert.equal(write(c, Buffer.from('ping')), 4);
        const buf = new Uint8Array(16);
        assert.equal(read(s, buf), 4);
        assert.equal(Buffer.from(buf.subarray(0, 4)).toString(), 'ping');
        shutdown(c, 'write');
        assert.equal(read(s, buf), 0);
      } finally {
        close(s);
      }
    } finally {
      close(l);
      close(c);
    }
  });

  it('abstract names have exact length: a name and its prefix are different sockets', () => {
    const long = `@${unique()}-long`;
    const short = long.slice(0, -2);
    const a = unixSocket('stream', { nonblock: true });
    const b = unixSocket('stream', { nonblock: true });
    try {
      bindUnix(a, long);
      bindUnix(b, short);
      assert.equal(socketName(a), long);
      assert.equal(socketName(b), short);
      listen(a);
      listen(b);
      const c1 = unixSocket('stream');
      const c2 = unixSocket('stream');
      try {
        connectUnix(c1, short);
        assert.equal(accept(a), -1, 'connecting to the prefix must not reach the longer name');
        const s = accept(b);
        assert.ok(s >= 0);
        close(s);
        connectUnix(c2, long);
        const t = accept(a);
        assert.ok(t >= 0);
        close(t);
      } finally {
        close(c1);
        close(c2);
      }
      // A third name (longer) that was never bound is refused.
      const c3 = unixSocket('stream');
      try {
        assert.throws(() => connectUnix(c3, `${long}x`), { code: 'ECONNREFUSED' });
      } finally {
        close(c3);
      }
    } finally {
      close(a);
      close(b);
    }
  });

  it('binding a taken name fails with EADDRINUSE', () => {
    const name = `@${unique()}`;
    const a = unixSocket('seqpacket');
    const b = unixSocket('seqpacket');
    try {
      bindUnix(a, name);
      assert.throws(() => bindUnix(b, name), { code: 'EADDRINUSE', syscall: 'bind' });
    } finally {
      close(a);
      close(b);
    }
  });

  it('connect errors keep POSIX codes, errno and syscall', () => {
    const c = unixSocket('seqpacket');
    try {
      assert.throws(
        () => connectUnix(c, join(dir, 'missing.sock')),
        (err: unknown) =>
          err instanceof FerryError && err.code === 'ENOENT' && err.errno === 2 && err.syscall === 'connect',
      );
      const path = join(dir, 'bound-not-listening.sock');
      const l = unixSocket('seqpacket');
      bindUnix(l, path);
      try {
        assert.throws(
          () => connectUnix(c, path),
          (err: unknown) =>
            err instanceof FerryError &&
            err.code === 'ECONNREFUSED' &&
            err.errno === 111 &&
            err.syscall === 'connect',
        );
      } finally {
        close(l);
      }
      // The socket file outlives its socket: still refused.
      assert.throws(() => connectUnix(c, path), { code: 'ECONNREFUSED' });
    } finally {
      close(c);
    }
  });

  it('an errno without a Ferry code becomes ERR_FERRY_SYS naming the errno', () => {
    const name = `@${unique()}`;
    const l = unixSocket('seqpacket');
    const [a, b] = socketpair('seqpacket');
    try {
      bindUnix(l, name);
      listen(l);
      assert.throws(
        () => connectUnix(a, name),
        (err: unknown) =>
          err instanceof FerryError &&
          err.code === 'ERR_FERRY_SYS' &&
          err.errno === 106 &&
          err.syscall === 'connect' &&
          err.message.includes('EISCONN'),
      );
      const [r, w] = pipe2();
      try {
        assert.throws(() => peerCredentials(r), { code: 'ENOTSOCK', syscall: 'getsockopt' });
      } finally {
        close(r);
        close(w);
      }
    } finally {
      close(l);
      close(a);
      close(b);
    }
  });

  it('rejects names that do not fit sun_path', () => {
    const s = unixSocket('stream');
    try {
      assert.throws(() => bindUnix(s, `@${'x'.repeat(108)}`), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => bindUnix(s, `/${'x'.repeat(107)}`), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => bindUnix(s, ''), { code: 'ERR_INVALID_ARG_VALUE' });
      assert.throws(() => unixSocket('dgram' as 'stream'), { code: 'ERR_INVALID_ARG_VALUE' });
    } finally {
      close(s);
    }
  });

  it('peerCredentials: the socketpair peer is us; a connected child reports its own pid', async () => {
    const [a, b] = socketpair('stream');
    try {
      assert.deepEqual(peerCredentials(a), {
        pid: process.pid,
        uid: process.getuid?.(),
        gid: process.getgid?.(),
      });
    } finally {
      close(a);
      close(b);
    }
    const path = join(dir, 'creds.sock');
    const l = unixSocket('seqpacket', { nonblock: true });
    bindUnix(l, path);
    listen(l);
    const peer = spawnPeer(['connect', path]);
    try {
      const s = await until(() => {
        const fd = accept(l, { nonblock: true });
        return fd >= 0 ? fd : undefined;
      });
      try {
        const buf = new Uint8Array(8);
        const msg = await until(() => recvMsg(s, buf, 0) ?? undefined);
        assert.equal(Buffer.from(buf.subarray(0, msg.bytes)).toString(), 'hi');
        assert.deepEqual(peerCredentials(s), {
          pid: peer.child.pid,
          uid: process.getuid?.(),
          gid: process.getgid?.(),
        });
      } finally {
        close(s);
      }
      assert.equal(await peer.exited, 0);
    } finally {
      peer.dispose();
      close(l);
    }
  });
});
