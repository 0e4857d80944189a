/**
 * Small writes staged in long ticks (Socket#write's stage, flushed whenever it fills) tell a reader
 * in another process at most once per quarter of the fifo, and once more at the end of the tick
 * (AppSession.writeDeferred / tellDeferred). A tell left out leaves a reader that sleeps with bytes
 * in its fifo: here the reader runs in interrupt mode (it sleeps whenever its fifo is empty), so
 * after each tick the test waits (bounded) for the reader to have read all that was written, with
 * nothing more written meanwhile, and at the end compares checksums. Against a real ferryd,
 * cut-through.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, fork } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, type Socket } from '@ferry/sdk';
import { type DaemonHandle, startDaemon } from '../testing/harness.js';
import { seededBytes } from '../testing/seeded.js';

const SINK = fileURLToPath(new URL('../testing/hash-sink.js', import.meta.url));

let d: DaemonHandle;
let sink: ChildProcess;
let sinkUri = '';
const reports: Record<string, unknown>[] = [];
let reported: (() => void) | null = null;

before(async () => {
  d = await startDaemon();
  process.env['FERRY_SOCKET'] = d.socket;
  sink = fork(SINK, [], { env: { ...process.env, FERRY_MODE: 'interrupt' }, stdio: 'inherit' });
  sink.on('message', (m: Record<string, unknown>) => {
    reports.push(m);
    reported?.();
  });
  while (!reports.some((r) => typeof r['uri'] === 'string')) {
    await new Promise<void>((resolve) => {
      reported = resolve;
    });
  }
  sinkUri = String(reports.find((r) => typeof r['uri'] === 'string')?.['uri']);
});

after(async () => {
  sink.disconnect();
  await d.stop();
});

/** Waits at most `ms` for a report `pick` accepts, and takes it (and the reports before it) out. */
async function nextReport(
  ms: number,
  what: string,
  pick: (r: Record<string, unknown>) => boolean,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + ms;
  for (;;) {
    const i = reports.findIndex((r) => pick(r) || 'error' in r);
    if (i >= 0) return reports.splice(0, i + 1)[i] as Record<string, unknown>;
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`the sink did not report ${what} in ${ms} ms: a reader left asleep?`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, left);
      reported = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }
}

for (const mode of ['interrupt', 'adaptive'] as const) {
  test(`${mode} writer: 8 MiB of 64 B writes in ticks of 2,000 reach a sleeping reader in another process, in order`, async () => {
    const payload = seededBytes(18, 8 * 1024 * 1024);
    // A 256 KiB fifo: a tick's 128,000 bytes cross a quarter of it, so tells come mid-tick too.
    const s = connect({ uri: sinkUri, txFifoSize: 256 * 1024, mode });
    s.on('error', () => {});
    await once(s, 'connect');
    try {
      await sendInTicks(s, payload);
    } finally {
      s.destroy();
    }
  });
}

/** Writes `payload` in ticks of 2,000 64 B writes, then ends; checks what the sink read after each tick and at the end. */
async function sendInTicks(s: Socket, payload: Buffer): Promise<void> {
  let off = 0;
  // Bounded: the payload runs out.
  while (off < payload.length) {
    let full = false;
    for (let i = 0; i < 2_000 && off < payload.length && !full; i++) {
      full = !s.write(payload.subarray(off, off + 64));
      off += 64;
    }
    if (full) await once(s, 'drain');
    else {
      // Nothing more is written until the reader has all of it: only the tick's tells wake it.
      const sent = off;
      const r = await nextReport(10_000, `${sent} bytes read`, (m) => Number(m['got']) >= sent);
      assert.equal(r['error'], undefined);
    }
  }
  s.end();
  const r = await nextReport(10_000, 'its hash', (m) => 'sha256' in m);
  assert.equal(r['error'], undefined);
  assert.equal(r['bytes'], payload.length);
  assert.equal(r['sha256'], createHash('sha256').update(payload).digest('hex'));
}

test('staged writes that reserve() published in a batch, with nothing committed, reach a sleeping reader at the end of the tick', async () => {
  const s = connect({ uri: sinkUri });
  s.on('error', () => {});
  await once(s, 'connect');
  try {
    // A first write read in full: the reader (interrupt mode) is then asleep, armed for data.
    s.write(Buffer.alloc(64, 1));
    assert.equal(
      (await nextReport(10_000, '64 bytes read', (m) => Number(m['got']) >= 64))['error'],
      undefined,
    );
    await new Promise((resolve) => setTimeout(resolve, 50));
    // One tick: an empty write opens the batch without telling the reader, the small writes are
    // staged, and reserve() publishes the stage deferred (AppSession.writeDeferred). Nothing is
    // committed: only the end of the batch (Socket#flushTick's tellDeferred) can wake the reader.
    s.write(Buffer.alloc(0));
    for (let i = 0; i < 10; i++) s.write(Buffer.alloc(64, 2));
    assert.ok(s.reserve(64) !== null);
    const r = await nextReport(10_000, '704 bytes read', (m) => Number(m['got']) >= 704);
    assert.equal(r['error'], undefined);
  } finally {
    s.destroy();
  }
});
