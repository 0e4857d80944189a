/**
 * deploy/swarm/ferry.stack.yaml deployed on a single-node swarm that the test creates and leaves:
 * `docker swarm init` with the address pool 198.19.128.0/18 (inside 198.18.0.0/15, the only range
 * containers get here), the stack deployed as users deploy it (`docker stack deploy`), ferryd as a
 * global service, and cut-through between two app services seen with `ferry show`. Teardown removes
 * the stack, leaves the swarm and removes what swarm init added (docker_gwbridge) and the volume.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { eventually, jsonLines, pollWhile, type ShowApp, type ShowSession } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { COMPOSE_ENV, ensureImages, REPO_ROOT } from './support/images.js';

const run = promisify(execFile);
const STACK_FILE = join(REPO_ROOT, 'deploy/swarm/ferry.stack.yaml');
const STACK = `ferrye2e${process.pid}`;
const POOL = '198.19.128.0/18';
const MiB = 1024 * 1024;

async function docker(args: string[], env: Record<string, string> = {}): Promise<string> {
  const { stdout } = await run('docker', args, { env: { ...process.env, ...env }, maxBuffer: 16 * MiB });
  return stdout.trim();
}

/** Whether `cidr` lies inside `within` (IPv4). */
function inside(cidr: string, within: string): boolean {
  const toInt = (ip: string) => ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
  const [a, aBits] = cidr.split('/');
  const [b, bBits] = within.split('/');
  const bits = Number(bBits);
  if (Number(aBits) < bits) return false;
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return (toInt(String(a)) & mask) >>> 0 === (toInt(String(b)) & mask) >>> 0;
}

/**
 * A swarm this test made and could not leave (its process was killed) is left now: the node
 * carries the label LEFTOVER_LABEL, which only this test sets. Any other swarm is not ours.
 */
const LEFTOVER_LABEL = 'ferry.e2e.swarm';
async function leaveLeftoverSwarm(): Promise<void> {
  const state = await docker(['info', '-f', '{{.Swarm.LocalNodeState}}']);
  if (state !== 'active') return;
  const labels = await docker(['node', 'inspect', 'self', '-f', '{{json .Spec.Labels}}']).catch(() => '{}');
  if (!(LEFTOVER_LABEL in (JSON.parse(labels || '{}') ?? {}))) return;
  await docker(['swarm', 'leave', '--force']);
  await docker(['network', 'rm', 'docker_gwbridge']).catch(() => {});
  const volumes = (await docker(['volume', 'ls', '-q']))
    .split('\n')
    .filter((v) => /^ferrye2e\d+_ferry-run$/.test(v));
  for (const v of volumes) await docker(['volume', 'rm', v]).catch(() => {});
}

const swarmState = SKIP
  ? null
  : await leaveLeftoverSwarm()
      .then(() => docker(['info', '-f', '{{.Swarm.LocalNodeState}}']))
      .catch((e) => String(e));
const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';
const SKIP_SWARM: string | false =
  SKIP ||
  (swarmState === 'inactive' || inCi
    ? false
    : `the engine is already in a swarm (state: ${swarmState}), which is not this test's to leave`);

describe('deploy/swarm: the stack on a single-node swarm', { skip: SKIP_SWARM }, () => {
  let initialized = false;
  let deployed = false;
  let gwbridgeBefore = true;

  const containerOf = async (service: string) => {
    const id = await docker([
      'ps',
      '-q',
      '--filter',
      `label=com.docker.swarm.service.name=${STACK}_${service}`,
    ]);
    assert.ok(id && !id.includes('\n'), `one running task of ${service}: '${id}'`);
    return id;
  };
  const show = async <T>(topic: string): Promise<T> =>
    JSON.parse(await docker(['exec', await containerOf('ferryd'), 'ferry', 'show', topic, '--json'])) as T;

  before(async () => {
    assert.equal(swarmState, 'inactive', 'CI: the engine must not be in a swarm before this test');
    await ensureImages();
    gwbridgeBefore = (await docker(['network', 'ls', '-q', '--filter', 'name=^docker_gwbridge$'])) !== '';
    const gateway = await docker([
      'network',
      'inspect',
      'bridge',
      '-f',
      '{{(index .IPAM.Config 0).Gateway}}',
    ]);
    assert.ok(inside(`${gateway}/32`, '198.18.0.0/15'), `docker0 ${gateway} in 198.18.0.0/15`);
    await docker([
      'swarm',
      'init',
      '--advertise-addr',
      gateway,
      '--listen-addr',
      `${gateway}:2377`,
      '--default-addr-pool',
      POOL,
    ]);
    initialized = true;
    const nodeId = await docker(['info', '-f', '{{.Swarm.NodeID}}']);
    await docker(['node', 'update', '--label-add', `${LEFTOVER_LABEL}=${process.pid}`, nodeId]);
    await docker(['stack', 'deploy', '-c', STACK_FILE, '--resolve-image', 'never', STACK], COMPOSE_ENV);
    deployed = true;
  });

  after(async () => {
    const problems: string[] = [];
    const attempt = async (what: string, f: () => Promise<unknown>, tries = 1) => {
      for (let i = 1; ; i++) {
        try {
          await f();
          return;
        } catch (err) {
          if (i >= tries) {
            problems.push(`${what}: ${(err as Error).message.split('\n')[0]}`);
            return;
          }
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    };
    if (deployed) {
      await attempt('docker stack rm', () => docker(['stack', 'rm', STACK]));
      await attempt(
        "the stack's containers to go",
        async () => {
          if (await docker(['ps', '-aq', '--filter', `label=com.docker.stack.namespace=${STACK}`]))
            throw new Error('still there');
        },
        60,
      );
    }
    if (initialized) {
      await attempt('docker swarm leave --force', () => docker(['swarm', 'leave', '--force']));
      if (!gwbridgeBefore)
        await attempt(
          'docker network rm docker_gwbridge',
          () => docker(['network', 'rm', 'docker_gwbridge']),
          20,
        );
    }
    if (deployed) await attempt('docker volume rm', () => docker(['volume', 'rm', `${STACK}_ferry-run`]), 20);
    const state = await docker(['info', '-f', '{{.Swarm.LocalNodeState}}']);
    if (initialized && state !== 'inactive') problems.push(`swarm state after teardown: ${state}`);
    if (problems.length > 0) throw new Error(`swarm teardown: ${problems.join('; ')}`);
  });

  test('ferryd runs as a global service; the services converge and turn healthy; networks stay in 198.18.0.0/15', {
    timeout: 120_000,
  }, async () => {
    for (const svc of ['ferryd', 'echo-server']) {
      const mode = JSON.parse(
        await docker(['service', 'inspect', `${STACK}_${svc}`, '-f', '{{json .Spec.Mode}}']),
      );
      assert.deepEqual(mode, { Global: {} }, svc);
    }
    await eventually(
      'every service at its replicas, ferryd and the echo server healthy',
      async () => {
        const ls = await docker([
          'service',
          'ls',
          '--filter',
          `label=com.docker.stack.namespace=${STACK}`,
          '--format',
          '{{.Name}} {{.Replicas}}',
        ]);
        const lines = ls.split('\n').sort();
        if (lines.length !== 3 || !lines.every((l) => / 1\/1$/.test(l))) return undefined;
        for (const svc of ['ferryd', 'echo-server']) {
          const healthy = await docker([
            'ps',
            '-q',
            '--filter',
            `label=com.docker.swarm.service.name=${STACK}_${svc}`,
            '--filter',
            'health=healthy',
          ]);
          if (!healthy) return undefined;
        }
        return lines;
      },
      90_000,
    );
    const subnet = (net: string) =>
      docker(['network', 'inspect', net, '-f', '{{range .IPAM.Config}}{{.Subnet}}{{end}}']);
    for (const net of ['ingress', `${STACK}_default`]) {
      const s = await subnet(net);
      assert.ok(inside(s, POOL), `${net}: ${s} in the swarm's pool ${POOL}`);
    }
    const gw = await subnet('docker_gwbridge');
    assert.ok(inside(gw, '198.18.0.0/15'), `docker_gwbridge: ${gw}`);
  });

  test('two app services talk cut-through through the node’s ferryd (ferry show)', {
    timeout: 120_000,
  }, async () => {
    const client = await containerOf('client');
    const apps = await show<ShowApp[]>('apps');
    assert.deepEqual(
      apps.map((a) => [a.name, a.uid, a.gid]),
      [['server.js', 1001, 1000]],
    );
    // Paced (~1.3 s) so that ferryd's sessions can be watched while it runs.
    const verify = docker([
      'exec',
      client,
      'node',
      'examples/dist/echo/verify.js',
      'tcp://127.0.0.1:7000',
      '--bytes',
      String(16 * MiB),
      '--chunk',
      String(256 * 1024),
      '--pause-ms',
      '20',
    ]);
    const seen: ShowSession[][] = [];
    const out = await pollWhile(verify, async () => {
      const s = await show<ShowSession[]>('sessions');
      if (s.length > 0) seen.push(s);
    });
    const [connected, result] = jsonLines(out);
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    assert.ok(
      seen.some((snap) => snap.length === 2 && snap.every((x) => x.peer !== null)),
      'both ends seen in ferry show, linked as peers',
    );
    for (const s of seen.flat()) {
      assert.equal(s.transport, 'ct');
      assert.equal(s.daemonBytes, 0, 'ferryd moved none of the bytes');
    }
  });
});
