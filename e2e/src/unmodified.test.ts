/**
 * dockerfiles/unmodified.compose.yaml: an unmodified node:http server and fetch client, each in
 * a container with no network, run with NODE_OPTIONS='--import @ferry/sdk/register'. Their
 * requests can only have gone through Ferry; ferryd's counters show they went app to app
 * (sessions accepted by the server's Ferry listener, no TCP connection or accept by ferryd).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { DockerComposeEnvironment, type StartedDockerComposeEnvironment } from 'testcontainers';
import { execOk, logUntil, type ShowApp, show } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { COMPOSE_ENV, DOCKERFILES, ensureImages } from './support/images.js';

type Counters = { accepted: number; tcpConnects: number; tcpAccepts: number };
type Result = { path: string; status: number; length: number };

/** The fetch client's one JSON line (an array of results) in `text`. */
function results(text: string): Result[] {
  const line = text.split('\n').find((l) => l.startsWith('[{'));
  assert.ok(line, text);
  return JSON.parse(line) as Result[];
}

describe('unmodified.compose.yaml', { skip: SKIP }, () => {
  let env: StartedDockerComposeEnvironment | undefined;
  before(async () => {
    await ensureImages();
    env = await new DockerComposeEnvironment(DOCKERFILES, 'unmodified.compose.yaml')
      .withEnvironment(COMPOSE_ENV)
      .withClientOptions({ commandOptions: ['--wait'] })
      .withStartupTimeout(60_000)
      .up();
  });
  after(async () => {
    await env?.down({ removeVolumes: true, timeout: 0 });
  });

  test('the hooked fetch client reaches the hooked node:http server by cut-through', {
    timeout: 120_000,
  }, async () => {
    const e = env as StartedDockerComposeEnvironment;
    const ferryd = e.getContainer('ferryd-1');
    const first = results(await logUntil(e.getContainer('client-1'), 'done'));
    assert.equal(first.length, 24);
    assert.deepEqual(
      first.slice(0, 4).map((r) => [r.path, r.status, r.length]),
      [
        ['/hello', 200, 17],
        ['/bytes/100000', 200, 100_000],
        ['/echo', 200, 1_000_000],
        ['/missing', 404, 10],
      ],
    );
    const before = (await show<{ session: Counters }>(ferryd, 'stats')).session;
    const again = results(
      await execOk(e.getContainer('client-1'), [
        'node',
        'examples/dist/unmodified/apps/fetch-client.js',
        'http://127.0.0.1:8080',
      ]),
    );
    assert.deepEqual(again, first);
    const after = (await show<{ session: Counters }>(ferryd, 'stats')).session;
    assert.ok(after.accepted - before.accepted >= 1, JSON.stringify({ before, after }));
    assert.equal(after.tcpConnects, 0);
    assert.equal(after.tcpAccepts, 0);
    const apps = await show<ShowApp[]>(ferryd, 'apps');
    assert.ok(
      apps.some((a) => a.name === 'http-server.js' && a.uid === 1001),
      JSON.stringify(apps),
    );
  });
});
