/**
 * @ferry/testcontainers as a user's suite would use it: FerrydContainer with a namespace and its
 * token, apps attached through the socket volume or through ferryd's network namespace, the
 * volume's lifecycle, and a configuration ferryd refuses.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { FerrydContainer, type ShowApp, type ShowSession } from '@ferry/testcontainers';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from 'testcontainers';
import { execOk, jsonLines, pollWhile } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { ensureImages, IMAGES } from './support/images.js';

const ECHO = ['node', 'examples/dist/echo/server.js', 'tcp://0.0.0.0:7000'];
const VERIFY = ['node', 'examples/dist/echo/verify.js', 'tcp://127.0.0.1:7000', '--bytes', String(4 << 20)];

async function volumeExists(name: string): Promise<boolean> {
  const client = await getContainerRuntimeClient();
  const vols = await client.container.dockerode.listVolumes({ filters: { name: [name] } });
  return (vols.Volumes ?? []).some((v) => v.Name === name);
}

/** Stops what a test started, apps before ferryd, whatever happened. */
function cleanup(): {
  add<T extends { stop(o?: { timeout: number }): Promise<unknown> }>(c: T): T;
  all(): Promise<void>;
} {
  const list: { stop(o?: { timeout: number }): Promise<unknown> }[] = [];
  return {
    add(c) {
      list.push(c);
      return c;
    },
    async all() {
      for (const c of list.reverse()) await c.stop({ timeout: 0 }).catch(() => {});
      list.length = 0;
    },
  };
}

describe('@ferry/testcontainers', { skip: SKIP }, () => {
  const started = cleanup();
  after(() => started.all());

  test('volume variant: a namespace with a token, two apps attached, an echo cut-through', {
    timeout: 120_000,
  }, async () => {
    await ensureImages();
    const ferryd = started.add(await new FerrydContainer(IMAGES.ferryd).withNamespace('web').start());
    const volume = ferryd.getSocketVolume();
    assert.match(String(volume), /^ferry-run-[0-9a-f]{12}$/);
    assert.equal(ferryd.getSocketPath(), '/run/ferry/ferryd.sock');
    const token = ferryd.getToken('web');
    assert.match(String(token), /^[0-9a-f]{48}$/);
    assert.deepEqual(ferryd.getConnectionEnv('web'), {
      FERRY_SOCKET: '/run/ferry/ferryd.sock',
      FERRY_NAMESPACE: 'web',
      FERRY_TOKEN: token,
    });
    // ferryd enforces what withNamespace() configured (the token itself is never shown).
    const namespaces = await ferryd.show<{ namespace: string; token: string | null }[]>('namespaces');
    const web = namespaces.find((n) => n.namespace === 'web');
    assert.ok(web, JSON.stringify(namespaces));
    assert.match(String(web.token), /^sha256:[0-9a-f]{8}$/);
    assert.ok(!JSON.stringify(namespaces).includes(String(token)));

    started.add(
      await ferryd
        .attach(
          new GenericContainer(IMAGES.app)
            .withUser('1001:1001')
            .withCommand(ECHO)
            .withWaitStrategy(Wait.forLogMessage('echo server listening')),
          { namespace: 'web' },
        )
        .start(),
    );
    const client = started.add(
      await ferryd
        .attach(new GenericContainer(IMAGES.app).withUser('1002:1002').withCommand(['sleep', 'infinity']), {
          namespace: 'web',
        })
        .start(),
    );
    // attach kept the apps' own uid and primary group and added ferryd's group for the socket.
    assert.deepEqual((await execOk(client, ['id', '-G'])).trim().split(' '), ['1002', '1000']);
    const [connected, result] = jsonLines(await execOk(client, VERIFY));
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    const apps = await ferryd.show<ShowApp[]>('apps');
    assert.deepEqual(
      apps.map((a) => [a.name, a.uid, a.gid]),
      [['server.js', 1001, 1001]],
    );

    // Without the token the same app is refused.
    const r = await client.exec(VERIFY, { env: { FERRY_TOKEN: 'not-the-token' } });
    assert.equal(r.exitCode, 1, r.output);
    assert.equal(jsonLines(r.stdout).at(-1)?.['code'], 'EACCES', r.output);

    await started.all();
    assert.equal(await volumeExists(String(volume)), false, 'the socket volume is removed with ferryd');
  });

  test('network variant: apps in ferryd’s network namespace reach @ferry/session, no volume', {
    timeout: 120_000,
  }, async () => {
    await ensureImages();
    const ferryd = started.add(await new FerrydContainer(IMAGES.ferryd).withAbstractSocket().start());
    assert.equal(ferryd.getSocketVolume(), null);
    assert.equal(ferryd.getSocketPath(), '@ferry/session');
    assert.throws(
      () => ferryd.attach(new GenericContainer(IMAGES.app), { via: 'volume' }),
      /abstract socket/,
    );
    const server = started.add(
      await ferryd
        .attach(
          new GenericContainer(IMAGES.app)
            .withUser('1001:1001')
            .withCommand(ECHO)
            .withWaitStrategy(Wait.forLogMessage('echo server listening')),
        )
        .start(),
    );
    const client = started.add(
      await ferryd.attach(new GenericContainer(IMAGES.app).withCommand(['sleep', 'infinity'])).start(),
    );
    const netns = async (c: StartedTestContainer) =>
      (await execOk(c, ['readlink', '/proc/self/ns/net'])).trim();
    assert.equal(await netns(server), await netns(ferryd));
    assert.equal(await netns(client), await netns(ferryd));
    assert.equal((await execOk(client, ['ls', '-A', '/run/ferry'])).trim(), '', 'no socket file, no volume');
    // Paced (~1.3 s) so that the session can be watched from outside while it runs.
    const run = execOk(client, [...VERIFY.slice(0, 3), '--bytes', String(16 << 20), '--pause-ms', '20']);
    let seen: ShowSession[] = [];
    const out = await pollWhile(run, async () => {
      const s = await ferryd.show<ShowSession[]>('sessions');
      if (s.length > seen.length) seen = s;
    });
    const [connected, result] = jsonLines(out);
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    assert.equal(seen.length, 2, 'both ends of the session seen while it ran');
    for (const s of seen) {
      assert.equal(s.transport, 'ct');
      assert.equal(s.daemonBytes, 0);
    }
    await started.all();
  });

  test('stopping ferryd while an app still uses its volume says which app, and leaves the volume', {
    timeout: 120_000,
  }, async () => {
    await ensureImages();
    const ferryd = await new FerrydContainer(IMAGES.ferryd).start();
    const volume = String(ferryd.getSocketVolume());
    const app = await ferryd
      .attach(new GenericContainer(IMAGES.app).withCommand(['sleep', 'infinity']))
      .start();
    try {
      await assert.rejects(ferryd.stop({ timeout: 0 }), (err: Error) => {
        assert.match(
          err.message,
          new RegExp(`${volume} is still used by ${app.getName().replace(/^\//, '')}`),
        );
        return true;
      });
      assert.equal(await volumeExists(volume), true);
    } finally {
      await app.stop({ timeout: 0 });
      const client = await getContainerRuntimeClient();
      await client.container.dockerode
        .getVolume(volume)
        .remove()
        .catch(() => {});
    }
  });

  test('a configuration ferryd refuses fails start() with ferryd’s message, and leaves no volume', {
    timeout: 120_000,
  }, async () => {
    await ensureImages();
    const client = await getContainerRuntimeClient();
    const before = new Set(
      ((await client.container.dockerode.listVolumes()).Volumes ?? []).map((v) => v.Name),
    );
    await assert.rejects(
      new FerrydContainer(IMAGES.ferryd).withConfig({ maxApps: 0 }).withStartupTimeout(15_000).start(),
      /ferryd did not start[\s\S]*\$\.maxApps: expected an integer/,
    );
    const leftovers = ((await client.container.dockerode.listVolumes()).Volumes ?? [])
      .map((v) => v.Name)
      .filter((n) => n.startsWith('ferry-run-') && !before.has(n));
    assert.deepEqual(leftovers, []);
  });
});
