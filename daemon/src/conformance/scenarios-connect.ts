/** Scenarios about connecting: refused, the (port, host) signatures, AbortSignal, socket options. */
import assert from 'node:assert/strict';
import type { Scenario } from './scenario.js';
import { settle } from './scenarios-close.js';
import type { Scope } from './scope.js';
import { errCode, props, type Trace, watch, within } from './trace.js';

const refused: Scenario = {
  name: "connect where nobody listens: 'error' ECONNREFUSED after connect() returned, then close(true)",
  async run(sc: Scope) {
    const opts = await sc.t.refusedOpts();
    const sock = sc.own(sc.t.client.connect(opts));
    const trace = watch(sock);
    trace.mark('returned');
    let atError: unknown;
    sock.on('error', () => (atError = props(sock)));
    await settle(trace);
    return { common: { client: trace.entries, atError } };
  },
  check(ref) {
    assert.deepEqual(ref.common['client'], ['returned', 'error(ECONNREFUSED)', 'close(true)']);
  },
};

/** Runs `connect` (which must return the socket) against a listening server and ends cleanly. */
async function connectAndEnd(sc: Scope, connect: (port: number, onConnect: () => void) => unknown) {
  const { server, nextConn } = await sc.serve({}, {});
  const port = server.address().port;
  let trace: Trace | undefined;
  let sock: unknown;
  try {
    sock = connect(port, () => trace?.mark('cb'));
  } catch (e) {
    return { common: { threw: errCode(e) } };
  }
  sc.own(sock);
  trace = watch(sock);
  const s = sock as {
    remotePort: unknown;
    end(): void;
    setNoDelay(b: boolean): unknown;
    setKeepAlive(b: boolean, ms: number): unknown;
  };
  await trace.until('ready');
  const remotePortMatches = s.remotePort === port;
  const setters = [s.setNoDelay(true) === s, s.setKeepAlive(true, 500) === s];
  s.end();
  const conn = await nextConn();
  await settle(trace, conn.trace);
  return { common: { client: trace.entries, remotePortMatches, setters } };
}

const connectPortHost: Scenario = {
  name: 'connect(port, host, cb) as net.connect takes it',
  inetOnly: true,
  run: (sc) => connectAndEnd(sc, (port, cb) => sc.t.client.connect(port, '127.0.0.1', cb)),
  check(ref) {
    assert.equal(ref.common['remotePortMatches'], true);
  },
};

const connectOptions: Scenario = {
  name: 'connect({ port, host, noDelay, keepAlive, keepAliveInitialDelay }); setNoDelay/setKeepAlive return the socket',
  inetOnly: true,
  run: (sc) =>
    connectAndEnd(sc, (port, cb) => {
      return sc.t.client.connect(
        { port, host: '127.0.0.1', noDelay: true, keepAlive: true, keepAliveInitialDelay: 1000 },
        cb,
      );
    }),
  check(ref) {
    assert.equal(ref.common['remotePortMatches'], true);
  },
};

const listenPortHost: Scenario = {
  name: 'listen(port, host, cb) as net.Server#listen takes it',
  inetOnly: true,
  async run(sc: Scope) {
    const server = sc.ownServer(sc.t.server.createServer({}));
    const marks: string[] = [];
    try {
      server.listen(0, '127.0.0.1', () => marks.push('cb'));
    } catch (e) {
      return { common: { threw: errCode(e) } };
    }
    server.on('error', (e: unknown) => marks.push(`error(${errCode(e)})`));
    await within(new Promise((r) => server.once('listening', r)));
    const a = server.address();
    // And the options form, listen({ port, host }, cb).
    const second = sc.ownServer(sc.t.server.createServer({}));
    second.listen({ port: 0, host: '127.0.0.1' }, () => marks.push('cb2'));
    await within(new Promise((r) => second.once('listening', r)));
    const b = second.address();
    await new Promise((r) => setImmediate(r));
    return {
      common: { marks, address: a?.address, family: a?.family, port: typeof a?.port, second: b?.address },
    };
  },
  check(ref) {
    assert.deepEqual(ref.common['marks'], ['cb', 'cb2']);
  },
};

const abortBefore: Scenario = {
  name: 'connect({ signal }) with an aborted signal: AbortError, asynchronously, close(true)',
  async run(sc: Scope) {
    const { server } = await sc.serve({}, {});
    const { trace } = sc.connect(server, { signal: AbortSignal.abort() });
    trace.mark('returned');
    await settle(trace);
    // Compared up to the error: node 20 then emits 'close' twice without hadError, and even
    // connects afterwards (destroyed goes back to false), which no program can rely on and Ferry
    // does not copy.
    const upToError = trace.entries.slice(0, trace.entries.findIndex((e) => e.startsWith('error')) + 1);
    return { common: { upToError, closed: trace.has('close') } };
  },
  check(ref) {
    assert.deepEqual(ref.common['upToError'], ['returned', 'error(ABORT_ERR)']);
  },
};

const abortAfter: Scenario = {
  name: 'aborting the signal of a connected socket destroys it with AbortError',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {});
    const ac = new AbortController();
    const { sock, trace } = sc.connect(server, { signal: ac.signal });
    await trace.until('ready');
    const conn = await nextConn();
    ac.abort();
    trace.mark(`aborted:destroyed=${sock.destroyed}`);
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.ok((ref.common['client'] as string[]).includes('error(ABORT_ERR)'));
  },
};

const socketThenConnect: Scenario = {
  name: 'new Socket() then socket.connect(options, cb): the same lifecycle as connect()',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, { data: true });
    const sock = sc.own(sc.t.client.newSocket());
    const trace = watch(sock);
    const before = props(sock);
    let ret: unknown;
    try {
      ret = sock.connect(sc.t.connectOpts(server), () => trace.mark('cb')) === sock;
    } catch (e) {
      return { common: { before, threw: errCode(e) } };
    }
    const atCall = props(sock);
    sock.end('hi');
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { before, ret, atCall, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['ret'], true);
  },
};

const writeBeforeConnect: Scenario = {
  name: 'write() and end() before the connection is up: queued, sent once connected',
  async run(sc: Scope) {
    let got = '';
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.on('data', (d: Buffer) => (got += d.toString()));
    });
    const { sock, trace } = sc.connect(server);
    const r1 = sock.write('ab', () => trace.mark('cb:ab'));
    sock.end('cd', () => trace.mark('cb:end'));
    trace.mark(`returned:${r1}`);
    const queued = [sock.bytesWritten, sock.writableLength, sock.pending, sock.readyState];
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { got, queued, client: trace.entries, bytesWritten: sock.bytesWritten } };
  },
  check(ref) {
    assert.equal(ref.common['got'], 'abcd');
  },
};

export const CONNECT_SCENARIOS: readonly Scenario[] = [
  socketThenConnect,
  writeBeforeConnect,
  refused,
  connectPortHost,
  connectOptions,
  listenPortHost,
  abortBefore,
  abortAfter,
];
