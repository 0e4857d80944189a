/**
 * Interrupt mode never polls on a clock: a round trip's sleeps and wake-ups must not read it either
 * (the contention rule's window, which adaptive mode opens, is never open here). Each reading was
 * a call out of optimized code on every sleep of both ends: about 0.4 us of a node:http server's
 * ~15 us per request (BENCHMARKS.md, wake8). In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { connect, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';
import { listenEcho } from '../testing/sdk-echo-server.js';

let d: DaemonHandle;
let echo: Server;
let uri = '';
let accepted: Socket[] = [];

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  process.env['FERRY_MODE'] = 'interrupt';
  ({ server: echo, uri, accepted } = await listenEcho());
});

after(async () => {
  for (const a of accepted) a.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
  await d.stop();
});

test('interrupt mode: 200 echo round trips (both ends sleep between them) read the clock almost never', async () => {
  const s = connect({ uri });
  await once(s, 'connect');
  const ping = Buffer.from('ping');
  // Warm: the first round trips set things up (connect, first reads).
  for (let i = 0; i < 20; i++) {
    s.write(ping);
    await once(s, 'data');
  }
  const realNow = performance.now;
  let reads = 0;
  performance.now = function (this: typeof performance) {
    reads++;
    return realNow.call(this);
  };
  let trips = 0;
  try {
    for (; trips < 200; trips++) {
      s.write(ping);
      const [b] = (await once(s, 'data')) as [Buffer];
      assert.equal(b.toString(), 'ping');
    }
  } finally {
    performance.now = realNow;
  }
  assert.equal(trips, 200);
  // Both ends (one attachment here) sleep after every round trip, woken by the other's ring:
  // before, each sleep read the clock once (200 readings here).
  assert.ok(reads < 20, `${reads} clock readings in 200 round trips`);
  s.destroy();
});
