/**
 * The SDK's diagnostics channels (sdk/src/api/diagnostics.ts), in this process against a real
 * ferryd: each event, in order, with its payload.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { connect, createServer, type FerryError, type Server, type Socket } from '@ferry/sdk';
import { connectMessages, createMessageServer, type MessageServer } from '@ferry/sdk/messages';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

const NAMES = [
  'ferry:client:connect',
  'ferry:client:connected',
  'ferry:client:connectError',
  'ferry:server:accepted',
  'ferry:socket:close',
  ...['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((e) => `tracing:ferry:connect:${e}`),
  ...['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((e) => `tracing:ferry:message:request:${e}`),
];

type Event = { name: string; msg: Record<string, unknown> };

/** Records every event of the SDK's channels until stopped. */
function record(): { events: Event[]; stop: () => void } {
  const events: Event[] = [];
  const fns = NAMES.map((name) => {
    const fn = (msg: unknown) => events.push({ name, msg: msg as Record<string, unknown> });
    subscribe(name, fn);
    return [name, fn] as const;
  });
  const stop = () => {
    for (const [n, fn] of fns) unsubscribe(n, fn);
  };
  return { events, stop };
}

/** The error in an event's payload (the test fails if there is none). */
const errorOf = (e: Event | undefined): { code?: string; message: string } => {
  const err = e?.msg['error'];
  assert.ok(err instanceof Error, `no error in ${e?.name}`);
  return err as Error & { code?: string };
};

const about = (events: Event[], obj: unknown) =>
  events.filter((e) => e.msg['socket'] === obj || e.msg['channel'] === obj).map((e) => e.name);

let d: DaemonHandle;
let server: Server;
let uri = '';

before(async () => {
  d = await startDaemon();
  server = createServer({ socket: d.socket }, (s: Socket) => {
    // A client that gives up while connecting resets the session this side was accepted on.
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((resolve) => server.listen('tcp://127.0.0.1:0', resolve));
  uri = String(server.address()?.uri);
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await d?.stop();
});

describe('diagnostics channels', () => {
  test('a connect that succeeds: connect, the trace, connected; accepted; close with byte counts', async () => {
    const r = record();
    try {
      let accepted: Socket | null = null;
      server.once('connection', (s: Socket) => {
        accepted = s;
      });
      const sock = connect({ uri, socket: d.socket });
      // Published synchronously by connect(), with the trace's start and end.
      assert.deepEqual(about(r.events, sock), [
        'ferry:client:connect',
        'tracing:ferry:connect:start',
        'tracing:ferry:connect:end',
      ]);
      await new Promise<void>((resolve) => sock.once('connect', resolve));
      const got: Buffer[] = [];
      sock.on('data', (b: Buffer) => got.push(b));
      sock.end('hello diagnostics');
      await new Promise<void>((resolve) => sock.once('close', () => resolve()));
      await eventually(async () => about(r.events, accepted).includes('ferry:socket:close'));
      assert.equal(Buffer.concat(got).toString(), 'hello diagnostics');
      assert.deepEqual(about(r.events, sock), [
        'ferry:client:connect',
        'tracing:ferry:connect:start',
        'tracing:ferry:connect:end',
        'tracing:ferry:connect:asyncStart',
        'tracing:ferry:connect:asyncEnd',
        'ferry:client:connected',
        'ferry:socket:close',
      ]);
      const byName = (s: unknown, n: string) =>
        r.events.find((e) => e.name === n && e.msg['socket'] === s)?.msg;
      assert.equal(byName(sock, 'ferry:client:connect')?.['uri'], uri);
      assert.equal(byName(sock, 'tracing:ferry:connect:start')?.['uri'], uri);
      const ok = byName(sock, 'ferry:client:connected');
      assert.equal(ok?.['transport'], 'ct');
      assert.equal(ok?.['uri'], uri);
      assert.ok(typeof ok?.['durationMs'] === 'number' && (ok['durationMs'] as number) >= 0);
      const closed = byName(sock, 'ferry:socket:close');
      assert.equal(closed?.['error'], null);
      assert.equal(closed?.['bytesWritten'], 17);
      assert.equal(closed?.['bytesRead'], 17);
      assert.equal(closed?.['transport'], 'ct');
      // The server side: accepted (before 'connection'), then its close.
      assert.ok(accepted);
      assert.deepEqual(about(r.events, accepted), ['ferry:server:accepted', 'ferry:socket:close']);
      assert.equal(byName(accepted, 'ferry:server:accepted')?.['server'], server);
      assert.equal(byName(accepted, 'ferry:socket:close')?.['bytesRead'], 17);
    } finally {
      r.stop();
    }
  });

  test('a refused connect: the trace ends in error, then connectError with the error, then close', async () => {
    const r = record();
    try {
      const sock = connect({ uri: 'tcp://127.0.0.1:1', socket: d.socket });
      const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
      const err = await new Promise<FerryError>((resolve) => sock.once('error', resolve));
      assert.equal(err.code, 'ECONNREFUSED');
      await closed;
      assert.deepEqual(about(r.events, sock), [
        'ferry:client:connect',
        'tracing:ferry:connect:start',
        'tracing:ferry:connect:end',
        'tracing:ferry:connect:error',
        'tracing:ferry:connect:asyncStart',
        'tracing:ferry:connect:asyncEnd',
        'ferry:client:connectError',
        'ferry:socket:close',
      ]);
      assert.equal(
        errorOf(r.events.find((e) => e.name === 'ferry:client:connectError')).code,
        'ECONNREFUSED',
      );
      assert.equal(
        errorOf(r.events.find((e) => e.name === 'tracing:ferry:connect:error')).code,
        'ECONNREFUSED',
      );
      assert.equal(errorOf(r.events.find((e) => e.name === 'ferry:socket:close')).code, 'ECONNREFUSED');
    } finally {
      r.stop();
    }
  });

  test('a socket destroyed while connecting reports connectError (ECONNABORTED) at once', async () => {
    const r = record();
    try {
      const sock = connect({ uri, socket: d.socket });
      sock.destroy();
      await new Promise<void>((resolve) => sock.once('close', () => resolve()));
      const names = about(r.events, sock);
      assert.deepEqual(names.slice(0, 3), [
        'ferry:client:connect',
        'tracing:ferry:connect:start',
        'tracing:ferry:connect:end',
      ]);
      assert.deepEqual(names.slice(3, 5), ['ferry:socket:close', 'ferry:client:connectError']);
      assert.equal(
        errorOf(r.events.find((e) => e.name === 'ferry:client:connectError')).code,
        'ECONNABORTED',
      );
      // ferryd's answer still comes (and the session it made is reset): no 'connected' follows.
      await eventually(async () => about(r.events, sock).includes('tracing:ferry:connect:asyncEnd'));
      assert.ok(!about(r.events, sock).includes('ferry:client:connected'));
    } finally {
      r.stop();
    }
  });

  test('message requests are traced with the request and its result or error', async () => {
    const ms: MessageServer = createMessageServer({
      socket: d.socket,
      onRequest: (v) => {
        const req = v as { op: string; n: number };
        if (req.op === 'fail') throw new Error('no');
        return { doubled: req.n * 2 };
      },
    }).listen('tcp://127.0.0.1:0');
    await ms.ready();
    const ch = await connectMessages(ms.uri ?? '', { socket: d.socket });
    const r = record();
    try {
      assert.deepEqual(await ch.request({ op: 'double', n: 21 }), { doubled: 42 });
      await assert.rejects(ch.request({ op: 'fail', n: 0 }));
      const mine = r.events.filter((e) => e.msg['channel'] === ch);
      assert.deepEqual(
        mine.map((e) => e.name),
        [
          'tracing:ferry:message:request:start',
          'tracing:ferry:message:request:end',
          'tracing:ferry:message:request:asyncStart',
          'tracing:ferry:message:request:asyncEnd',
          'tracing:ferry:message:request:start',
          'tracing:ferry:message:request:end',
          'tracing:ferry:message:request:error',
          'tracing:ferry:message:request:asyncStart',
          'tracing:ferry:message:request:asyncEnd',
        ],
      );
      assert.deepEqual(mine[0]?.msg['request'], { op: 'double', n: 21 });
      assert.deepEqual(mine[3]?.msg['result'], { doubled: 42 });
      assert.match(errorOf(mine[6]).message, /no/);
    } finally {
      r.stop();
      await ch.close();
      await ms.close();
    }
  });
});
