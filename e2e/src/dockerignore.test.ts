/**
 * The images copy node_modules through an allowlist (/.dockerignore). Every runtime dependency
 * of the workspaces in the images must be on it, or an image would fail only when it runs.
 * (No container engine needed.)
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/images.js';

interface LockEntry {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  link?: boolean;
  resolved?: string;
}

/** The installed packages the workspaces need at run time, as their node_modules paths. */
function runtimePackages(): Set<string> {
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const found = new Set<string>();
  const visit = (from: string, name: string) => {
    // Node's resolution: nested node_modules first, then each parent's, then the top level.
    let base = from;
    for (;;) {
      const candidate = `${base ? `${base}/` : ''}node_modules/${name}`;
      if (lock.packages[candidate]) {
        if (found.has(candidate) || !existsSync(join(REPO_ROOT, candidate))) return;
        found.add(candidate);
        const entry = lock.packages[candidate];
        const at = entry.link && entry.resolved ? entry.resolved : candidate;
        deps(at);
        return;
      }
      if (!base) return;
      const i = base.lastIndexOf('/node_modules/');
      base = i < 0 ? '' : base.slice(0, i);
    }
  };
  const deps = (at: string) => {
    const e = lock.packages[at] ?? {};
    for (const name of Object.keys({ ...e.dependencies, ...e.optionalDependencies })) visit(at, name);
  };
  for (const ws of ['sdk', 'daemon', 'examples']) deps(ws);
  return found;
}

test('every runtime dependency of sdk, daemon and examples is let through /.dockerignore', () => {
  const lines = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
  const allowed = lines.filter((l) => l.startsWith('!node_modules/')).map((l) => l.slice(1));
  const excluded = lines.filter((l) => l.startsWith('node_modules/'));
  const pkgs = runtimePackages();
  assert.ok(pkgs.has('node_modules/koffi') && pkgs.has('node_modules/msgpackr'), [...pkgs].join(', '));
  const missing = [...pkgs].filter(
    (p) => !allowed.some((a) => p === a || p.startsWith(`${a}/`)) || excluded.includes(p),
  );
  assert.deepEqual(missing, [], `add these to /.dockerignore's allowlist: ${missing.join(', ')}`);
});
