/**
 * The pods of deploy/kubernetes run under docker as kubelet would run them (support/k8s/pod-runner:
 * the manifests' images, commands, users, mounts, Secrets, ConfigMaps and probes): ferryd's
 * DaemonSet pod and the example app on the "node's" /run/ferry, and the sidecar pod on
 * @ferry/session. No cluster here; deploy/kubernetes/README.md says how to run them on kind or k3d.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { getContainerRuntimeClient, Network, type StartedNetwork } from 'testcontainers';
import { execOk, jsonLines, logUntil, type ShowApp } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { ensureImages, IMAGES } from './support/images.js';
import { find, loadManifests, type Manifest } from './support/k8s/manifests.js';
import { type PodContext, type RunningPod, runPod } from './support/k8s/pod-runner.js';

const VERIFY = ['node', 'examples/dist/echo/verify.js', 'tcp://127.0.0.1:7000', '--bytes', String(8 << 20)];
// biome-ignore lint/suspicious/noExplicitAny: pod specs are walked as plain data
const podOf = (w: Manifest): any => w['spec'].template.spec;
/**
 * The same pod with its app container idle (`sleep infinity`, no probe): a client with no
 * listener of its own. A listener on the wildcard address takes every connect to its port from
 * the apps of its ferryd (deploy/kubernetes/README.md), so a client beside an echo server would
 * reach that one instead of the remote one.
 */
// biome-ignore lint/suspicious/noExplicitAny: pod specs are walked as plain data
function asClient(pod: any): any {
  const copy = structuredClone(pod);
  const app = copy.containers[0];
  app.command = ['sleep', 'infinity'];
  delete app.readinessProbe;
  return copy;
}

describe('deploy/kubernetes: the pods under docker', { skip: SKIP }, () => {
  const manifests = loadManifests();
  let network: StartedNetwork | undefined;
  // hostPath -> volume, per "node" (node B stands for a second node in the cross-node test).
  const nodes = { a: new Map<string, string>(), b: new Map<string, string>() };
  const pods: RunningPod[] = [];
  const ctx = (namespace: string, node: keyof typeof nodes): PodContext => ({
    manifests,
    namespace,
    images: { 'ferry/ferryd:local': IMAGES.ferryd, 'ferry/app:local': IMAGES.app },
    hostPaths: nodes[node],
    network: network as StartedNetwork,
  });
  const run = async (
    namespace: string,
    name: string,
    w: Manifest,
    node: keyof typeof nodes = 'a',
    client = false,
  ) => {
    const p = await runPod(ctx(namespace, node), name, client ? asClient(podOf(w)) : podOf(w));
    pods.push(p);
    return p;
  };

  before(async () => {
    await ensureImages();
    network = await new Network().start();
  });
  after(async () => {
    for (const p of pods.reverse()) await p.stop();
    const d = (await getContainerRuntimeClient()).container.dockerode;
    for (const v of [...nodes.a.values(), ...nodes.b.values()])
      await d
        .getVolume(v)
        .remove()
        .catch(() => {});
    await network?.stop();
  });

  test('node variant: ferryd’s DaemonSet pod and the example app on /run/ferry, cut-through', {
    timeout: 180_000,
  }, async () => {
    const node = await run('ferry-system', 'ferryd-node', find(manifests, 'DaemonSet', 'ferryd'));
    const ferryd = node.get('ferryd');
    // Its three probes passed, on the socket of the manifest.
    const probes = node.probes.filter((p) => p.container === 'ferryd');
    assert.deepEqual(
      probes.map((p) => p.probe),
      ['startupProbe', 'readinessProbe', 'livenessProbe'],
    );
    for (const p of probes) assert.match(p.output, /^ok: ferryd at \/run\/ferry\/ferryd\.sock/);
    // The image's own FERRY_SOCKET is the manifest's (ferry show/health without the env agree).
    const image = await (await getContainerRuntimeClient()).container.dockerode
      .getImage(IMAGES.ferryd)
      .inspect();
    assert.ok(image.Config.Env.includes('FERRY_SOCKET=/run/ferry/ferryd.sock'), image.Config.Env.join(' '));
    assert.deepEqual(image.Config.Entrypoint, ['ferry']);
    // Non-root, read-only root filesystem; the init container handed it the node's directory.
    assert.equal((await execOk(ferryd, ['id', '-u'])).trim(), '1000');
    assert.notEqual(
      (await ferryd.exec(['touch', '/opt/ferry/probe'])).exitCode,
      0,
      'root filesystem read-only',
    );
    assert.equal((await execOk(ferryd, ['stat', '-c', '%a %u %g', '/run/ferry'])).trim(), '770 1000 1000');
    assert.equal(
      (await execOk(ferryd, ['stat', '-c', '%a %g', '/run/ferry/ferryd.sock'])).trim(),
      '660 1000',
    );
    assert.match(await execOk(ferryd, ['cat', '/proc/1/cmdline']), /ferry.*daemon/);
    // The namespace and its token came from the ConfigMap and the Secret.
    const namespaces = JSON.parse(await execOk(ferryd, ['ferry', 'show', 'namespaces', '--json'])) as {
      namespace: string;
      tokenSource: string;
    }[];
    assert.equal(
      namespaces.find((n) => n.namespace === 'web')?.tokenSource,
      'tokenFile:/etc/ferry/tokens/web',
    );

    const app = await run('ferry-demo', 'echo-demo', find(manifests, 'Deployment', 'echo', 'ferry-demo'));
    assert.deepEqual(
      app.probes.map((p) => `${p.container} ${p.probe}`),
      ['echo readinessProbe'],
    );
    const echo = app.get('echo');
    const [connected, result] = jsonLines(await execOk(echo, VERIFY));
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    const apps = JSON.parse(await execOk(ferryd, ['ferry', 'show', 'apps', '--json'])) as ShowApp[];
    assert.deepEqual(
      apps.map((a) => [a.name, a.uid, a.gid]),
      [['server.js', 1001, 1000]],
    );
    // Without the Secret's token, ferryd refuses the app.
    const refused = await echo.exec(VERIFY, { env: { FERRY_TOKEN: 'not-the-token' } });
    assert.equal(jsonLines(refused.stdout).at(-1)?.['code'], 'EACCES', refused.output);
    // The README's reload command: ferryd is PID 1 (no init in a pod) and takes SIGHUP.
    await execOk(ferryd, ['sh', '-c', 'kill -HUP 1']);
    assert.match(await logUntil(ferryd, 'configuration reload'), /configuration reloaded: no change/);
  });

  test('sidecar variant: ferryd in the pod on @ferry/session, no volume, cut-through', {
    timeout: 180_000,
  }, async () => {
    const pod = await run(
      'ferry-sidecar-demo',
      'echo-sidecar',
      find(manifests, 'Deployment', 'echo', 'ferry-sidecar-demo'),
    );
    assert.deepEqual(
      pod.probes.map((p) => `${p.container} ${p.probe}`),
      ['ferryd startupProbe', 'ferryd readinessProbe', 'ferryd livenessProbe', 'echo readinessProbe'],
    );
    for (const p of pod.probes.filter((x) => x.container === 'ferryd'))
      assert.match(p.output, /^ok: ferryd at @ferry\/session/);
    const [ferryd, echo] = [pod.get('ferryd'), pod.get('echo')];
    const ns = async (c: typeof echo) =>
      (await execOk(c, ['readlink', '/proc/self/ns/net', '/proc/self/ns/ipc'])).trim();
    assert.equal(await ns(echo), await ns(ferryd), 'one network and IPC namespace');
    assert.equal((await execOk(ferryd, ['ls', '-A', '/run/ferry'])).trim(), '', 'no socket file');
    assert.equal((await execOk(echo, ['id', '-u'])).trim(), '1001');
    const [connected, result] = jsonLines(await execOk(echo, VERIFY));
    assert.equal(connected?.['transport'], 'ct');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
  });
  test('node variant across nodes: a client on node B reaches node A’s echo at node A’s ferryd, over TCP', {
    timeout: 180_000,
  }, async () => {
    // Node A's pods are running (first test). Node B: its own ferryd, /run/ferry and a client app.
    const a = pods[0]?.get('ferryd');
    assert.ok(a, 'node A runs (first test)');
    const nodeB = await run('ferry-system', 'ferryd-node-b', find(manifests, 'DaemonSet', 'ferryd'), 'b');
    const appB = await run(
      'ferry-demo',
      'client-demo-b',
      find(manifests, 'Deployment', 'echo', 'ferry-demo'),
      'b',
      true,
    );
    const b = nodeB.get('ferryd');
    type Counters = { session: { tcpConnects: number; tcpAccepts: number } };
    const stats = async (c: typeof a) =>
      JSON.parse(await execOk(c, ['ferry', 'show', 'stats', '--json'])) as Counters;
    const [a0, b0] = [await stats(a), await stats(b)];
    // "ferryd-node" is node A's ferryd pod address (what a hostPort or a Service over the ferryd
    // pods gives in a cluster): no listener on node B serves it, so ferryd-b connects over TCP.
    const target = [
      'node',
      'examples/dist/echo/verify.js',
      'tcp://ferryd-node:7000',
      '--bytes',
      String(8 << 20),
    ];
    const [connected, result] = jsonLines(await execOk(appB.get('echo'), target));
    assert.equal(connected?.['transport'], 'tcp');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    const [a1, b1] = [await stats(a), await stats(b)];
    assert.equal(b1.session.tcpConnects - b0.session.tcpConnects, 1, 'ferryd on node B connected out');
    assert.equal(a1.session.tcpAccepts - a0.session.tcpAccepts, 1, 'ferryd on node A accepted');
  });

  test('sidecar variant across pods: a client pod reaches the echo pod at that pod’s address, over TCP', {
    timeout: 180_000,
  }, async () => {
    const deployment = find(manifests, 'Deployment', 'echo', 'ferry-sidecar-demo');
    const server = pods.find(
      (p) => p.containers.has('ferryd') && p.containers.has('echo') && !p.containers.has('socket-dir'),
    );
    assert.ok(server, 'the sidecar pod runs (previous test)');
    const client = await run('ferry-sidecar-demo', 'client-sidecar', deployment, 'a', true);
    type Counters = { session: { tcpConnects: number; tcpAccepts: number } };
    const stats = async (p: RunningPod) =>
      JSON.parse(await execOk(p.get('ferryd'), ['ferry', 'show', 'stats', '--json'])) as Counters;
    const [c0, s0] = [await stats(client), await stats(server)];
    // "echo-sidecar" is the server pod's address (where service.yaml's Service leads).
    const target = [
      'node',
      'examples/dist/echo/verify.js',
      'tcp://echo-sidecar:7000',
      '--bytes',
      String(8 << 20),
    ];
    const [connected, result] = jsonLines(await execOk(client.get('echo'), target));
    assert.equal(connected?.['transport'], 'tcp');
    assert.equal(result?.['ok'], true, JSON.stringify(result));
    const [c1, s1] = [await stats(client), await stats(server)];
    assert.equal(c1.session.tcpConnects - c0.session.tcpConnects, 1, "the client pod's ferryd connected out");
    assert.equal(s1.session.tcpAccepts - s0.session.tcpAccepts, 1, "the server pod's ferryd accepted");
  });
});
