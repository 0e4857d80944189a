/**
 * Docker settings testcontainers 12.0.1 has no builder method for (named-volume mounts that do not
 * replace the container's bind mounts, supplementary groups, Docker's init). GenericContainer
 * keeps them in its protected `hostConfig`; this subclass is how the module reaches it on any
 * GenericContainer, the user's included.
 */
import { GenericContainer } from 'testcontainers';

class HostConfigAccess extends GenericContainer {
  static of(c: GenericContainer) {
    return (c as HostConfigAccess).hostConfig;
  }
}

/** Mounts the named volume `volume` at `target` (added to the container's other mounts). */
export function addVolumeMount(c: GenericContainer, volume: string, target: string): void {
  const hc = HostConfigAccess.of(c);
  hc.Mounts = [...(hc.Mounts ?? []), { Type: 'volume', Source: volume, Target: target }];
}

/** Adds a supplementary group to the container's user (`docker run --group-add`). */
export function addGroup(c: GenericContainer, gid: number): void {
  const hc = HostConfigAccess.of(c);
  const groups = hc.GroupAdd ?? [];
  if (!groups.includes(String(gid))) hc.GroupAdd = [...groups, String(gid)];
}

/** Docker's `--init`: a tiny init as PID 1 forwards signals and reaps. */
export function useInit(c: GenericContainer): void {
  HostConfigAccess.of(c).Init = true;
}
