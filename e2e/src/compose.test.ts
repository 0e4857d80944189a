/**
 * The compose files users deploy (dockerfiles/*.compose.yaml), started with
 * DockerComposeEnvironment exactly as written; only the image names come from the environment.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DockerComposeEnvironment, type StartedDockerComposeEnvironment } from 'testcontainers';
import {
  eventually,
  execOk,
  jsonLines,
  logUntil,
  type ShowApp,
  type ShowSession,
  type ShowStats,
  show,
} from './support/containers.js';
import { SKIP } from './support/engine.js';
import { COMPOSE_ENV, DOCKERFILES, ensureImages } from './support/images.js';

const VERIFY = ['node', 'examples/dist/echo/verify.js'];
const MiB = 1024 * 1024;

/** Starts a compose file and waits for its healthchecks (`up --wait`); `down -v` afterwards. */
function composeSuite(file: string, body: (env: () => StartedDockerComposeEnvironment) => void): void {
  describe(file, { skip: SKIP }, () => {
    let env: StartedDockerComposeEnvironment | undefined;
    before(async () => {
      await ensureImages();
      env = await new DockerComposeEnvironment(DOCKERFILES, file)
        .withEnvironment(COMPOSE_ENV)
        .withClientOptions({ commandOptions: ['--wait'] })
        .withStartupTimeout(60_000)
        .up();
    });
    after(async () => {
      await env?.down({ removeVolumes: true, timeout: 0 });
    });
    body(() => env as StartedDockerComposeEnvironment);
  });
}

/** The check the client service ran on its own at start (from its log), parsed. */
async function clientLog(
  env: StartedDockerComposeEnvironment,
  name: string,
): Promise<Record<string, unknown>[]> {
  return jsonLines(await logUntil(env.getContainer(name), '"ok"'));
}

composeSuite('sidecar.compose.yaml', (env) => {
  test('the client checked its echo cut-through at start, and checks it again on demand', {
    timeout: 120_000,
  }, async () => {
    const [connected, first] = await clientLog(env(), 'client-1');
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(first?.['ok'], true, JSON.stringify(first));
    const again = jsonLines(
      await execOk(env().getContainer('client-1'), [
        ...VERIFY,
        'tcp://127.0.0.1:7000',
        '--bytes',
        String(8 * MiB),
      ]),
    ).at(-1);
    assert.equal(again?.['ok'], true, JSON.stringify(again));
    assert.equal(again?.['transport'], 'ct');
    const apps = await show<ShowApp[]>(env().getContainer('ferryd-1'), 'apps');
    assert.deepEqual(
      apps.map((a) => [a.name, a.uid, a.gid]),
      [['server.js', 1001, 1000]],
    );
  });
});

composeSuite('abstract.compose.yaml', (env) => {
  test('apps in ferryd’s network namespace attach through @ferry/session and talk cut-through', {
    timeout: 120_000,
  }, async () => {
    const [connected, first] = await clientLog(env(), 'client-1');
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(first?.['ok'], true, JSON.stringify(first));
    const client = env().getContainer('client-1');
    // ferryd made no socket file; its abstract name is visible in the namespace it shares.
    const ferryd = env().getContainer('ferryd-1');
    assert.equal((await execOk(ferryd, ['ls', '-A', '/run/ferry'])).trim(), '');
    assert.match(await execOk(client, ['cat', '/proc/net/unix']), /@ferry\/session\n/);
    assert.match(await execOk(client, ['ferry', 'health']), /^ok: ferryd at @ferry\/session/);
    const again = jsonLines(
      await execOk(client, [...VERIFY, 'tcp://127.0.0.1:7000', '--bytes', String(8 * MiB)]),
    ).at(-1);
    assert.equal(again?.['ok'], true, JSON.stringify(again));
    assert.equal(again?.['transport'], 'ct');
  });
});

composeSuite('two-hosts.compose.yaml', (env) => {
  test('the two ferryd are on networks of their own and share only the wan; the client reaches neither peer', {
    timeout: 60_000,
  }, async () => {
    const nets = (name: string) =>
      env()
        .getContainer(name)
        .getNetworkNames()
        .map((n) => n.replace(/^.*_/, ''))
        .sort();
    assert.deepEqual(nets('ferryd-a-1'), ['host-a', 'wan']);
    assert.deepEqual(nets('ferryd-b-1'), ['host-b', 'wan']);
    assert.deepEqual(nets('client-b-1'), ['host-b']);
    // Host B's app names its own ferryd but cannot even name ferryd-a: its bytes can only go
    // through ferryd-b.
    const client = env().getContainer('client-b-1');
    assert.match(await execOk(client, ['getent', 'hosts', 'ferryd-b']), /ferryd-b/);
    const r = await client.exec(['getent', 'hosts', 'ferryd-a']);
    assert.notEqual(r.exitCode, 0, r.stdout);
  });

  test('an echo across two ferryd goes over TCP, intact, and each ferryd moves its bytes', {
    timeout: 120_000,
  }, async () => {
    const [connected, first] = await clientLog(env(), 'client-b-1');
    assert.equal(connected?.['transport'], 'tcp');
    assert.equal(first?.['ok'], true, JSON.stringify(first));

    const a = env().getContainer('ferryd-a-1');
    const b = env().getContainer('ferryd-b-1');
    const client = env().getContainer('client-b-1');
    type Counters = { session: { tcpConnects: number; tcpAccepts: number } };
    const [a0, b0] = [await show<Counters>(a, 'stats'), await show<Counters>(b, 'stats')];
    // Paced (at least 5 s: 256 writes of 256 KiB, 20 ms apart); both ferryd are asked while it
    // runs, as soon as echoed bytes show that the session is up on both sides.
    const run = client.exec([
      ...VERIFY,
      'tcp://ferryd-a:7000',
      '--bytes',
      String(64 * MiB),
      '--chunk',
      String(256 * 1024),
      '--pause-ms',
      '20',
      '--progress-file',
      '/tmp/two-hosts-progress',
    ]);
    await eventually('echoed bytes', async () => {
      const r = await client.exec(['cat', '/tmp/two-hosts-progress']);
      return r.exitCode === 0 && Number(r.stdout) > 0 ? true : undefined;
    });
    const seen = {
      a: await show<ShowSession[]>(a, 'sessions'),
      b: await show<ShowSession[]>(b, 'sessions'),
    };
    const r = await run;
    assert.equal(r.exitCode, 0, r.output);
    const result = jsonLines(r.stdout).at(-1);
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    assert.equal(result?.['transport'], 'tcp');
    assert.equal(result?.['bytes'], 64 * MiB);
    for (const [side, sessions] of Object.entries(seen)) {
      assert.ok(sessions.length > 0, `ferryd-${side} showed the session`);
      assert.ok(
        sessions.every((s) => s.transport === 'tcp' && s.peer === null),
        `ferryd-${side}: ${JSON.stringify(sessions[0])}`,
      );
      const moved = Math.max(...sessions.map((s) => s.daemonBytes));
      assert.ok(moved > 0, `ferryd-${side} moved the session's bytes (${moved})`);
    }
    // ferryd-b connected out over TCP, ferryd-a accepted: once each for this client.
    const [a1, b1] = [await show<Counters>(a, 'stats'), await show<Counters>(b, 'stats')];
    assert.equal(b1.session.tcpConnects - b0.session.tcpConnects, 1);
    assert.equal(a1.session.tcpAccepts - a0.session.tcpAccepts, 1);
    // Once the client is done, both sides let go of everything but the listener.
    for (const f of [a, b]) {
      await eventually('sessions to end', async () => {
        const st = await show<ShowStats>(f, 'stats');
        return st.sessions === 0 ? st : undefined;
      });
    }
  });
});
