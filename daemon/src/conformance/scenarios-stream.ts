/** Scenarios about the stream surface: connect lifecycle, reading modes, writing, timeouts. */
import assert from 'node:assert/strict';
import { finished, pipeline, Readable, Writable } from 'node:stream';
import type { Scenario } from './scenario.js';
import { settle } from './scenarios-close.js';
import type { Scope } from './scope.js';
import type { SocketLike } from './targets.js';
import { errCode, props } from './trace.js';

/** address() of a TCP-like socket, as a shape: the port is compared with the other side's. */
function inetAddress(a: unknown, port: unknown): Record<string, unknown> {
  const o = (a ?? {}) as Record<string, unknown>;
  return {
    address: o['address'],
    family: o['family'],
    portMatches: o['port'] === port,
    keys: Object.keys(o).sort(),
  };
}

const lifecycle: Scenario = {
  name: 'connect lifecycle: properties before, at and after connect; addresses on both sides',
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    let serverSock: SocketLike;
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      serverSock = s;
      snaps['serverAtAccept'] = props(s);
    });
    const { sock, trace } = sc.connect(server);
    snaps['clientAtCall'] = props(sock);
    trace.mark('returned');
    sock.on('connect', () => (snaps['clientAtConnect'] = props(sock)));
    const conn = await nextConn();
    await trace.until('ready');
    const inet =
      sc.t.kind === 'inet'
        ? {
            clientRemote: [sock.remoteAddress, sock.remoteFamily, sock.remotePort === server.address().port],
            clientLocal: [sock.localAddress, typeof sock.localPort],
            clientAddress: inetAddress(sock.address(), sock.localPort),
            serverLocal: [serverSock.localAddress, serverSock.localPort === server.address().port],
            serverRemote: [
              serverSock.remoteAddress,
              serverSock.remoteFamily,
              serverSock.remotePort === sock.localPort,
            ],
            serverSockAddress: inetAddress(serverSock.address(), server.address().port),
          }
        : undefined;
    sock.end();
    await settle(trace, conn.trace);
    return {
      common: { client: trace.entries, server: conn.trace.entries, ...snaps, clientAtClose: props(sock) },
      ...(inet ? { inet } : {}),
    };
  },
  check(ref) {
    assert.equal((ref.common['clientAtCall'] as { readyState: string }).readyState, 'opening');
  },
};

const pauseResume: Scenario = {
  name: 'pause() before connect holds every event after ready; resume() delivers data then end',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.end('0123456789'));
    const { sock, trace } = sc.connect(server, {}, { data: true });
    sock.pause();
    const conn = await nextConn();
    await conn.trace.until('finish');
    await new Promise((r) => setTimeout(r, 150));
    const whilePaused = [...trace.entries];
    const paused = sock.isPaused();
    sock.resume();
    await settle(trace, conn.trace);
    return { common: { whilePaused, paused, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['whilePaused'], ['connect', 'ready']);
  },
};

const readableReadN: Scenario = {
  name: "'readable' and read(n): exact sizes, the remainder at end",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.end('0123456789'));
    const { sock, trace } = sc.connect(server);
    const reads: string[] = [];
    sock.on('readable', () => {
      for (let c = sock.read(4); c !== null; c = sock.read(4)) reads.push(c.toString());
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { reads, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['reads'], ['0123', '4567', '89']);
  },
};

const setEncoding: Scenario = {
  name: 'setEncoding(utf8): strings, a character split across writes is not broken',
  async run(sc: Scope) {
    const euro = Buffer.from('€');
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.write(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
      setTimeout(() => s.end(Buffer.concat([euro.subarray(2), Buffer.from('b')])), 30);
    });
    const { sock, trace } = sc.connect(server);
    const ret = sock.setEncoding('utf8') === sock;
    let text = '';
    sock.on('data', (d: unknown) => {
      trace.data(String(d).length, typeof d === 'string' ? 'string' : 'buffer');
      text += String(d);
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return {
      common: {
        ret,
        text,
        encoding: sock.readableEncoding,
        client: trace.entries,
        server: conn.trace.entries,
      },
    };
  },
  check(ref) {
    assert.equal(ref.common['text'], 'a€b');
  },
};

const writeCallbacks: Scenario = {
  name: 'write() and end(data, cb): return values, callback order, write after end',
  async run(sc: Scope) {
    let got = '';
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.on('data', (d: Buffer) => (got += d.toString()));
    });
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => {
      const r1 = sock.write('a', (e: unknown) => trace.mark(`cb:a:${errCode(e)}`));
      const r2 = sock.write('b', (e: unknown) => trace.mark(`cb:b:${errCode(e)}`));
      const r3 = sock.end('c', (e: unknown) => trace.mark(`cb:end:${errCode(e)}`));
      trace.mark(`returned:${r1},${r2},${r3 === sock}`);
    });
    await trace.until('finish');
    const r4 = sock.write('x', (e: unknown) => trace.mark(`cb:x:${errCode(e)}`));
    trace.mark(`write-after-end:${r4}`);
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { got, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['got'], 'abc');
  },
};

const corkWritev: Scenario = {
  name: 'cork()/uncork(): writes are held and go out together (writev), callbacks in order',
  async run(sc: Scope) {
    let got = '';
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.on('data', (d: Buffer) => (got += d.toString()));
    });
    const { sock, trace } = sc.connect(server);
    const state: Record<string, unknown> = {};
    sock.on('connect', () => {
      sock.cork();
      sock.write('a', () => trace.mark('cb:a'));
      sock.write('bb', () => trace.mark('cb:bb'));
      sock.write(Buffer.from('ccc'), () => trace.mark('cb:ccc'));
      state['corked'] = [sock.writableCorked, sock.writableLength, sock.bytesWritten];
      process.nextTick(() => {
        sock.uncork();
        trace.mark('uncorked');
        sock.end();
      });
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { got, ...state, client: trace.entries, bytesWritten: sock.bytesWritten } };
  },
  check(ref) {
    assert.equal(ref.common['got'], 'abbccc');
  },
};

const setTimeoutIdle: Scenario = {
  name: "setTimeout(ms, cb): 'timeout' once when idle, the socket stays open; setTimeout(0) disables",
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({}, {});
    const { sock, trace } = sc.connect(server);
    const conn = await nextConn();
    // Set once connected, so that the idle period cannot end before 'connect' on a slow machine.
    await trace.until('ready');
    let ret: unknown;
    try {
      ret = sock.setTimeout(40, () => trace.mark('cb:timeout')) === sock;
    } catch (e) {
      ret = `threw:${errCode(e)}`;
    }
    snaps['timeoutProp'] = sock.timeout;
    if (ret === true) {
      await trace.until('timeout');
      snaps['atTimeout'] = props(sock);
      sock.setTimeout(0);
      snaps['timeoutPropAfterZero'] = sock.timeout;
    }
    sock.end();
    await settle(trace, conn.trace);
    return { common: { ret, ...snaps, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['ret'], true);
  },
};

const connectTimeoutOption: Scenario = {
  name: "connect({ timeout }) is setTimeout(timeout): 'timeout' when idle, not a connect deadline",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {});
    const { sock, trace } = sc.connect(server, { timeout: 40 });
    let destroyedAtTimeout: unknown;
    sock.once('timeout', () => (destroyedAtTimeout = sock.destroyed));
    const conn = await nextConn();
    await trace.until('timeout');
    sock.end();
    await settle(trace, conn.trace);
    // The timer runs from the socket's creation, as in net: whether it fires before or after
    // 'connect' depends on how long connecting takes, so the trace is compared without it.
    const client = trace.entries.filter((e) => e !== 'timeout');
    return { common: { timeoutProp: sock.timeout, destroyedAtTimeout, client, server: conn.trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['timeoutProp'], 40);
  },
};

const pipelineFinished: Scenario = {
  name: 'stream.pipeline into and out of a socket, finished() on it',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.pipe(s));
    const { sock, trace } = sc.connect(server);
    let got = '';
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        got += chunk.toString();
        cb();
      },
    });
    pipeline(Readable.from([Buffer.from('ab'), Buffer.from('cd')]), sock, (e: unknown) =>
      trace.mark(`pipeline-in:${errCode(e)}`),
    );
    pipeline(sock, sink, (e: unknown) => trace.mark(`pipeline-out:${errCode(e)}`));
    const done = new Promise<void>((resolve) =>
      sock.on('close', () => {
        // finished() on a socket that is already closed answers at once.
        finished(sock, (e: unknown) => {
          trace.mark(`finished-after-close:${errCode(e)}`);
          resolve();
        });
      }),
    );
    const conn = await nextConn();
    await settle(trace, conn.trace);
    await done;
    return { common: { got, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['got'], 'abcd');
  },
};

const drain: Scenario = {
  name: "write() returns false when the peer does not read; 'drain' comes once it reads",
  async run(sc: Scope) {
    let serverGot = 0;
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.pause();
      s.on('data', (d: Buffer) => (serverGot += d.length));
    });
    const { sock, trace } = sc.connect(server, {}, { drain: true });
    const conn = await nextConn();
    await trace.until('ready');
    const chunk = Buffer.alloc(64 * 1024);
    let writes = 0;
    while (sock.write(chunk) && writes < 2048) writes++;
    trace.mark(`false-after-some:${writes < 2048}`);
    conn.sock.resume();
    await trace.until('drain');
    sock.end();
    await settle(trace, conn.trace);
    return {
      common: {
        client: trace.entries,
        allArrived: serverGot === sock.bytesWritten,
        server: conn.trace.entries,
      },
    };
  },
  check(ref) {
    assert.equal(ref.common['allArrived'], true);
  },
};

export const STREAM_SCENARIOS: readonly Scenario[] = [
  lifecycle,
  pauseResume,
  readableReadN,
  setEncoding,
  writeCallbacks,
  corkWritev,
  setTimeoutIdle,
  connectTimeoutOption,
  pipelineFinished,
  drain,
];
