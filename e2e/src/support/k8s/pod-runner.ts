/**
 * Runs a pod of the manifests under docker the way kubelet would run it, as far as these
 * manifests go: one network and IPC namespace for the pod (a pause container), init containers
 * to completion in order, native sidecars (restartPolicy: Always) started and waited for by their
 * startup probe, then the containers; each with the manifest's command and args (over the image's
 * entrypoint and cmd), environment (values and Secret keys), user and groups (runAsUser,
 * runAsGroup, fsGroup), runAsNonRoot as kubelet checks it, read-only root filesystem,
 * capabilities, no-new-privileges, memory limit, and mounts: hostPath as a named volume (empty,
 * root-owned, like the directory kubelet creates), ConfigMap and Secret keys as files (mode
 * defaultMode, group fsGroup), read-only. Probes are run with docker exec as kubelet runs them.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  GenericContainer,
  getContainerRuntimeClient,
  type StartedNetwork,
  type StartedTestContainer,
  Wait,
} from 'testcontainers';
import type { Manifest } from './manifests.js';
import { quantity } from './quantity.js';

// biome-ignore lint/suspicious/noExplicitAny: pod specs are walked as plain data
type Spec = any;

class PodContainer extends GenericContainer {
  constructor(image: string) {
    super(image);
    // kubelet ignores an image's HEALTHCHECK (probes are the manifest's).
    this.createOpts.Healthcheck = { Test: ['NONE'] };
  }

  host(): Spec {
    return this.hostConfig;
  }
}

export interface PodContext {
  /** Every manifest (Secrets and ConfigMaps are looked up by name in the pod's namespace). */
  manifests: readonly Manifest[];
  namespace: string;
  /** Image names of the manifests -> images to run. */
  images: Readonly<Record<string, string>>;
  /** hostPath path -> named volume standing for the node's directory (shared between pods). */
  hostPaths: Map<string, string>;
  network: StartedNetwork;
}

export interface ProbeResult {
  container: string;
  probe: string;
  command: string[];
  output: string;
}

export class RunningPod {
  readonly containers = new Map<string, StartedTestContainer>();
  readonly probes: ProbeResult[] = [];
  readonly #cleanup: (() => Promise<unknown>)[] = [];

  get(name: string): StartedTestContainer {
    const c = this.containers.get(name);
    if (!c) throw new Error(`no container ${name} in the pod`);
    return c;
  }

  onStop(f: () => Promise<unknown>): void {
    this.#cleanup.push(f);
  }

  async stop(): Promise<void> {
    for (const f of this.#cleanup.reverse()) await f().catch(() => {});
    this.#cleanup.length = 0;
  }
}

async function docker() {
  return (await getContainerRuntimeClient()).container.dockerode;
}

/** A named volume holding `files` (mode, group), as kubelet lays out a ConfigMap or Secret. */
async function filesVolume(
  helperImage: string,
  files: Record<string, string>,
  mode: number,
  gid: number,
): Promise<string> {
  const d = await docker();
  const name = `ferry-k8s-${Math.random().toString(16).slice(2, 14)}`;
  await d.createVolume({ Name: name, Labels: { 'org.testcontainers': 'true' } });
  const names = Object.keys(files);
  const helper = new PodContainer(helperImage)
    .withUser('0:0')
    .withEntrypoint(['sh', '-c'])
    .withCommand([
      names.length === 0
        ? 'true'
        : `cp /stage/* /vol/ && chown 0:${gid} /vol/* && chmod ${mode.toString(8)} /vol/*`,
    ])
    .withCopyContentToContainer(names.map((n) => ({ content: files[n] as string, target: `/stage/${n}` })))
    .withWaitStrategy(Wait.forOneShotStartup());
  helper.host().Mounts = [{ Type: 'volume', Source: name, Target: '/vol' }];
  const done = await helper.start();
  await done.stop({ timeout: 0 });
  return name;
}

function resourceOf(ctx: PodContext, kind: 'Secret' | 'ConfigMap', name: string): Manifest {
  const m = ctx.manifests.find(
    (x) => x.kind === kind && x.metadata.name === name && x.metadata.namespace === ctx.namespace,
  );
  if (!m) throw new Error(`${kind} ${ctx.namespace}/${name} is not in the manifests`);
  return m;
}

function secretData(s: Manifest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((s['data'] ?? {}) as Record<string, string>)) {
    out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  return { ...out, ...(s['stringData'] ?? {}) };
}

function envOf(ctx: PodContext, c: Spec): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env[e.name] = String(e.value);
    else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef;
      const v = secretData(resourceOf(ctx, 'Secret', ref.name))[ref.key];
      if (v === undefined) throw new Error(`Secret ${ref.name} has no key ${ref.key}`);
      env[e.name] = v;
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      env[e.name] = String(resourceOf(ctx, 'ConfigMap', ref.name)['data']?.[ref.key]);
    } else throw new Error(`env ${e.name}: only value, secretKeyRef and configMapKeyRef are run here`);
  }
  return env;
}

/** The uid a container runs as, checked as kubelet checks runAsNonRoot. */
async function checkUser(
  image: string,
  uid: number | undefined,
  nonRoot: boolean,
  name: string,
): Promise<void> {
  if (!nonRoot) return;
  if (uid !== undefined) {
    if (uid === 0) throw new Error(`${name}: runAsNonRoot and runAsUser 0`);
    return;
  }
  const info = await (await docker()).getImage(image).inspect();
  const user = String(info.Config?.User ?? '').split(':')[0] ?? '';
  if (!/^\d+$/.test(user)) {
    throw new Error(
      `${name}: container has runAsNonRoot and image has non-numeric user (${user || 'none'}), cannot verify user is non-root`,
    );
  }
  if (user === '0') throw new Error(`${name}: runAsNonRoot and the image runs as root`);
}

async function runProbe(pod: RunningPod, name: string, kind: string, probe: Spec): Promise<void> {
  const cmd: string[] = probe.exec.command;
  const c = pod.get(name);
  const period = (probe.periodSeconds ?? 10) * 1000;
  const tries = Math.max(kind === 'livenessProbe' ? 1 : (probe.failureThreshold ?? 3), 1);
  let last = '';
  for (let i = 0; i < tries; i++) {
    const r = await c.exec(cmd);
    if (r.exitCode === 0) {
      pod.probes.push({ container: name, probe: kind, command: cmd, output: r.output.trim() });
      return;
    }
    last = `exit ${r.exitCode}: ${r.output.trim()}`;
    await sleep(Math.min(period, 1000));
  }
  throw new Error(`${name}: ${kind} ${JSON.stringify(cmd)} failed ${tries} times (${last})`);
}

/** Starts the pod `podSpec` (a PodSpec); probes are run as described at the top. */
export async function runPod(ctx: PodContext, podName: string, podSpec: Spec): Promise<RunningPod> {
  const pod = new RunningPod();
  try {
    await startPod(ctx, podName, podSpec, pod);
    return pod;
  } catch (err) {
    // What the containers said, for the error (they are removed next).
    const said: string[] = [];
    for (const [name, c] of pod.containers) said.push(`--- ${name}:\n${await logsOf(c.getId())}`);
    await pod.stop();
    if (said.length === 0) throw err;
    throw new Error(`${(err as Error).message}\n${said.join('\n')}`, { cause: err });
  }
}

async function logsOf(id: string): Promise<string> {
  const buf = (await (
    await docker()
  )
    .getContainer(id)
    .logs({ stdout: true, stderr: true, tail: 30 })) as Buffer;
  // Docker frames each chunk with an 8-byte header when there is no TTY.
  const lines: string[] = [];
  for (let at = 0; at + 8 <= buf.length; ) {
    const n = buf.readUInt32BE(at + 4);
    lines.push(buf.subarray(at + 8, at + 8 + n).toString('utf8'));
    at += 8 + n;
  }
  return lines.join('').trim();
}

async function startPod(ctx: PodContext, podName: string, spec: Spec, pod: RunningPod): Promise<void> {
  const d = await docker();
  const psc = spec.securityContext ?? {};
  const imageOf = (c: Spec) => {
    const i = ctx.images[c.image];
    if (!i)
      throw new Error(`${c.name}: image ${c.image} is not one of ${Object.keys(ctx.images).join(', ')}`);
    return i;
  };
  const helperImage = imageOf(spec.containers[0]);

  const volumes = new Map<string, { name: string; readOnly: boolean }>();
  for (const v of spec.volumes ?? []) {
    if (v.hostPath) {
      let name = ctx.hostPaths.get(v.hostPath.path);
      if (!name) {
        if (v.hostPath.type === 'Directory')
          throw new Error(`hostPath ${v.hostPath.path} does not exist (type Directory)`);
        name = `ferry-k8s-host-${Math.random().toString(16).slice(2, 14)}`;
        await d.createVolume({ Name: name, Labels: { 'org.testcontainers': 'true' } });
        ctx.hostPaths.set(v.hostPath.path, name);
      }
      volumes.set(v.name, { name, readOnly: false });
    } else if (v.configMap || v.secret) {
      const files = v.configMap
        ? (resourceOf(ctx, 'ConfigMap', v.configMap.name)['data'] as Record<string, string>)
        : secretData(resourceOf(ctx, 'Secret', v.secret.secretName));
      const mode = (v.configMap ?? v.secret).defaultMode ?? 0o644;
      const name = await filesVolume(helperImage, files, mode, psc.fsGroup ?? 0);
      pod.onStop(() => d.getVolume(name).remove());
      volumes.set(v.name, { name, readOnly: true });
    } else throw new Error(`volume ${v.name}: only hostPath, configMap and secret are run here`);
  }

  const pause = await new PodContainer(helperImage)
    .withEntrypoint(['sleep'])
    .withCommand(['infinity'])
    .withIpcMode('shareable')
    .withNetwork(ctx.network)
    .withNetworkAliases(podName)
    .withWaitStrategy(Wait.forListeningPorts())
    .start();
  pod.onStop(() => pause.stop({ timeout: 0 }));

  const start = async (c: Spec, kind: 'init' | 'sidecar' | 'app') => {
    const sc = c.securityContext ?? {};
    const image = imageOf(c);
    const uid: number | undefined = sc.runAsUser ?? psc.runAsUser;
    const gid: number | undefined = sc.runAsGroup ?? psc.runAsGroup;
    await checkUser(image, uid, sc.runAsNonRoot ?? psc.runAsNonRoot ?? false, c.name);
    const g = new PodContainer(image)
      .withEnvironment(envOf(ctx, c))
      .withName(`${podName}-${c.name}-${process.pid}`);
    if (c.command) g.withEntrypoint(c.command).withCommand(c.args ?? []);
    else if (c.args) g.withCommand(c.args);
    if (uid !== undefined) g.withUser(gid !== undefined ? `${uid}:${gid}` : String(uid));
    if (c.workingDir) g.withWorkingDir(c.workingDir);
    const h = g.host();
    g.withNetworkMode(`container:${pause.getId()}`).withIpcMode(`container:${pause.getId()}`);
    const groups = [psc.fsGroup, ...(psc.supplementalGroups ?? [])]
      .filter((x) => x !== undefined)
      .map(String);
    if (groups.length > 0) h.GroupAdd = groups;
    if (sc.readOnlyRootFilesystem) h.ReadonlyRootfs = true;
    if (sc.allowPrivilegeEscalation === false) h.SecurityOpt = ['no-new-privileges'];
    if (sc.privileged) h.Privileged = true;
    if (sc.capabilities?.drop) h.CapDrop = sc.capabilities.drop;
    if (sc.capabilities?.add) h.CapAdd = sc.capabilities.add;
    const mem = c.resources?.limits?.memory;
    if (mem !== undefined) h.Memory = quantity(mem);
    h.Mounts = (c.volumeMounts ?? []).map((vm: Spec) => {
      const v = volumes.get(vm.name);
      if (!v) throw new Error(`${c.name}: no volume ${vm.name}`);
      return {
        Type: 'volume',
        Source: v.name,
        Target: vm.mountPath,
        ReadOnly: Boolean(vm.readOnly) || v.readOnly,
        // An empty directory, as kubelet makes it (not filled from the image).
        VolumeOptions: { NoCopy: true },
      };
    });
    g.withWaitStrategy(
      kind === 'init' ? Wait.forOneShotStartup() : Wait.forListeningPorts(),
    ).withStartupTimeout(30_000);
    const started = await g.start();
    pod.onStop(() => started.stop({ timeout: 0 }));
    pod.containers.set(c.name, started);
    if (kind === 'init') return;
    for (const p of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      if (c[p]?.exec) await runProbe(pod, c.name, p, c[p]);
      else if (c[p]) throw new Error(`${c.name}: only exec probes are run here`);
    }
  };

  for (const c of spec.initContainers ?? [])
    await start(c, c.restartPolicy === 'Always' ? 'sidecar' : 'init');
  for (const c of spec.containers) await start(c, 'app');
}
