/**
 * deploy/kubernetes checked offline (no cluster, no engine): every manifest against Kubernetes'
 * schemas and field declarations (kubernetes-models), the kustomizations against the files, the
 * images against what `npm run images` builds, the socket, config and token paths against each
 * other, and each pod against the Pod Security level its namespace enforces.
 * kubernetes-docker.test.ts runs the pods under docker.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { describe, test } from 'node:test';
import { REPO_ROOT } from './support/images.js';
import { find, K8S_DIR, loadManifests, type Manifest, yamlFiles } from './support/k8s/manifests.js';
import { podSecurityViolations } from './support/k8s/pod-security.js';
import { fieldErrors, schemaErrors } from './support/k8s/schema.js';

const all = loadManifests();
const kustomizations = all.filter((m) => m.kind === 'Kustomization');
const objects = all.filter((m) => m.kind !== 'Kustomization');
const workloads = objects.filter((m) => ['DaemonSet', 'Deployment'].includes(m.kind));
// biome-ignore lint/suspicious/noExplicitAny: pod specs are walked as plain data
type Spec = Record<string, any>;
const podOf = (w: Manifest): Spec => w['spec'].template.spec;
const containersOf = (pod: Spec): Spec[] => [...(pod['initContainers'] ?? []), ...pod['containers']];
const envOf = (c: Spec, name: string): Spec | undefined =>
  (c['env'] ?? []).find((e: Spec) => e['name'] === name);

describe('deploy/kubernetes: the manifests', () => {
  test('there are the workloads the README describes', () => {
    assert.deepEqual(workloads.map((w) => `${w.kind} ${w.metadata.namespace}/${w.metadata.name}`).sort(), [
      'DaemonSet ferry-system/ferryd',
      'Deployment ferry-demo/echo',
      'Deployment ferry-sidecar-demo/echo',
    ]);
  });

  test('every object validates against the Kubernetes schemas', async () => {
    const errors = (await Promise.all(objects.map(schemaErrors))).flat();
    assert.deepEqual(errors, []);
  });

  test('every field of every object is one the API declares, with the right type', () => {
    assert.deepEqual(fieldErrors(objects), []);
  });

  test('the checks fail on a misspelt field and on a bad quantity (they can fail)', async () => {
    const ds = structuredClone(find(all, 'DaemonSet', 'ferryd'));
    const c = ds['spec'].template.spec.containers[0];
    c.readinesProbe = c.readinessProbe;
    delete c.readinessProbe;
    const fields = fieldErrors([ds]);
    assert.ok(
      fields.some((l) => /known properties.*readinesProbe/.test(l)),
      fields.join('\n'),
    );
    const bad = structuredClone(find(all, 'DaemonSet', 'ferryd'));
    bad['spec'].template.spec.containers[0].resources.requests.cpu = 'lots';
    const schema = await schemaErrors(bad);
    assert.match(schema.join('\n'), /requests\/cpu/);
  });

  test('each kustomization lists exactly the files of its directory, and the root lists node/ and example-app/', () => {
    for (const k of kustomizations) {
      const dir = join(K8S_DIR, dirname(k.file));
      const resources: string[] = k['resources'];
      for (const r of resources) assert.ok(existsSync(join(dir, r)), `${k.file}: ${r} exists`);
      const own = yamlFiles(dir)
        .filter((p) => dirname(p) === dir && !p.endsWith('/kustomization.yaml'))
        .map((p) => p.slice(dir.length + 1));
      const listedFiles = resources.filter((r) => /\.ya?ml$/.test(r)).sort();
      assert.deepEqual(listedFiles, own.sort(), `${k.file} lists every manifest beside it`);
    }
    const root = kustomizations.find((k) => k.file === 'kustomization.yaml');
    assert.deepEqual(root?.['resources'], ['node', 'example-app']);
  });

  test('every object is in a namespace the manifests create, and its pods meet that namespace’s Pod Security level', () => {
    const namespaces = new Map(
      objects
        .filter((m) => m.kind === 'Namespace')
        .map((n) => [
          n.metadata.name,
          n.metadata.labels?.['pod-security.kubernetes.io/enforce'] ?? 'privileged',
        ]),
    );
    for (const m of objects.filter((o) => o.kind !== 'Namespace')) {
      assert.ok(namespaces.has(String(m.metadata.namespace)), `${m.file}: namespace ${m.metadata.namespace}`);
      assert.equal(
        dirname(m.file),
        dirname(objects.find((n) => n.metadata.name === m.metadata.namespace)?.file ?? ''),
      );
    }
    for (const w of workloads) {
      const level = namespaces.get(String(w.metadata.namespace)) as 'privileged' | 'baseline' | 'restricted';
      assert.deepEqual(podSecurityViolations(podOf(w), level), [], `${w.file} at ${level}`);
    }
    // The sidecar variant is the one for restricted namespaces; the node variant cannot be.
    assert.equal(namespaces.get('ferry-sidecar-demo'), 'restricted');
    const ds = podSecurityViolations(podOf(find(all, 'DaemonSet', 'ferryd')), 'baseline');
    assert.ok(ds.includes('volume socket-dir: hostPath'), ds.join(', '));
  });

  test('the images are the two that `npm run images` builds, by the same names', () => {
    const script = (
      JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts['images'];
    const built = [...String(script).matchAll(/--target (\S+) -t (\S+)/g)].map((m) => [m[1], m[2]]);
    assert.deepEqual(built, [
      ['ferryd', 'ferry/ferryd:local'],
      ['app', 'ferry/app:local'],
    ]);
    for (const w of workloads) {
      for (const c of containersOf(podOf(w))) {
        const want = c['name'] === 'echo' ? 'ferry/app:local' : 'ferry/ferryd:local';
        assert.equal(c['image'], want, `${w.file}: ${c['name']}`);
        // Loaded into the cluster (kind load / k3d image import), never pulled.
        assert.equal(c['imagePullPolicy'], 'IfNotPresent');
      }
    }
  });

  test('node variant: ferryd’s socket is on the hostPath the app mounts, at the same path', () => {
    const dsPod = podOf(find(all, 'DaemonSet', 'ferryd'));
    const ferryd = dsPod['containers'].find((c: Spec) => c['name'] === 'ferryd');
    const socket = envOf(ferryd, 'FERRY_SOCKET')?.['value'];
    assert.equal(socket, '/run/ferry/ferryd.sock');
    const mountOf = (pod: Spec, c: Spec, path: string) => {
      const m = c['volumeMounts'].find((vm: Spec) => vm['mountPath'] === path);
      assert.ok(m, `${c['name']} mounts ${path}`);
      return pod['volumes'].find((v: Spec) => v['name'] === m['name']);
    };
    const dsVolume = mountOf(dsPod, ferryd, posix.dirname(socket));
    assert.equal(dsVolume.hostPath.path, '/run/ferry');
    // The init container prepares that same directory.
    const init = dsPod['initContainers'][0];
    assert.equal(mountOf(dsPod, init, '/run/ferry').hostPath.path, '/run/ferry');

    const appPod = podOf(find(all, 'Deployment', 'echo', 'ferry-demo'));
    const app = appPod['containers'][0];
    assert.equal(envOf(app, 'FERRY_SOCKET')?.['value'], socket);
    assert.equal(mountOf(appPod, app, posix.dirname(socket)).hostPath.path, dsVolume.hostPath.path);
    // The app runs in ferryd's group: the socket is mode 0660.
    assert.equal(appPod['securityContext'].runAsGroup, dsPod['securityContext'].runAsGroup);
    assert.notEqual(appPod['securityContext'].runAsUser, dsPod['securityContext'].runAsUser);
  });

  test('sidecar variant: ferryd and the app name the same abstract socket; no volume is shared', () => {
    const pod = podOf(find(all, 'Deployment', 'echo', 'ferry-sidecar-demo'));
    const [ferryd] = pod['initContainers'];
    assert.equal(ferryd['restartPolicy'], 'Always', 'a native sidecar');
    assert.equal(envOf(ferryd, 'FERRY_SOCKET')?.['value'], '@ferry/session');
    assert.equal(envOf(pod['containers'][0], 'FERRY_SOCKET')?.['value'], '@ferry/session');
    assert.equal(pod['containers'][0].volumeMounts, undefined);
  });

  test('every probe asks ferry (health, or its listeners) of the socket its container names', () => {
    for (const w of workloads) {
      for (const c of containersOf(podOf(w))) {
        for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
          const cmd: string[] | undefined = c[p]?.exec?.command;
          if (!cmd) continue;
          assert.ok(envOf(c, 'FERRY_SOCKET'), `${w.file} ${c['name']}: FERRY_SOCKET set where ${p} runs`);
          assert.match(
            cmd.join(' '),
            /^ferry health|^sh -c ferry show listeners/,
            `${w.file} ${c['name']} ${p}`,
          );
        }
      }
      const ferryd = containersOf(podOf(w)).find((c) => c['image'] === 'ferry/ferryd:local' && c['args']);
      if (ferryd) {
        for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe'])
          assert.ok(ferryd[p], `${w.file}: ferryd ${p}`);
      }
    }
  });

  test('the token files ferryd reads are keys of its Secret, and each app gives the same token', () => {
    for (const [dsOrDeploy, app] of [
      [find(all, 'DaemonSet', 'ferryd'), find(all, 'Deployment', 'echo', 'ferry-demo')],
      [
        find(all, 'Deployment', 'echo', 'ferry-sidecar-demo'),
        find(all, 'Deployment', 'echo', 'ferry-sidecar-demo'),
      ],
    ] as const) {
      const pod = podOf(dsOrDeploy);
      const ferryd = containersOf(pod).find((c) => c['name'] === 'ferryd') as Spec;
      const configPath: string = envOf(ferryd, 'FERRY_CONFIG')?.['value'];
      const mountFor = (path: string) => {
        const m = ferryd['volumeMounts'].find((vm: Spec) => path.startsWith(`${vm['mountPath']}/`));
        assert.ok(m, `${dsOrDeploy.file}: ${path} is in a mount`);
        return { mount: m, volume: pod['volumes'].find((v: Spec) => v['name'] === m['name']) };
      };
      const cfg = mountFor(configPath);
      const cm = find(all, 'ConfigMap', cfg.volume.configMap.name, dsOrDeploy.metadata.namespace);
      const config = JSON.parse(cm['data'][posix.basename(configPath)]);
      const ns = dsOrDeploy.metadata.namespace;
      for (const [name, entry] of Object.entries(config.namespaces as Record<string, Spec>)) {
        if (!entry['tokenFile']) continue;
        const tok = mountFor(entry['tokenFile']);
        const secret = find(all, 'Secret', tok.volume.secret.secretName, ns);
        const key = posix.relative(tok.mount.mountPath, entry['tokenFile']);
        const token = secret['stringData']?.[key];
        assert.ok(typeof token === 'string' && token.length >= 8, `${secret.file}: key ${key}`);
        const appC = podOf(app)['containers'][0];
        if (envOf(appC, 'FERRY_NAMESPACE')?.['value'] !== name) continue;
        const ref = envOf(appC, 'FERRY_TOKEN')?.['valueFrom'].secretKeyRef;
        const appSecret = find(all, 'Secret', ref.name, app.metadata.namespace);
        assert.equal(appSecret['stringData'][ref.key], token, `${app.file} gives ${name}'s token`);
      }
    }
  });
});
