/**
 * ferryd's fifo meters against real apps: a reader that stops reading shows as stuck (in `ferry
 * show sessions` and the metrics), and a peer that scribbles over a fifo header is flagged without
 * harm to ferryd.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FIFO_HEADER_BYTES, type FifoPairRef } from '@ferry/sdk/internal';
import { parseExposition, sampleValue } from '../testing/exposition.js';
import { type AppHandle, type DaemonHandle, eventually, startApp, startDaemon } from '../testing/harness.js';
import { RawApp } from '../testing/hostile.js';

let d: DaemonHandle;
let user: AppHandle;
let holder: AppHandle;
let url = '';

async function metric(name: string): Promise<number> {
  const res = await fetch(url);
  return sampleValue(parseExposition(await res.text()), name);
}

type Row = Record<string, unknown>;
const sessions = async () => (await d.show('sessions')) as Row[];

before(async () => {
  d = await startDaemon(['--metrics', '127.0.0.1:0']);
  url = /metrics on (http:\/\/\S+)/.exec(d.output())?.[1] ?? '';
  user = await startApp(d.socket);
  holder = await startApp(d.socket);
});

after(async () => {
  await user?.kill();
  await holder?.kill();
  await d?.stop();
});

test('a reader that never reads: its fifo fills, then shows as stuck, and not once it is gone', async () => {
  const l = await holder.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'hold' });
  await user.ok({ op: 'connect', tag: 'stuck', uri: l['uri'], fifoSize: 4096 });
  // More than the fifo holds: the rest waits in the writer, the fifo stays full.
  await user.ok({ op: 'end', tag: 'stuck', data: 'x'.repeat(20_000) });
  let client: Row | undefined;
  await eventually(
    async () => {
      client = (await sessions()).find((s) => s['transport'] === 'ct' && s['listener'] === null);
      return client?.['stuck'] === true;
    },
    15_000,
    'the session to show as stuck',
  );
  assert.equal(client?.['txFill'], '4096/4096');
  assert.equal(client?.['txBytes'], 4096);
  assert.equal(client?.['fifoError'], null);
  const server = (await sessions()).find((s) => s['id'] === client?.['peer']);
  assert.equal(server?.['stuck'], true, 'the reader side sees its rx fifo stuck too');
  assert.equal(server?.['rxBytes'], 0);
  assert.equal(await metric('ferry_fifos_stuck'), 1);
  assert.equal(await metric('ferry_fifo_queued_bytes'), 4096);
  // A reset: the holder never reads, so after an orderly close its end would stay (as a paused
  // net.Socket's does) and its fifo with it.
  await user.ok({ op: 'reset', tag: 'stuck' });
  await eventually(async () => (await metric('ferry_fifos_stuck')) === 0, 10_000, 'stuck to clear');
});

test('a peer that scribbles over a fifo header: flagged and no longer counted, ferryd unharmed', async () => {
  const raw = await RawApp.attach(d.socket, 'scribbler');
  try {
    const l = await raw.request({ t: 'listen', id: 0, uri: 'tcp://127.0.0.1:0' });
    assert.ok(l.t === 'listen-reply' && l.st === 0);
    await user.ok({ op: 'connect', tag: 'victim', uri: l.uri, fifoSize: 4096 });
    const acc = await raw.next((m) => m.t === 'accepted');
    assert.ok(acc.t === 'accepted');
    const fifos = acc.fifos as FifoPairRef;
    const seg = raw.segments.get(fifos.segment);
    assert.ok(seg);
    // The fifo the raw side writes: a tail far past the head, and nobody told (no event posted).
    const ctl = new Uint32Array(seg.segment.buffer, fifos.txOffset, FIFO_HEADER_BYTES / 4);
    ctl[32] = (ctl[16] as number) + 3 * fifos.txSize;
    let row: Row | undefined;
    await eventually(
      async () => {
        row = (await sessions()).find((s) => s['id'] === acc.session);
        return typeof row?.['fifoError'] === 'string';
      },
      10_000,
      'the fifo to be flagged',
    );
    assert.match(String(row?.['fifoError']), /fill \d+ above size 4096/);
    assert.equal(await metric('ferry_fifos_corrupt_total'), 1);
    // ferryd goes on serving.
    assert.equal((await d.stats())['apps'], 3);
  } finally {
    raw.close();
  }
  await user.ok({ op: 'destroy', tag: 'victim' });
});
