/** Scenarios about how a connection ends: half-close, FIN nobody reads, destroy, destroySoon. */
import assert from 'node:assert/strict';
import { finished } from 'node:stream';
import type { Scenario } from './scenario.js';
import type { Scope } from './scope.js';
import { errCode, props, type Trace, tick } from './trace.js';

/** Waits (bounded) for 'close' on each trace; a trace that never closes gets a 'HUNG' entry. */
export async function settle(...traces: Trace[]): Promise<void> {
  await Promise.all(traces.map((t) => t.until('close')));
}

function includes(list: unknown, entry: string): void {
  assert.ok(Array.isArray(list) && list.includes(entry), `expected ${entry} in ${JSON.stringify(list)}`);
}

const endNoHalfOpen: Scenario = {
  name: 'client end(), allowHalfOpen false on both sides',
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({}, { data: true }, (s) => {
      s.on('end', () => (snaps['serverAtEnd'] = props(s)));
    });
    const { sock, trace } = sc.connect(server, {}, { data: true });
    sock.on('finish', () => (snaps['clientAtFinish'] = props(sock)));
    sock.on('end', () => (snaps['clientAtEnd'] = props(sock)));
    sock.on('close', () => (snaps['clientAtClose'] = props(sock)));
    sock.on('connect', () => {
      sock.write('hello');
      sock.end();
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries, ...snaps } };
  },
  check(ref) {
    includes(ref.common['client'], 'end');
    includes(ref.common['server'], 'finish');
  },
};

const serverEndsNoHalfOpen: Scenario = {
  name: "server end('bye'), allowHalfOpen false: the client ends too",
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.end('bye'));
    const { sock, trace } = sc.connect(server, {}, { data: true });
    sock.on('end', () => (snaps['clientAtEnd'] = props(sock)));
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries, ...snaps } };
  },
  check(ref) {
    includes(ref.common['client'], 'end');
  },
};

const halfOpenClientFirst: Scenario = {
  name: 'half-close, client first, allowHalfOpen true: the server still writes after end',
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({ allowHalfOpen: true }, { data: true }, (s) => {
      s.on('end', () => {
        snaps['serverAtEnd'] = props(s);
        s.write('pong');
        s.end();
      });
    });
    const { sock, trace } = sc.connect(server, { allowHalfOpen: true }, { data: true });
    sock.on('finish', () => (snaps['clientAtFinish'] = props(sock)));
    sock.on('end', () => (snaps['clientAtEnd'] = props(sock)));
    sock.on('connect', () => sock.end('ping'));
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries, ...snaps } };
  },
  check(ref) {
    includes(ref.common['client'], 'data:buffer(4)');
    assert.equal((ref.common['serverAtEnd'] as { readyState: string }).readyState, 'writeOnly');
  },
};

const halfOpenServerFirst: Scenario = {
  name: 'half-close, server first, allowHalfOpen true: the client answers after end',
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({ allowHalfOpen: true }, { data: true }, (s) => {
      s.end('bye');
      s.on('finish', () => (snaps['serverAtFinish'] = props(s)));
    });
    const { sock, trace } = sc.connect(server, { allowHalfOpen: true }, { data: true });
    sock.on('end', () => {
      snaps['clientAtEnd'] = props(sock);
      sock.end('ack');
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries, ...snaps } };
  },
  check(ref) {
    includes(ref.common['server'], 'data:buffer(3)');
  },
};

/** The reported bug (issue 12): a client that only writes never saw the peer's FIN. */
const neverRead: Scenario = {
  name: "a socket nobody reads still sees the peer's FIN: 'end' then 'close'",
  async run(sc: Scope) {
    const total = 8 * 256 * 1024;
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      let n = 0;
      s.on('data', (d: Buffer) => {
        n += d.length;
        if (n === total) s.end();
      });
    });
    // No 'data' listener, no read(), no resume(): the client only writes.
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => {
      for (let i = 0; i < 8; i++) sock.write(Buffer.alloc(256 * 1024));
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return {
      common: {
        client: trace.entries,
        server: conn.trace.entries,
        clientBytesWritten: sock.bytesWritten,
        serverBytesRead: conn.sock.bytesRead,
      },
    };
  },
  check(ref) {
    assert.deepEqual(ref.common['client'], ['connect', 'ready', 'end', 'finish', 'close(false)']);
  },
};

const pausedAcceptedSeesFin: Scenario = {
  name: "an accepted socket paused in 'connection' still sees the client's FIN (no data came)",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.pause());
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => sock.end());
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['server'], ['end', 'finish', 'close(false)']);
  },
};

const pauseOnConnect: Scenario = {
  name: 'createServer({ pauseOnConnect }): nothing is read until resume()',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({ pauseOnConnect: true }, {});
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => sock.end('x'));
    const conn = await nextConn();
    await trace.until('finish');
    // An absence, seen by waiting: the paused socket must not read the byte or the FIN.
    await new Promise((r) => setTimeout(r, 150));
    const beforeResume = [...conn.trace.entries, `bytesRead=${conn.sock.bytesRead}`];
    conn.sock.on('data', (d: Buffer) => conn.trace.data(d.length, 'buffer'));
    conn.sock.resume();
    await settle(trace, conn.trace);
    return { common: { beforeResume, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['beforeResume'], ['bytesRead=0']);
  },
};

const unreadDataHoldsEnd: Scenario = {
  name: "unread data holds 'end' back until the socket is read",
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.end('x'));
    const { sock, trace } = sc.connect(server);
    const conn = await nextConn();
    await conn.trace.until('finish');
    // An absence can only be seen by waiting: nothing here may end the client while 'x' is unread.
    await new Promise((r) => setTimeout(r, 150));
    const beforeRead = [...trace.entries];
    sock.on('data', (d: Buffer) => trace.data(d.length, 'buffer'));
    await settle(trace, conn.trace);
    return { common: { beforeRead, client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    assert.deepEqual(ref.common['beforeRead'], ['connect', 'ready']);
  },
};

const destroyWithError: Scenario = {
  name: 'destroy(err) after a write: error and close(true) here, what the peer sees, finished()',
  async run(sc: Scope) {
    const snaps: Record<string, unknown> = {};
    const { server, nextConn } = await sc.serve({}, { data: true });
    const { sock, trace } = sc.connect(server);
    finished(sock, (err) => trace.mark(`finished:${errCode(err)}`));
    sock.on('close', () => (snaps['clientAtClose'] = props(sock)));
    sock.on('connect', () => {
      sock.write('hi');
      sock.destroy(Object.assign(new Error('boom'), { code: 'EBOOM' }));
      trace.mark(`destroyed:${sock.destroyed}`);
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries, ...snaps } };
  },
  check(ref) {
    includes(ref.common['client'], 'error(EBOOM)');
  },
};

const destroyPlain: Scenario = {
  name: 'destroy() after a write: the peer gets the bytes and a clean end',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, { data: true });
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => {
      sock.write('hello');
      sock.destroy();
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    includes(ref.common['server'], 'data:buffer(5)');
  },
};

const destroySoon: Scenario = {
  name: 'destroySoon(): pending writes go out, then the socket is destroyed',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, { data: true });
    const { sock, trace } = sc.connect(server);
    sock.on('connect', () => {
      sock.write('hello');
      try {
        sock.destroySoon();
      } catch (e) {
        trace.mark(`threw:${errCode(e)}`);
      }
    });
    const conn = await nextConn();
    await settle(trace, conn.trace);
    return { common: { client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    includes(ref.common['client'], 'finish');
  },
};

const asyncIterBreak: Scenario = {
  name: 'for await ... break destroys the socket; the peer sees a clean end',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.write('first'));
    const { sock, trace } = sc.connect(server);
    for await (const chunk of sock) {
      trace.mark(`iter:${(chunk as Buffer).length}`);
      break;
    }
    trace.mark(`after-loop:destroyed=${sock.destroyed}`);
    const conn = await nextConn();
    await settle(trace, conn.trace);
    await tick();
    return { common: { client: trace.entries, server: conn.trace.entries } };
  },
  check(ref) {
    includes(ref.common['client'], 'iter:5');
  },
};

const writeAfterPeerClosed: Scenario = {
  name: 'writing on after the peer closed fails: an error (EPIPE or ECONNRESET), close(true)',
  async run(sc: Scope) {
    const { server, nextConn } = await sc.serve({}, {}, (s) => s.destroy());
    const { sock, trace } = sc.connect(server, { allowHalfOpen: true });
    const conn = await nextConn();
    await trace.until('end');
    // A kernel socket may take the first write (the peer's RST comes back after it); a bounded
    // number of writes, one per turn, until one fails.
    for (let i = 0; i < 200 && !sock.destroyed; i++) {
      sock.write('x');
      await new Promise((r) => setTimeout(r, 5));
    }
    await settle(trace, conn.trace);
    // Which of the two a kernel reports depends on when the RST arrived: both mean "peer gone".
    const client = trace.entries.map((e) =>
      e === 'error(EPIPE)' || e === 'error(ECONNRESET)' ? 'error(peer-gone)' : e,
    );
    return { common: { client, server: conn.trace.entries } };
  },
  check(ref) {
    includes(ref.common['client'], 'error(peer-gone)');
  },
};

export const CLOSE_SCENARIOS: readonly Scenario[] = [
  writeAfterPeerClosed,
  endNoHalfOpen,
  serverEndsNoHalfOpen,
  halfOpenClientFirst,
  halfOpenServerFirst,
  neverRead,
  pausedAcceptedSeesFin,
  pauseOnConnect,
  unreadDataHoldsEnd,
  destroyWithError,
  destroyPlain,
  destroySoon,
  asyncIterBreak,
];
