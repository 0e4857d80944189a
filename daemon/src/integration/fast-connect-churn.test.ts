/**
 * Fast connects under churn: eight connects in flight at a time (each connect, 64 B echo, close),
 * the pool growing and reclaiming, notices batched, while a SIGHUP reload adds a rule that denies
 * the service. Every connection that opened echoes its bytes; every connect made after the reload
 * is denied (ERR_FERRY_DENIED), fast or not; afterwards ferryd's table holds nothing of them. In
 * this process (client and server in one app), against a real ferryd. Bounded in count and time.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { connect, type Server } from '@ferry/sdk';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { listenEcho } from '../testing/sdk-echo-server.js';

let d: DaemonHandle;
let server: Server;
let uri = '';
let dir = '';
let file = '';

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-churn-'));
  file = join(dir, 'ferryd.json');
  writeFileSync(file, JSON.stringify({ rules: [] }));
  d = await startDaemon(['--config', file]);
  process.env['FERRY_SOCKET'] = d.socket;
  ({ server, uri } = await listenEcho());
});

after(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await d.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** One connection: connect, 64 B of `byte`, its echo, close. Resolves with the error, if any. */
function oneConnection(byte: number): Promise<{ err: Error | null; echoed: boolean }> {
  return new Promise((resolve) => {
    const s = connect(uri);
    const got: Buffer[] = [];
    let n = 0;
    let err: Error | null = null;
    s.on('error', (e) => {
      err = e;
    });
    s.on('data', (b: Buffer) => {
      got.push(b);
      n += b.length;
      if (n >= 64) s.end();
    });
    s.on('close', () => {
      const echoed = n === 64 && Buffer.concat(got).equals(Buffer.alloc(64, byte));
      resolve({ err, echoed });
    });
    s.write(Buffer.alloc(64, byte));
  });
}

const session = async () => (await d.stats())['session'] as Record<string, number>;

test('a reload that denies the service, in the middle of fast-connect churn', async () => {
  const total = 400;
  const reloadAt = 150;
  let started = 0;
  let done = 0;
  let reloaded = false;
  let afterReload = 0;
  const results: { err: Error | null; echoed: boolean; late: boolean }[] = [];
  const deadline = Date.now() + 60_000;
  const reload = async () => {
    const seen = d.output().split('configuration reload').length;
    const port = Number(uri.split(':').pop());
    writeFileSync(file, JSON.stringify({ rules: [{ action: 'deny', service: `tcp://*:${port}` }] }));
    d.proc.kill('SIGHUP');
    await eventually(async () => d.output().split('configuration reload').length > seen, 10_000, 'reload');
    reloaded = true;
  };
  let reloading: Promise<void> | null = null;
  // At least `total` connects, and on until some were made after the reload was seen: fast connects
  // reuse their pairs without ferryd now, and may all be done before a reload lands otherwise.
  const lateWanted = 40;
  const worker = async () => {
    while ((started < total || afterReload < lateWanted) && Date.now() < deadline) {
      started++;
      const late = reloaded;
      if (late) afterReload++;
      const r = await oneConnection(started & 0xff);
      results.push({ ...r, late });
      done++;
      if (done === reloadAt) reloading = reload();
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  await reloading;
  assert.ok(results.length >= total, 'every connect finished within the time bound');
  assert.ok(afterReload > 0, 'connects were made after the reload');
  for (const r of results) {
    if (r.late) {
      assert.equal((r.err as { code?: string } | null)?.code, 'ERR_FERRY_DENIED', `late connect: ${r.err}`);
    } else if (r.err === null) {
      assert.ok(r.echoed, 'a connection that opened echoed its 64 bytes');
    } else {
      // Made before the reload was seen: either it opened (above), or the reload denied it.
      assert.equal((r.err as { code?: string }).code, 'ERR_FERRY_DENIED', String(r.err));
    }
  }
  const opened = results.filter((r) => r.err === null).length;
  assert.ok(opened >= reloadAt, `connections before the reload opened (${opened})`);
  const s = await session();
  assert.ok((s['fastConnects'] ?? 0) > 0, 'fast connects were made');
  assert.ok((s['poolsRevoked'] ?? 0) >= 1, 'the reload revoked the pool');
  await eventually(async () => (await d.stats())['sessions'] === 0, 10_000, 'every session freed');
});
