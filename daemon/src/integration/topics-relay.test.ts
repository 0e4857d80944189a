/**
 * Topics between hosts and topic policies, with two ferryds on loopback: A exports topics on its
 * relay listener, B imports them; subscribers on B get what publishers on A send through ONE TCP
 * stream per topic, whatever their number. A slow relay stream under lose-oldest forwards its
 * losses as gaps (exactly), under disconnect it is told ERR_FERRY_SLOW_SUBSCRIBER and closed; a
 * local subscriber of a disconnect topic ends with that error when lapped; a topic that is not
 * exported ends B's subscribers; rules see topic names.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createPlainDecoder,
  createTopicDecoder,
  encodeRelayJson,
  RELAY_KIND,
  RELAY_VERSION,
  RelayDecoder,
  type RelayFrame,
} from '@ferry/sdk/internal';
import { publish, type Subscriber, subscribe } from '@ferry/sdk/messages';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

interface Row {
  name: string;
  policy: string;
  subscribers: unknown[];
  relays: { direction: string; peer: string; messages: number; dropped: number }[];
}

let a: DaemonHandle;
let b: DaemonHandle;
let relayPort = 0;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

function configFile(name: string, config: unknown): string {
  const file = join(tmpdir(), `ferry-relay-${process.pid}-${name}.json`);
  writeFileSync(file, JSON.stringify(config));
  return file;
}

before(async () => {
  relayPort = await freePort();
  a = await startDaemon([
    '--config',
    configFile('a', {
      topics: {
        relayListen: `127.0.0.1:${relayPort}`,
        export: [{ topic: 'prices' }, { topic: 'gappy' }, { topic: 'slow' }],
        policies: [{ topic: 'slow', slow: 'disconnect', maxLagBytes: 65536 }],
      },
      rules: [{ action: 'deny', service: 'topic://forbidden:*' }],
    }),
  ]);
  const from = `127.0.0.1:${relayPort}`;
  b = await startDaemon([
    '--config',
    configFile('b', {
      topics: {
        import: [
          { topic: 'prices', from },
          { topic: 'secret', from },
        ],
      },
    }),
  ]);
  await eventually(async () => a.output().includes('topic relay listening'), 10_000, 'A relays');
});

after(async () => {
  await Promise.all([a.stop(), b.stop()]);
});

const rows = async (d: DaemonHandle) => (await d.show('topics')) as Row[];

async function take(sub: Subscriber, n: number): Promise<unknown[]> {
  const out: unknown[] = [];
  const it = sub[Symbol.asyncIterator]();
  while (out.length < n) {
    const r = await it.next();
    if (r.done) break;
    out.push(r.value);
  }
  return out;
}

/** A raw importer: speaks the relay protocol itself and reads only when told to. */
async function rawImporter(topic: string, hello: Record<string, unknown> = {}) {
  const socket = net.connect({ host: '127.0.0.1', port: relayPort });
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    encodeRelayJson(RELAY_KIND.HELLO, { v: RELAY_VERSION, namespace: 'default', topic, ...hello }),
  );
  const dec = new RelayDecoder(1 << 20);
  const frames: RelayFrame[] = [];
  socket.on('data', (c: Buffer) => {
    for (const f of dec.push(c)) frames.push(f);
  });
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  socket.on('error', () => {});
  await eventually(async () => frames.length > 0, 10_000, 'WELCOME');
  return { socket, frames, closed };
}

describe('topics between two ferryds', () => {
  test('subscribers on B get everything publishers on A send, through one stream', async () => {
    const opts = { socket: b.socket };
    const subs = [await subscribe('prices', opts), await subscribe('prices', opts)];
    await eventually(
      async () => (await rows(a)).find((t) => t.name === 'prices')?.relays.length === 1,
      10_000,
      'A serves the relay',
    );
    const pub = await publish('prices', { socket: a.socket });
    const n = 3000;
    for (let i = 0; i < n; i++) {
      pub.send({ i, sym: 'X' });
      if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    }
    for (const s of subs) {
      const got = (await take(s, n)) as { i: number }[];
      assert.deepEqual(
        got.map((v) => v.i),
        Array.from({ length: n }, (_, i) => i),
      );
      assert.equal(s.dropped, 0);
    }
    const outA = (await rows(a)).find((t) => t.name === 'prices');
    assert.equal(outA?.relays.length, 1, 'one stream for two subscribers');
    assert.equal(outA?.relays[0]?.direction, 'out');
    const inB = (await rows(b)).find((t) => t.name === 'prices');
    assert.equal(inB?.relays.length, 1);
    assert.equal(inB?.relays[0]?.direction, 'in');
    assert.equal(inB?.subscribers.length, 2);
    await Promise.all([pub.close(), ...subs.map((s) => s.close())]);
    // The last subscriber on B gone: the stream closes, and A's topic goes with it.
    await eventually(async () => !(await rows(a)).some((t) => t.name === 'prices'), 10_000, 'A let go');
    await eventually(async () => !(await rows(b)).some((t) => t.name === 'prices'), 10_000, 'B let go');
  });

  test('a topic A does not export ends the subscribers on B (ECONNRESET)', async () => {
    const sub = await subscribe('secret', { socket: b.socket });
    await assert.rejects(take(sub, 1), { code: 'ECONNRESET' });
    await eventually(async () => b.output().includes('not exported'), 10_000, 'B logs why');
  });

  test('lose-oldest: a stream that cannot keep up forwards what it lost as gaps, exactly', async () => {
    // The publisher first: the topic's first member decides its ring (64 KiB, so that it laps).
    const pub = await publish('gappy', { socket: a.socket, ringBytes: 64 * 1024 });
    const imp = await rawImporter('gappy');
    assert.equal(imp.frames[0]?.kind, RELAY_KIND.WELCOME);
    imp.socket.pause();
    const n = 100_000;
    const pad = 'x'.repeat(100);
    for (let i = 0; i < n; i++) {
      pub.send({ i, pad });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    imp.socket.resume();
    const decode = createTopicDecoder();
    const lastIndex = () => {
      const f = imp.frames.at(-1);
      return f?.kind === RELAY_KIND.RECORD ? (decode(f.payload) as { i: number }).i : -1;
    };
    await eventually(async () => lastIndex() === n - 1, 60_000, 'the last record arrives');
    let records = 0;
    let gaps = 0;
    for (const f of imp.frames) {
      if (f.kind !== RELAY_KIND.RECORD) continue;
      records++;
      gaps += f.gap;
    }
    assert.ok(gaps > 0, 'the ring lapped the paused stream');
    assert.equal(records + gaps, n, `${records} records + ${gaps} lost`);
    imp.socket.destroy();
    await pub.close();
  });

  test('an older importer (HELLO without shapes) gets msgpack its SDK decodes; one that says shapes: 1 gets records as published', async () => {
    const older = await rawImporter('gappy');
    const newer = await rawImporter('gappy', { shapes: 1 });
    assert.deepEqual((older.frames[0] as { json: unknown }).json, {
      v: RELAY_VERSION,
      policy: 'lose-oldest',
    });
    assert.deepEqual((newer.frames[0] as { json: unknown }).json, {
      v: RELAY_VERSION,
      policy: 'lose-oldest',
      shapes: 1,
    });
    const pub = await publish('gappy', { socket: a.socket });
    const values: unknown[] = [];
    for (let i = 0; i < 300; i++) {
      // Plain objects (shape records on A's ring), and now and then one only msgpack carries.
      values.push(
        i % 50 === 7 ? { i, at: new Date(1_700_000_000_000 + i) } : { i, sym: 'X', px: i / 4, tags: ['a'] },
      );
      pub.send(values[i]);
    }
    const records = (imp: { frames: RelayFrame[] }) =>
      imp.frames.filter((f): f is RelayFrame & { kind: 3 } => f.kind === RELAY_KIND.RECORD);
    await eventually(
      async () => records(older).length === 300 && records(newer).length === 300,
      20_000,
      'both importers have every record',
    );
    // What an SDK before shape records (TOPIC_VERSION 1) decodes: msgpack, never a 0xc1 body.
    const plain = createPlainDecoder();
    const o = records(older);
    assert.ok(o.every((f) => f.payload[0] !== 0xc1));
    assert.deepEqual(
      o.map((f) => plain.unpack(f.payload)),
      values,
    );
    const topic = createTopicDecoder();
    const n = records(newer);
    assert.equal(n.filter((f) => f.payload[0] === 0xc1).length, 294, 'plain objects stay shape records');
    assert.deepEqual(
      n.map((f) => topic(f.payload)),
      values,
    );
    older.socket.destroy();
    newer.socket.destroy();
    await pub.close();
  });

  test('disconnect: a stream that falls behind is told ERR_FERRY_SLOW_SUBSCRIBER and closed', async () => {
    const imp = await rawImporter('slow');
    assert.deepEqual((imp.frames[0] as { json: unknown }).json, { v: RELAY_VERSION, policy: 'disconnect' });
    imp.socket.pause();
    const pub = await publish('slow', { socket: a.socket, ringBytes: 64 * 1024 });
    const pad = 'x'.repeat(100);
    for (let i = 0; i < 100_000; i++) {
      pub.send({ i, pad });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    imp.socket.resume();
    await imp.closed;
    const bye = imp.frames.at(-1) as RelayFrame;
    assert.equal(bye.kind, RELAY_KIND.BYE);
    assert.equal((bye as { json: Record<string, unknown> }).json['code'], 'ERR_FERRY_SLOW_SUBSCRIBER');
    await pub.close();
  });

  test('disconnect: a local subscriber lapped ends with ERR_FERRY_SLOW_SUBSCRIBER after what it had', async () => {
    // The publisher first: the topic's first member decides its ring (64 KiB, so that it laps).
    const pub = await publish('slow', { socket: a.socket, ringBytes: 64 * 1024 });
    const sub = await subscribe('slow', { socket: a.socket, highWaterMark: 10 });
    const closed = new Promise<unknown>((r) => sub.once('close', r));
    assert.equal((await rows(a)).find((t) => t.name === 'slow')?.policy, 'disconnect');
    const deadline = Date.now() + 20_000;
    for (let i = 0; i < 20_000; i++) {
      pub.send({ i, pad: 'x'.repeat(40) });
      if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      // It must hold its 10 before it is lapped (what this test is about): it is woken through
      // ferryd, which a loaded machine may not run before the publisher laps a 64 KiB ring.
      if (i === 199) {
        while (sub.bufferedValues < 10 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
      }
    }
    const got: unknown[] = [];
    await assert.rejects(
      (async () => {
        for await (const v of sub) got.push(v);
      })(),
      { code: 'ERR_FERRY_SLOW_SUBSCRIBER' },
    );
    assert.equal(got.length, 10, 'the values it held are delivered first');
    assert.equal(((await closed) as { code?: string })?.code, 'ERR_FERRY_SLOW_SUBSCRIBER');
    assert.equal(sub.error?.code, 'ERR_FERRY_SLOW_SUBSCRIBER');
    await pub.close();
  });

  test('rules see topic names: a denied topic is refused, others are not', async () => {
    await assert.rejects(subscribe('forbidden', { socket: a.socket }), { code: 'ERR_FERRY_DENIED' });
    await assert.rejects(publish('forbidden', { socket: a.socket }), { code: 'ERR_FERRY_DENIED' });
    const ok = await subscribe('allowed', { socket: a.socket });
    await ok.close();
  });

  test('a relay peer that sends garbage is refused with BYE, and A goes on', async () => {
    const s = net.connect({ host: '127.0.0.1', port: relayPort });
    await new Promise((r) => s.once('connect', r));
    const dec = new RelayDecoder(0);
    const frames: RelayFrame[] = [];
    s.on('data', (c: Buffer) => frames.push(...dec.push(c)));
    s.on('error', () => {});
    s.write(Buffer.from([1, 0, 0, 0, 99, 0, 0, 0, 0]));
    await new Promise((r) => s.once('close', r));
    assert.equal(frames[0]?.kind, RELAY_KIND.BYE);
    assert.equal((frames[0] as { json: Record<string, unknown> }).json['code'], 'ERR_FERRY_PROTO_MALFORMED');
    const sub = await subscribe('prices', { socket: b.socket });
    await eventually(async () => (await rows(a)).some((t) => t.name === 'prices'), 10_000, 'A still relays');
    await sub.close();
  });
});
