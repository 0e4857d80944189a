/**
 * ferryd's container restarted under running apps: a cut-through session in flight keeps
 * working (its data path is shared memory between the apps, not ferryd), and the apps reattach
 * to the new ferryd by themselves (listeners come back; new connects work).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StartedTestContainer } from 'testcontainers';
import { eventually, execOk, jsonLines, type ShowSession, show } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { SidecarGroup } from './support/sidecar.js';

const VERIFY = ['node', 'examples/dist/echo/verify.js'];
const MiB = 1024 * 1024;

describe('ferryd restarted under running apps', { skip: SKIP }, () => {
  let group: SidecarGroup | undefined;
  let client: StartedTestContainer;

  before(async () => {
    group = await SidecarGroup.start();
    await group.echoServer(1001, 'server', 7000);
    client = await group.idle(1002, 'client');
  });

  after(() => group?.stop());

  test('a cut-through session in flight keeps working and the apps reattach', {
    timeout: 120_000,
  }, async () => {
    const ferryd = (group as SidecarGroup).ferryd;
    // At least 12.8 s of paced transfer (640 x 64 KiB, 20 ms apart): ferryd restarts in the middle.
    const run = client.exec([
      ...VERIFY,
      'tcp://127.0.0.1:7000',
      '--bytes',
      String(40 * MiB),
      '--pause-ms',
      '20',
    ]);
    await eventually('the session', async () => {
      const s = await show<ShowSession[]>(ferryd, 'sessions');
      return s.length === 2 ? s : undefined;
    });
    await ferryd.restart({ timeout: 5_000 });
    await eventually(
      'the new ferryd to answer',
      async () => (await execOk(ferryd, ['ferry', 'health'])) || undefined,
    );

    const r = await run;
    const [connected, result] = jsonLines(r.stdout);
    assert.equal(r.exitCode, 0, r.stdout + r.stderr);
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    assert.equal(result?.['bytes'], 40 * MiB);

    // The server reattached and listens again; a new connect reaches it cut-through.
    await eventually('the echo server to listen again', async () => {
      const ls = await show<{ uri: string }[]>(ferryd, 'listeners');
      return ls.some((l) => l.uri.endsWith(':7000')) ? true : undefined;
    });
    const again = jsonLines(
      await execOk(client, [...VERIFY, 'tcp://127.0.0.1:7000', '--bytes', String(4 * MiB)]),
    ).at(-1);
    assert.equal(again?.['ok'], true, JSON.stringify(again));
    assert.equal(again?.['transport'], 'ct');
  });
});
