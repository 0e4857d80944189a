/**
 * Scenarios about write() of small chunks on an idle socket: what Writable promises about the
 * return value, the callbacks' ticks (against process.nextTick, microtasks and setImmediate),
 * writableLength/writableNeedDrain/bytesWritten, errors after end and destroy, and 'finish'.
 * Ferry takes such writes without going through Writable (Socket#write), so each rule is pinned
 * here against node:net.
 */
import assert from 'node:assert/strict';
import type { Scenario } from './scenario.js';
import { settle } from './scenarios-close.js';
import type { Scope } from './scope.js';
import type { SocketLike } from './targets.js';
import { errCode } from './trace.js';

/** What a program can read right after a write() returned. */
function afterWrite(s: SocketLike, ret: unknown): string {
  return `ret=${ret} len=${s.writableLength} needDrain=${s.writableNeedDrain} written=${s.bytesWritten}`;
}

/** Collects what the server reads, as hex (latin1 and utf8 strings differ in bytes). */
async function sinkServer(
  sc: Scope,
): Promise<{ server: Parameters<Scope['connect']>[0]; got: () => string }> {
  const parts: Buffer[] = [];
  const { server } = await sc.serve({}, {}, (s) => {
    s.on('data', (d: Buffer) => parts.push(d));
  });
  return { server, got: () => Buffer.concat(parts).toString('hex') };
}

const callbackTicks: Scenario = {
  name: 'small writes: callbacks on later ticks, one tick per run of the same callback, state after each write',
  async run(sc: Scope) {
    const { server, got } = await sinkServer(sc);
    const { sock, trace } = sc.connect(server);
    const marks: string[] = [];
    const cb = (name: string) => (e: unknown) => trace.mark(`cb:${name}:${errCode(e)}`);
    const f = cb('f');
    const g = cb('g');
    sock.on('connect', () => {
      marks.push(afterWrite(sock, sock.write(Buffer.from('0123456789abcdef'), f)));
      process.nextTick(() => trace.mark('tick:1'));
      // The same callback again: called on the first write's tick, before tick:1.
      marks.push(afterWrite(sock, sock.write(new Uint8Array([1, 2, 3]), f)));
      // Another callback: a tick of its own, after tick:1.
      marks.push(afterWrite(sock, sock.write('str', g)));
      process.nextTick(() => trace.mark('tick:2'));
      marks.push(afterWrite(sock, sock.write('\u00e9', 'latin1', f)));
      marks.push(afterWrite(sock, sock.write(Buffer.from('x'), 'utf8', g)));
      marks.push(afterWrite(sock, sock.write(Buffer.from('y'))));
      // A callback that is not a function is ignored, as Writable does.
      marks.push(afterWrite(sock, sock.write(Buffer.from('z'), null, 42)));
      trace.mark('returned');
      sock.end(() => trace.mark('cb:end'));
    });
    await trace.until('close');
    await settle(trace);
    return { common: { got: got(), marks, client: trace.entries, bytesWritten: sock.bytesWritten } };
  },
  check(ref) {
    const client = ref.common['client'] as string[];
    // The callbacks run after the call returned, in the order Writable gives them.
    assert.ok(client.indexOf('returned') < client.indexOf('cb:f:null'));
    assert.ok(client.indexOf('cb:f:null') < client.indexOf('tick:1'));
    assert.ok(client.indexOf('tick:1') < client.indexOf('cb:g:null'));
    assert.ok(client.indexOf('cb:g:null') < client.indexOf('finish'));
    assert.equal(
      ref.common['got'],
      Buffer.from('0123456789abcdef\u0001\u0002\u0003str\u00e9xyz', 'latin1').toString('hex'),
    );
  },
};

const callbackOrderAcrossSizes: Scenario = {
  name: 'small and large writes interleaved: callbacks keep write order across the ticks they share',
  async run(sc: Scope) {
    const { server, got } = await sinkServer(sc);
    const { sock, trace } = sc.connect(server);
    const marks: string[] = [];
    sock.on('connect', () => {
      const f = (e: unknown) => trace.mark(`cb:f:${errCode(e)}`);
      const g = (e: unknown) => trace.mark(`cb:g:${errCode(e)}`);
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(64, 1), f)));
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(4096, 2), g)));
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(64, 3), f)));
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(4096, 4), f)));
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(64, 5), g)));
      process.nextTick(() => trace.mark('tick'));
      // The same callback as the last write: called on that write's tick, before 'tick'.
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(0), g)));
      marks.push(afterWrite(sock, sock.write(Buffer.alloc(64, 6), f)));
      sock.end();
    });
    await trace.until('close');
    await settle(trace);
    return { common: { gotBytes: got().length / 2, marks, client: trace.entries } };
  },
  check(ref) {
    const client = ref.common['client'] as string[];
    assert.deepEqual(
      client.filter((e) => e.startsWith('cb:') || e === 'tick'),
      ['cb:f:null', 'cb:g:null', 'cb:f:null', 'cb:f:null', 'cb:g:null', 'cb:g:null', 'tick', 'cb:f:null'],
    );
    assert.equal(ref.common['gotBytes'], 64 * 4 + 4096 * 2);
  },
};

const writeInCallback: Scenario = {
  name: "writes from a write's callback and after setDefaultEncoding: bytes in order, callbacks a tick later",
  async run(sc: Scope) {
    const { server, got } = await sinkServer(sc);
    const { sock, trace } = sc.connect(server);
    const marks: string[] = [];
    sock.on('connect', () => {
      sock.setDefaultEncoding('latin1');
      sock.write('\u00e9', (e: unknown) => {
        trace.mark(`cb:1:${errCode(e)}`);
        marks.push(
          afterWrite(
            sock,
            sock.write('\u00e8', (e2: unknown) => trace.mark(`cb:2:${errCode(e2)}`)),
          ),
        );
        trace.mark('wrote-2');
        sock.end('!');
      });
    });
    await trace.until('close');
    await settle(trace);
    return { common: { got: got(), marks, client: trace.entries } };
  },
  check(ref) {
    assert.equal(ref.common['got'], 'e9e821');
    const client = ref.common['client'] as string[];
    assert.ok(client.indexOf('wrote-2') < client.indexOf('cb:2:null'));
  },
};

const writeAfterEndOrDestroy: Scenario = {
  name: 'small writes right after end() and after destroy(): the errors, return values and callback ticks',
  async run(sc: Scope) {
    const { server } = await sinkServer(sc);
    const a = sc.connect(server);
    a.sock.on('connect', () => {
      a.sock.write(Buffer.from('ab'), (e: unknown) => a.trace.mark(`cb:ab:${errCode(e)}`));
      a.sock.end();
      const r = a.sock.write(Buffer.from('cd'), (e: unknown) => a.trace.mark(`cb:cd:${errCode(e)}`));
      process.nextTick(() => a.trace.mark('tick'));
      a.trace.mark(`write-after-end:${r}`);
    });
    const b = sc.connect(server);
    b.sock.on('connect', () => {
      b.sock.write(Buffer.from('ab'), (e: unknown) => b.trace.mark(`cb:ab:${errCode(e)}`));
      b.sock.destroy();
      const r = b.sock.write(Buffer.from('cd'), (e: unknown) => b.trace.mark(`cb:cd:${errCode(e)}`));
      b.trace.mark(`write-after-destroy:${r} needDrain=${b.sock.writableNeedDrain}`);
    });
    await settle(a.trace, b.trace);
    return { common: { ended: a.trace.entries, destroyed: b.trace.entries } };
  },
  check(ref) {
    assert.ok((ref.common['ended'] as string[]).includes('cb:cd:ERR_STREAM_WRITE_AFTER_END'));
    assert.ok((ref.common['destroyed'] as string[]).includes('cb:cd:ERR_STREAM_DESTROYED'));
  },
};

const smallWritesDrain: Scenario = {
  name: "64 B writes until write() returns false while the peer does not read; 'drain' once it reads",
  async run(sc: Scope) {
    let serverGot = 0;
    const { server, nextConn } = await sc.serve({}, {}, (s) => {
      s.pause();
      s.on('data', (d: Buffer) => (serverGot += d.length));
    });
    const { sock, trace } = sc.connect(server, {}, { drain: true });
    const conn = await nextConn();
    await trace.until('ready');
    const chunk = Buffer.alloc(64, 7);
    // Bounded: 2 million writes (128 MB) is far past any kernel or fifo buffer.
    let writes = 0;
    let cbs = 0;
    while (writes < 2_000_000 && sock.write(chunk, () => cbs++)) writes++;
    const atFalse = `needDrain=${sock.writableNeedDrain} queued=${sock.writableLength > 0}`;
    trace.mark(`false-after-some:${writes < 2_000_000}`);
    conn.sock.resume();
    await trace.until('drain');
    sock.end();
    await settle(trace, conn.trace);
    return {
      common: {
        atFalse,
        client: trace.entries,
        allArrived: serverGot === sock.bytesWritten && serverGot === (writes + 1) * 64,
        allCalledBack: cbs === writes + 1,
        server: conn.trace.entries,
      },
    };
  },
  check(ref) {
    assert.equal(ref.common['allArrived'], true);
    assert.equal(ref.common['allCalledBack'], true);
    assert.equal(ref.common['atFalse'], 'needDrain=true queued=true');
  },
};

export const WRITE_SCENARIOS: readonly Scenario[] = [
  callbackTicks,
  callbackOrderAcrossSizes,
  writeInCallback,
  writeAfterEndOrDestroy,
  smallWritesDrain,
];
