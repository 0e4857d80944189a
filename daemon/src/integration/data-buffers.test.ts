/**
 * The Buffers 'data' hands out are the user's: nothing writes into one after it was delivered,
 * whatever the SDK reads next and however the memory freed around it is reused (the first large
 * read raises glibc's trim threshold, so freed read Buffers come back as new ones at once:
 * sdk/src/sys/malloc-tuning.ts). In this process, against a real ferryd, cut-through.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { mallocTuning } from '@ferry/sdk/internal';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';

let d: DaemonHandle;
let source: Server;
let sourceUri = '';
const PAYLOAD = randomBytes(24 * 1024 * 1024);

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  // Streams the payload in 256 KiB writes, as a bulk sender does, then ends.
  source = createServer(async (s: Socket) => {
    s.on('error', () => {});
    for (let off = 0; off < PAYLOAD.length; off += 256 * 1024) {
      if (!s.write(PAYLOAD.subarray(off, off + 256 * 1024))) await once(s, 'drain');
    }
    s.end();
  });
  await new Promise<void>((resolve) => source.listen('tcp://127.0.0.1:0', resolve));
  sourceUri = source.address()?.uri ?? '';
});

after(async () => {
  await new Promise<void>((resolve) => source.close(() => resolve()));
  await d.stop();
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

test("'data' Buffers keep their bytes after later reads, frees and reuse of memory", async () => {
  const s = connect({ uri: sourceUri });
  // Paused until connected: the 1 MiB fifo fills, so reads take up to all of it.
  s.pause();
  await once(s, 'connect');
  await new Promise((r) => setTimeout(r, 50));
  const kept: { buf: Buffer; sum: string }[] = [];
  let largest = 0;
  let churn = 0;
  s.on('data', (buf: Buffer) => {
    kept.push({ buf, sum: sha(buf) });
    largest = Math.max(largest, buf.length);
    // Churn: large Buffers allocated and dropped between reads, so freed memory is reused while
    // the delivered Buffers are still held.
    for (let i = 0; i < 8; i++) churn += Buffer.allocUnsafe(512 * 1024).length;
  });
  s.resume();
  await once(s, 'end');
  assert.ok(churn > 0);
  assert.ok(largest >= 128 * 1024, `some reads were large (largest ${largest} B)`);
  // The first large read decided on the malloc thresholds (applied, or skipped by the environment).
  assert.notEqual(mallocTuning().state, 'untried');
  for (const [i, k] of kept.entries()) assert.equal(sha(k.buf), k.sum, `Buffer ${i} changed after delivery`);
  const all = Buffer.concat(kept.map((k) => k.buf));
  assert.equal(all.length, PAYLOAD.length);
  assert.ok(all.equals(PAYLOAD));
  s.destroy();
});
