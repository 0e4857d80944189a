/** Scenarios about servers: listen, address(), close, getConnections, maxConnections, EADDRINUSE. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Scenario } from './scenario.js';
import { settle } from './scenarios-close.js';
import type { Scope } from './scope.js';
import { errCode, Trace, within } from './trace.js';

/** A server's events as a Trace ('listening', 'close', 'error', 'drop'). */
function watchServer(server: ReturnType<Scope['t']['server']['createServer']>): Trace {
  const t = new Trace();
  server.on('listening', () => t.mark('listening'));
  server.on('close', () => t.mark('close'));
  server.on('error', (e: unknown) => t.mark(`error(${errCode(e)})`));
  server.on('drop', () => t.mark('drop'));
  return t;
}

const listenAddress: Scenario = {
  name: "listen(): 'listening' then the callback, asynchronously; address() before, during, after",
  async run(sc: Scope) {
    const server = sc.ownServer(sc.t.server.createServer({}));
    const trace = watchServer(server);
    const before = server.address();
    server.listen(sc.t.listenArg(), () => trace.mark('cb'));
    // A unix socket is bound synchronously (listening is true at once), a TCP one after a lookup.
    const listeningAtReturn = server.listening;
    trace.mark('returned');
    await trace.until('cb');
    trace.mark(`listening=${server.listening}`);
    const a = server.address();
    server.close(() => trace.mark('close-cb'));
    trace.mark(`after-close:listening=${server.listening}`);
    // node keeps a unix server's path in address() after close(); a TCP one gives null.
    const addressAfterClose = server.address();
    await trace.until('close-cb');
    const inet =
      sc.t.kind === 'inet'
        ? {
            listeningAtReturn,
            addressAfterClose,
            address: a.address,
            family: a.family,
            port: typeof a.port,
            keys: Object.keys(a).sort(),
          }
        : undefined;
    return { common: { before, trace: trace.entries }, ...(inet ? { inet } : {}) };
  },
  check(ref) {
    assert.deepEqual((ref.common['trace'] as string[]).slice(0, 3), ['returned', 'listening', 'cb']);
  },
};

const listenInUse: Scenario = {
  name: "listen() on a taken address: 'error' EADDRINUSE, asynchronously, not listening",
  async run(sc: Scope) {
    const first = await sc.listen({}, () => {});
    const second = sc.ownServer(sc.t.server.createServer({}));
    const trace = watchServer(second);
    second.listen(sc.t.listenArgAt(first));
    trace.mark('returned');
    await trace.until('error');
    trace.mark(`listening=${second.listening}`);
    return { common: { trace: trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['trace'], ['returned', 'error(EADDRINUSE)', 'listening=false']);
  },
};

const closeWithOpen: Scenario = {
  name: "server.close() with a connection open: no new connections, 'close' only once it ends",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {});
    const strace = watchServer(server);
    const { sock, trace } = sc.connect(server);
    const conn = await nextConn();
    await trace.until('ready');
    const refusedAt = sc.t.connectOpts(server);
    server.close((e: unknown) => strace.mark(`cb:${errCode(e)}`));
    strace.mark(`returned:listening=${server.listening}`);
    // A new connection is refused (after close() the address is free). Ferry's listener is
    // ferryd's, closed when ferryd hears of it: a connect in the same instant may still reach the
    // kernel's backlog there and be reset (docs/node-net-conformance.md). Connect a little later.
    await new Promise((r) => setTimeout(r, 300));
    const late = sc.own(sc.t.client.connect(refusedAt));
    const lateErr = await within(once(late, 'error').then(([e]) => errCode(e)));
    strace.mark('late-connect-failed');
    conn.sock.on('close', () => strace.mark('conn-closed'));
    sock.end();
    await settle(trace, conn.trace);
    await strace.until('cb:');
    return {
      common: { server: strace.entries, client: trace.entries },
      // A unix path is unlinked by close(): ENOENT there, ECONNREFUSED on a TCP port.
      ...(sc.t.kind === 'inet' ? { inet: { lateErr } } : {}),
    };
  },
  check(ref) {
    assert.deepEqual(ref.inet?.['lateErr'], 'ECONNREFUSED');
  },
};

const getConnections: Scenario = {
  name: 'getConnections(cb): the count, called back asynchronously',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {});
    const trace = new Trace();
    const a = sc.connect(server);
    const b = sc.connect(server);
    await nextConn();
    const connB = await nextConn();
    await a.trace.until('ready');
    await b.trace.until('ready');
    const count = () =>
      new Promise<void>((resolve) => {
        const ret = server.getConnections((e: unknown, n: number) => {
          trace.mark(`cb:${errCode(e)}:${n}`);
          resolve();
        });
        trace.mark(`returned:${ret === server}`);
      });
    await count();
    b.sock.end();
    await connB.trace.until('close');
    await count();
    return { common: { trace: trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['trace'], ['returned:true', 'cb:null:2', 'returned:true', 'cb:null:1']);
  },
};

const maxConnections: Scenario = {
  name: "maxConnections: a connection over the limit is closed at once and the server emits 'drop'",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {});
    const strace = watchServer(server);
    server.maxConnections = 1;
    const a = sc.connect(server);
    await nextConn();
    await a.trace.until('ready');
    const b = sc.connect(server, {}, { data: true });
    await settle(b.trace);
    if (!strace.has('drop')) strace.mark('no-drop');
    let accepted = 0;
    await new Promise<void>((r) =>
      server.getConnections((_e: unknown, n: number) => {
        accepted = n;
        r();
      }),
    );
    return { common: { server: strace.entries, second: b.trace.entries, connections: accepted } };
  },
  check(ref) {
    assert.deepEqual(ref.common['server'], ['drop']);
  },
};

const closeNotRunning: Scenario = {
  name: 'close() on a server that never listened: the callback gets ERR_SERVER_NOT_RUNNING',
  async run(sc: Scope) {
    const server = sc.t.server.createServer({});
    const trace = watchServer(server);
    server.close((e: unknown) => trace.mark(`cb:${errCode(e)}`));
    trace.mark('returned');
    await trace.until('cb:');
    return { common: { trace: trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['trace'], ['returned', 'close', 'cb:ERR_SERVER_NOT_RUNNING']);
  },
};

const listenTwice: Scenario = {
  name: 'listen() on a server already listening throws',
  async run(sc: Scope) {
    const server = await sc.listen({}, () => {});
    try {
      server.listen(sc.t.listenArg());
      return { common: { threw: false } };
    } catch (e) {
      return { common: { threw: errCode(e), stillListening: server.listening } };
    }
  },
  check(ref) {
    assert.equal(ref.common['threw'], 'ERR_SERVER_ALREADY_LISTEN');
  },
};

export const SERVER_SCENARIOS: readonly Scenario[] = [
  listenTwice,
  listenAddress,
  listenInUse,
  closeWithOpen,
  getConnections,
  maxConnections,
  closeNotRunning,
];
