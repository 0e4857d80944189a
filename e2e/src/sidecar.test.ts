/**
 * The sidecar pattern with GenericContainer: one ferryd container; apps in containers of their
 * own (own network and IPC namespaces, other uids) that share only the directory holding
 * ferryd's socket. Asserted from inside (the apps check their data) and from outside
 * (`ferry show ... --json` in ferryd's container, the engine's view of the containers).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StartedTestContainer } from 'testcontainers';
import {
  eventually,
  execDetached,
  execOk,
  jsonLines,
  killContainer,
  pollWhile,
  type ShowApp,
  type ShowSession,
  type ShowStats,
  show,
} from './support/containers.js';
import { SKIP } from './support/engine.js';
import { reportThroughput } from './support/report.js';
import { SidecarGroup } from './support/sidecar.js';

const VERIFY = ['node', 'examples/dist/echo/verify.js'];
const MiB = 1024 * 1024;

describe('sidecar: apps in separate containers talk cut-through through one ferryd', { skip: SKIP }, () => {
  let group: SidecarGroup | undefined;
  let ferryd: StartedTestContainer;
  let server: StartedTestContainer;
  let client: StartedTestContainer;

  before(async () => {
    group = await SidecarGroup.start();
    ferryd = group.ferryd;
    server = await group.echoServer(1001, 'server', 7000);
    client = await group.idle(1002, 'client');
  });

  after(() => group?.stop());

  test('the apps run in namespaces of their own, as other uids than ferryd', {
    timeout: 120_000,
  }, async () => {
    const ns = async (c: StartedTestContainer) =>
      (await execOk(c, ['sh', '-c', 'readlink /proc/self/ns/ipc /proc/self/ns/net; id -u'])).trim();
    const [f, s, c] = [await ns(ferryd), await ns(server), await ns(client)];
    const lines = [f, s, c].map((x) => x.split('\n'));
    for (const i of [0, 1]) {
      assert.equal(new Set(lines.map((l) => l[i])).size, 3, `distinct ${i === 0 ? 'ipc' : 'net'} namespaces`);
    }
    assert.deepEqual(
      lines.map((l) => l[2]),
      ['1000', '1001', '1002'],
    );
  });

  test('an echo across containers is intact, cut-through, and ferryd moves none of its bytes', {
    timeout: 120_000,
  }, async () => {
    const f = ferryd;
    const before = await show<ShowStats>(f, 'stats');
    // ~2.5 s: long enough to watch the session from outside while it runs.
    const run = execOk(client, [
      ...VERIFY,
      'tcp://127.0.0.1:7000',
      '--bytes',
      String(32 * MiB),
      '--chunk',
      String(256 * 1024),
      '--pause-ms',
      '20',
    ]);
    const snapshots: ShowSession[][] = [];
    let apps: ShowApp[] = [];
    const out = await pollWhile(run, async () => {
      const s = await show<ShowSession[]>(ferryd, 'sessions');
      if (s.length > 0) {
        snapshots.push(s);
        if (apps.length === 0) apps = await show<ShowApp[]>(ferryd, 'apps');
      }
    });
    const [connected, result] = jsonLines(out);
    assert.deepEqual(connected, { connected: true, transport: 'ct', uri: 'tcp://127.0.0.1:7000' });
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    assert.equal(result?.['bytes'], 32 * MiB);

    assert.ok(
      snapshots.some((snap) => snap.length === 2 && snap.every((x) => x.peer !== null)),
      'both ends seen, linked as peers',
    );
    for (const s of snapshots.flat()) {
      assert.equal(s.transport, 'ct');
      assert.equal(s.daemonBytes, 0, 'ferryd moved none of the bytes');
    }
    // Both ends' apps, seen by ferryd with the uids of their containers.
    assert.deepEqual(apps.map((a) => [a.name, a.uid]).sort(), [
      ['server.js', 1001],
      ['verify.js', 1002],
    ]);
    const afterwards = await eventually('the session to be gone', async () => {
      const st = await show<ShowStats>(f, 'stats');
      return st.sessions === 0 && st.apps === before.apps ? st : undefined;
    });
    assert.equal(afterwards.daemonSegments, 0, 'ferryd is party to no segment');
  });

  test('an app container killed mid-transfer: the peer sees ECONNRESET and ferryd reclaims', {
    timeout: 120_000,
  }, async () => {
    const f = ferryd;
    const victim = await (group as SidecarGroup).echoServer(1003, 'victim', 7001);
    const baseline = await show<ShowStats>(f, 'stats');
    // Paced so that it is still running when the server's container dies (~80 s if left alone).
    const run = client.exec([
      ...VERIFY,
      'tcp://127.0.0.1:7001',
      '--bytes',
      String(1024 * MiB),
      '--pause-ms',
      '5',
      '--progress-file',
      '/tmp/kill-progress',
    ]);
    // Mid-transfer: echoed data has come back through the victim.
    await eventually('echoed bytes', async () => {
      const r = await client.exec(['cat', '/tmp/kill-progress']);
      return r.exitCode === 0 && Number(r.stdout) > 0 ? true : undefined;
    });
    assert.ok((await show<ShowSession[]>(f, 'sessions')).some((x) => x.local.endsWith(':7001')));
    const during = await show<ShowStats>(f, 'stats');
    assert.equal(during.segments, baseline.segments + 1, 'the client and the victim share a new segment');
    await killContainer(victim);
    const r = await bounded(run, 30_000, 'the client to notice its peer is gone');
    assert.equal(r.exitCode, 1, r.stdout + r.stderr);
    const outcome = jsonLines(r.stdout).at(-1);
    assert.equal(outcome?.['ok'], false);
    assert.equal(outcome?.['code'], 'ECONNRESET', JSON.stringify(outcome));
    // The victim's app and the client's are gone; their sessions and shared segment with them.
    const st = await eventually('ferryd to reclaim', async () => {
      const s = await show<ShowStats>(f, 'stats');
      return s.apps === baseline.apps - 1 && s.sessions === 0 ? s : undefined;
    });
    assert.equal(st.listeners, baseline.listeners - 1);
    assert.equal(st.segments, baseline.segments, 'their segment is gone');
    assert.equal(st.segmentBytes, baseline.segmentBytes);
    const apps = await show<ShowApp[]>(f, 'apps');
    assert.deepEqual(
      apps.map((a) => a.name),
      ['server.js'],
    );
  });

  test('throughput: cut-through across containers vs TCP between the same containers (reported)', {
    timeout: 120_000,
  }, async (t) => {
    // Both servers in the server's container; every client run in the client's container.
    await execDetached(server, 'ferry perf server --uri tcp://0.0.0.0:5001', '/tmp/perf-ct.log');
    await execDetached(server, 'ferry perf server --stack net --uri tcp://0.0.0.0:5002', '/tmp/perf-net.log');
    for (const log of ['/tmp/perf-ct.log', '/tmp/perf-net.log']) {
      await eventually(`perf server (${log})`, async () =>
        (await execOk(server, ['cat', log])).includes('listening') ? true : undefined,
      );
    }
    const count = 256 * MiB;
    const variants = {
      'ferry ct (across containers)': ['--uri', 'tcp://127.0.0.1:5001'],
      'TCP (node:net, container to container)': ['--stack', 'net', '--uri', 'tcp://server:5002'],
    };
    const results: Record<string, number[]> = {};
    for (let round = 0; round < 3; round++) {
      for (const [name, args] of Object.entries(variants)) {
        const out = await execOk(client, [
          'ferry',
          'perf',
          'client',
          ...args,
          '--workload',
          'throughput',
          '--count',
          String(count),
          '--json',
          '--timeout-ms',
          '60000',
        ]);
        const r = JSON.parse(out.trim()) as { gbps: number; bytes?: number };
        assert.ok(r.gbps > 0, out);
        const list = results[name] ?? [];
        list.push(r.gbps);
        results[name] = list;
      }
    }
    reportThroughput(t, 'sidecar: 256 MiB stream, 256 KiB writes, 3 rounds interleaved', results);
  });
});

function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
