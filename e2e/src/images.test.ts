/**
 * The images on their own: they run as non-root, ferryd's healthcheck turns healthy, and both
 * ferryd and an app stop at once on SIGTERM even as PID 1 without an init (docker stop would
 * otherwise wait its whole timeout and SIGKILL them).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer, Wait } from 'testcontainers';
import { eventually, execOk } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { ensureImages, IMAGES } from './support/images.js';

describe('images', { skip: SKIP }, () => {
  const started: StartedTestContainer[] = [];
  after(async () => {
    for (const c of started) await c.stop({ timeout: 0 }).catch(() => {});
  });

  /** Starts `image` without --init, its own process as PID 1. */
  async function start(image: string, ready: string, command?: string[]): Promise<StartedTestContainer> {
    let c = new GenericContainer(image)
      .withNetworkMode('none')
      // Ready = its SIGTERM handler is installed: PID 1 ignores a signal it does not handle.
      .withWaitStrategy(Wait.forLogMessage(ready))
      .withStartupTimeout(30_000);
    if (command) c = c.withCommand(command);
    const s = await c.start();
    started.push(s);
    return s;
  }

  /** docker stop with a 20 s grace period: how long it took and how the process exited. */
  async function stopTimed(c: StartedTestContainer): Promise<{ ms: number; exitCode: number }> {
    const client = await getContainerRuntimeClient();
    const t0 = Date.now();
    await c.stop({ timeout: 20_000, remove: false });
    const ms = Date.now() - t0;
    const info = await client.container.inspect(client.container.getById(c.getId()));
    await client.container.remove(client.container.getById(c.getId()), { removeVolumes: true });
    started.splice(started.indexOf(c), 1);
    return { ms, exitCode: info.State.ExitCode };
  }

  test('ferryd runs as uid 1000, turns healthy, and stops at once on SIGTERM as PID 1', {
    timeout: 120_000,
  }, async () => {
    await ensureImages();
    const ferryd = await start(IMAGES.ferryd, 'ferryd: listening on');
    assert.equal((await execOk(ferryd, ['id', '-u'])).trim(), '1000');
    assert.equal((await execOk(ferryd, ['cat', '/proc/1/comm'])).trim(), 'node', 'ferryd itself is PID 1');
    const client = await getContainerRuntimeClient();
    // The image's HEALTHCHECK (`ferry health`, every 5 s).
    await eventually(
      'the healthcheck to pass',
      async () => {
        const info = await client.container.inspect(client.container.getById(ferryd.getId()));
        return info.State.Health?.Status === 'healthy' ? true : undefined;
      },
      30_000,
    );
    const stop = await stopTimed(ferryd);
    assert.equal(stop.exitCode, 0, 'ferryd exited on its own (not SIGKILLed)');
    assert.ok(stop.ms < 10_000, `docker stop took ${stop.ms} ms`);
  });

  test('an app runs as uid 1000 and stops at once on SIGTERM as PID 1', { timeout: 120_000 }, async () => {
    await ensureImages();
    // The echo server needs a ferryd: run both in one container's namespaces, ferryd in the back.
    const app = await start(IMAGES.app, 'echo server listening', [
      'sh',
      '-c',
      'ferry daemon & until ferry health >/dev/null 2>&1; do sleep 0.1; done; ' +
        'exec node examples/dist/echo/server.js tcp://127.0.0.1:7000',
    ]);
    assert.equal((await execOk(app, ['id', '-u'])).trim(), '1000');
    assert.match((await execOk(app, ['cat', '/proc/1/cmdline'])).replaceAll('\0', ' '), /echo\/server\.js/);
    const stop = await stopTimed(app);
    assert.equal(stop.exitCode, 0, 'the app exited on its own (not SIGKILLed)');
    assert.ok(stop.ms < 10_000, `docker stop took ${stop.ms} ms`);
  });
});
