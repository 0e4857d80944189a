/**
 * The Pod Security Standards' checks (kubernetes.io/docs/concepts/security/pod-security-standards)
 * that concern these manifests, for the levels `baseline` and `restricted`: what the admission
 * controller of a namespace labelled `pod-security.kubernetes.io/enforce: <level>` refuses.
 * Not the whole standard (AppArmor, SELinux options, /proc mount types and sysctls are left out:
 * no manifest here sets them); every check here is one the standard makes.
 */

// biome-ignore lint/suspicious/noExplicitAny: pod specs are walked as plain data
type Spec = any;

const BASELINE_CAPS = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
const RESTRICTED_VOLUMES = new Set([
  'configMap',
  'csi',
  'downwardAPI',
  'emptyDir',
  'ephemeral',
  'persistentVolumeClaim',
  'projected',
  'secret',
]);

function containersOf(pod: Spec): Spec[] {
  return [
    ...(pod['initContainers'] ?? []),
    ...(pod['containers'] ?? []),
    ...(pod['ephemeralContainers'] ?? []),
  ];
}

/** Why `pod` (a PodSpec) is refused at `level`; empty when it is admitted. */
export function podSecurityViolations(pod: Spec, level: 'privileged' | 'baseline' | 'restricted'): string[] {
  if (level === 'privileged') return [];
  const v: string[] = [];
  const psc: Spec = pod['securityContext'] ?? {};
  for (const ns of ['hostNetwork', 'hostPID', 'hostIPC']) if (pod[ns] === true) v.push(`${ns}: true`);
  for (const vol of pod['volumes'] ?? []) if (vol.hostPath) v.push(`volume ${vol.name}: hostPath`);
  for (const c of containersOf(pod)) {
    const sc: Spec = c.securityContext ?? {};
    if (sc['privileged'] === true) v.push(`${c.name}: privileged`);
    for (const p of c.ports ?? []) if (p.hostPort) v.push(`${c.name}: hostPort ${p.hostPort}`);
    for (const cap of sc['capabilities']?.add ?? []) {
      if (!BASELINE_CAPS.has(cap)) v.push(`${c.name}: adds capability ${cap}`);
    }
    const seccomp = sc['seccompProfile']?.type ?? psc['seccompProfile']?.type;
    if (seccomp === 'Unconfined') v.push(`${c.name}: seccomp Unconfined`);
  }
  if (level === 'baseline') return v;

  for (const vol of pod['volumes'] ?? []) {
    const type = Object.keys(vol).find((k) => k !== 'name');
    if (type && !RESTRICTED_VOLUMES.has(type) && type !== 'hostPath')
      v.push(`volume ${vol.name}: type ${type}`);
  }
  for (const c of containersOf(pod)) {
    const sc: Spec = c.securityContext ?? {};
    if (sc['allowPrivilegeEscalation'] !== false) v.push(`${c.name}: allowPrivilegeEscalation is not false`);
    const nonRoot = sc['runAsNonRoot'] ?? psc['runAsNonRoot'];
    if (nonRoot !== true) v.push(`${c.name}: runAsNonRoot is not true`);
    const uid = sc['runAsUser'] ?? psc['runAsUser'];
    if (uid === 0) v.push(`${c.name}: runAsUser 0`);
    const seccomp = sc['seccompProfile']?.type ?? psc['seccompProfile']?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost')
      v.push(`${c.name}: no seccompProfile RuntimeDefault`);
    const caps = sc['capabilities'] ?? {};
    if (!(caps.drop ?? []).includes('ALL')) v.push(`${c.name}: capabilities do not drop ALL`);
    for (const cap of caps.add ?? [])
      if (cap !== 'NET_BIND_SERVICE') v.push(`${c.name}: adds capability ${cap}`);
  }
  return v;
}
