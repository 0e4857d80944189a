/**
 * A SIGHUP reload: the new configuration's live options are copied into the running one (every
 * layer holds that same object, so they see the change at their next decision); options that
 * take a restart keep their running value and are reported.
 */
import type { DaemonConfig } from '../config.js';
import { OPTIONS } from './options.js';

export interface ReloadOutcome {
  applied: string[];
  needsRestart: string[];
}

// Token hashes are Buffers: JSON.stringify writes their bytes, so a rotated token compares unequal.
const comparable = (v: unknown): string => JSON.stringify(v) ?? 'undefined';

/**
 * Copies `next`'s live options into `running`. `check` sees the merged result first (new live
 * values beside the running restart-only ones) and throws to refuse the whole reload.
 */
export function applyReload(
  running: DaemonConfig,
  next: DaemonConfig,
  check: (merged: DaemonConfig) => void = () => {},
): ReloadOutcome {
  const out: ReloadOutcome = { applied: [], needsRestart: [] };
  const options: Record<string, { live: boolean }> = OPTIONS;
  const current = running as unknown as Record<string, unknown>;
  const source = next as unknown as Record<string, unknown>;
  const merged: Record<string, unknown> = { ...current };
  for (const [key, info] of Object.entries(options)) {
    if (comparable(current[key]) === comparable(source[key])) continue;
    if (info.live) {
      merged[key] = source[key];
      out.applied.push(key);
    } else out.needsRestart.push(key);
  }
  check(merged as unknown as DaemonConfig);
  for (const key of out.applied) current[key] = merged[key];
  return out;
}
