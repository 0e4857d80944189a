/**
 * Batched notices (NOTICE_BATCH): the session notices an app makes in one event-loop turn reach
 * ferryd as one `notices` message, and ferryd's table follows them exactly as it followed the
 * single messages: connections closed in one turn leave it, nothing leaks; fast connects (pairs
 * reused in place) send no notice at all and are counted when ferryd samples; and a connect the
 * pool serves arms no connect timer. In this process (client
 * and server in one app), against a real ferryd.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { connect, type Server, type Socket } from '@ferry/sdk';
import { backToBaseline, type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { listenEcho } from '../testing/sdk-echo-server.js';

let d: DaemonHandle;
let server: Server;
let uri = '';

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  ({ server, uri } = await listenEcho());
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await d.stop();
});

const stats = async () => (await d.stats()) as Record<string, Record<string, number> | number>;
const ctrl = async () => (await stats())['ctrl'] as Record<string, number>;
const session = async () => (await stats())['session'] as Record<string, number>;

/** Echoes 64 B on `s` and resolves with what came back. */
async function echo(s: Socket, byte: number): Promise<Buffer> {
  const got: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((resolve) => {
    s.on('data', (b: Buffer) => {
      got.push(b);
      n += b.length;
      if (n >= 64) resolve();
    });
  });
  s.write(Buffer.alloc(64, byte));
  await done;
  return Buffer.concat(got);
}

test('fast connects send ferryd no notice; connections it placed, closed in one turn, close in batches', async () => {
  // The first connect goes through ferryd and lends the pair a pool.
  const first = connect(uri);
  await once(first, 'connect');
  assert.deepEqual(await echo(first, 1), Buffer.alloc(64, 1));
  first.end();
  await once(first, 'close');
  await eventually(async () => (await session())['poolsGranted'] === 1, 10_000, 'a pool lent');
  await eventually(async () => (await d.stats())['sessions'] === 0, 10_000, 'the first connection freed');
  // From here on the pair segment stays (the pool's pairs live in it).
  const base = await d.stats();
  const before = await ctrl();
  const fastBefore = (await session())['fastConnects'] ?? 0;

  // Six connects in one turn: fast connects, of which ferryd hears nothing (it counts them from
  // the pairs' words when it samples, and shows them without putting them in its table).
  const socks = Array.from({ length: 6 }, () => connect(uri));
  await Promise.all(socks.map((s) => once(s, 'connect')));
  const echoes = await Promise.all(socks.map((s, i) => echo(s, 10 + i)));
  for (const [i, e] of echoes.entries()) assert.deepEqual(e, Buffer.alloc(64, 10 + i));
  await eventually(
    async () => (await session())['fastConnects'] === fastBefore + 6,
    10_000,
    'six fast connects counted',
  );
  const rows = (await d.show('sessions')) as { pooled?: boolean }[];
  assert.equal(rows.filter((r) => r.pooled).length, 12, 'both ends of the six shown');
  const st = await d.stats();
  assert.equal(st['pooledSessions'], 12, 'stats counts both ends of the six as pooled');
  assert.equal(
    Number(st['sessions']) - Number(st['pooledSessions']),
    Number(base['sessions']) - Number(base['pooledSessions']),
    'none in the table',
  );
  for (const s of socks) s.end();
  await Promise.all(socks.map((s) => once(s, 'close')));
  const mid = await ctrl();
  assert.equal(mid['noticesBatched'], before['noticesBatched'], `no notice (${JSON.stringify(mid)})`);

  // Six connects ferryd places (fifo sizes asked for: no pool), all closed in one turn: their close
  // notices (and the server's) ride in batches and leave the table.
  const placed = Array.from({ length: 6 }, () => connect({ uri, rxFifoSize: 65536 }));
  await Promise.all(placed.map((s) => once(s, 'connect')));
  await Promise.all(placed.map((s, i) => echo(s, 20 + i)));
  for (const s of placed) s.end();
  await Promise.all(placed.map((s) => once(s, 'close')));
  await backToBaseline(d, base, 'every session of the batch freed');
  const end = await ctrl();
  assert.ok((end['noticeBatches'] ?? 0) > (mid['noticeBatches'] ?? 0), 'a notices message came');
  assert.ok(
    (end['noticesBatched'] ?? 0) - (mid['noticesBatched'] ?? 0) >= 6,
    `the closes rode in batches (${JSON.stringify(end)})`,
  );
  assert.equal(end['badMessages'], before['badMessages']);
});

test('a fast connect arms no connect timer; a connect that asks ferryd does', async () => {
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  // The pool is lent by now (the test above); make sure the pair segment has pairs for this URI.
  const warm = connect(uri);
  await once(warm, 'connect');
  warm.destroy();
  await once(warm, 'close');
  const before = timers();
  const fast = connect(uri);
  assert.equal(timers(), before, 'no timer for a connect the pool serves');
  await once(fast, 'connect');
  assert.equal(fast.transport, 'ct');
  // Fifo sizes of its own: not what the pool lends, so ferryd is asked, under connectTimeout.
  const asked = connect({ uri, rxFifoSize: 65536 });
  assert.equal(timers(), before + 1, 'the connect timer of a request');
  await once(asked, 'connect');
  assert.deepEqual(await echo(fast, 7), Buffer.alloc(64, 7));
  assert.deepEqual(await echo(asked, 8), Buffer.alloc(64, 8));
  fast.destroy();
  asked.destroy();
  await Promise.all([once(fast, 'close'), once(asked, 'close')]);
});
