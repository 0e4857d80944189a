/**
 * What a keep-alive connection does to a Socket on every request, kept cheap and correct:
 * node:http turns the socket's idle timeout off when a request arrives and on again after its
 * response, and undici reads each response with 'readable' and read(). In this process, against a
 * real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let echo: Server;
let uri = '';
const accepted: Socket[] = [];

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  echo = createServer((s) => {
    accepted.push(s);
    s.on('error', () => {});
    s.on('data', (b: Buffer) => s.write(b));
    s.on('end', () => s.end());
  });
  await new Promise<void>((resolve) => echo.listen('tcp://127.0.0.1:0', resolve));
  uri = echo.address()?.uri ?? '';
});

after(async () => {
  for (const a of accepted) a.destroy();
  await new Promise<void>((resolve) => echo.close(() => resolve()));
  await d.stop();
});

async function open(): Promise<Socket> {
  const s = connect({ uri });
  await once(s, 'connect');
  return s;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("setTimeout(0) then setTimeout(ms) per request makes one Timeout, not one per request, and keeps net's 'timeout'", async () => {
  const s = await open();
  let made = 0;
  const hook = createHook({
    init(_id, type) {
      if (type === 'Timeout') made++;
    },
  }).enable();
  try {
    // node:http's keep-alive cycle: off when a request comes, on after its response.
    for (let i = 0; i < 100; i++) {
      s.setTimeout(0);
      s.setTimeout(60_000);
    }
  } finally {
    hook.disable();
  }
  assert.ok(made <= 1, `${made} Timeouts for 100 keep-alive cycles`);
  assert.equal(s.timeout, 60_000);

  let timeouts = 0;
  s.on('timeout', () => timeouts++);
  // Turned off: the timer left scheduled must not emit when it runs out.
  s.setTimeout(30);
  s.setTimeout(0);
  await sleep(90);
  assert.equal(timeouts, 0);
  // On again with the same length: the kept timer (already run out) is armed again, once.
  s.setTimeout(30);
  await sleep(120);
  assert.equal(timeouts, 1);
  // Another length: a timer of its own; the old one stays silent.
  s.setTimeout(20);
  s.setTimeout(0);
  s.setTimeout(50);
  await sleep(35);
  assert.equal(timeouts, 1);
  await sleep(80);
  assert.equal(timeouts, 2);
  s.destroy();
});

test("after a 'timeout', activity arms the idle timer again, as net.Socket's (and silence does not)", async () => {
  const s = await open();
  let timeouts = 0;
  s.on('timeout', () => timeouts++);
  s.on('data', () => {});
  s.setTimeout(30);
  await sleep(90);
  assert.equal(timeouts, 1);
  // Silence after it: no second one (the timer is not periodic).
  await sleep(90);
  assert.equal(timeouts, 1);
  // A write (and the echo read back) is activity: net.Socket refreshes its timer on it, which
  // runs out again after 30 ms of silence.
  s.write('x');
  await sleep(150);
  assert.equal(timeouts, 2);
  s.destroy();
});

test("a reader that takes each chunk with read() on 'readable' (undici's way) gets every reply and the FIN", async () => {
  const s = await open();
  let got = '';
  let waiting: (() => void) | null = null;
  s.on('readable', () => {
    for (let c = s.read() as Buffer | null; c !== null; c = s.read() as Buffer | null) got += c.toString();
    waiting?.();
  });
  const ended = once(s, 'end');
  // Request/response: each reply arrives after the reader armed and found nothing, some right
  // after its read() asked for more, some a little later.
  for (let i = 0; i < 2000; i++) {
    const msg = `r${i};`;
    const want = got.length + msg.length;
    s.write(msg);
    while (got.length < want) {
      await new Promise<void>((resolve) => {
        waiting = resolve;
        if (i % 97 === 0) setTimeout(resolve, 2);
      });
      waiting = null;
    }
  }
  assert.equal(got, Array.from({ length: 2000 }, (_, i) => `r${i};`).join(''));
  s.end();
  await ended;
  s.destroy();
});
