/**
 * Kubernetes' own schemas, offline: the kubernetes-models package carries the OpenAPI schemas of
 * the API (formats, required fields, enums, quantities) as validators, and their TypeScript
 * declarations. The validators let unknown fields through, so the declarations catch those:
 * every manifest is written out as a typed object literal and type-checked (an excess property
 * is an error there, as kubectl's strict field validation makes it one on a cluster).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../images.js';
import type { Manifest } from './manifests.js';

/** `kubernetes-models/<group>/<version>` for an apiVersion (`apps/v1`, `v1`). */
function modulePath(apiVersion: string): string {
  return `kubernetes-models/${apiVersion}`;
}

/** Schema errors of one manifest (empty when it is valid); an unknown apiVersion/kind is one. */
export async function schemaErrors(m: Manifest): Promise<string[]> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import(modulePath(m.apiVersion))) as Record<string, unknown>;
  } catch {
    return [`${m.file}: unknown apiVersion ${m.apiVersion}`];
  }
  const Model = mod[m.kind] as (new (data: unknown) => { validate(): void }) | undefined;
  if (typeof Model !== 'function') return [`${m.file}: unknown kind ${m.kind} in ${m.apiVersion}`];
  const { file: _file, ...doc } = m;
  try {
    new Model(doc).validate();
    return [];
  } catch (err) {
    return [`${m.file} (${m.kind} ${m.metadata?.name}): ${(err as Error).message}`];
  }
}

/**
 * Type-checks the manifests against kubernetes-models' declarations with the project's tsc;
 * returns its diagnostics (empty when every field is known and has the right type).
 */
export function fieldErrors(manifests: readonly Manifest[]): string[] {
  // Inside e2e/ so that `kubernetes-models` resolves from e2e's node_modules.
  const dir = mkdtempSync(join(REPO_ROOT, 'e2e', '.k8s-typecheck-'));
  try {
    const lines: string[] = [];
    manifests.forEach((m, i) => {
      const { file, ...doc } = m;
      lines.push(`import type { I${m.kind} as T${i} } from '${modulePath(m.apiVersion)}/${m.kind}';`);
      lines.push(`// ${file}\nexport const m${i}: T${i} = ${JSON.stringify(doc, null, 2)};`);
    });
    writeFileSync(join(dir, 'manifests.ts'), `${lines.join('\n')}\n`);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          strict: true,
          noEmit: true,
          module: 'nodenext',
          moduleResolution: 'nodenext',
          skipLibCheck: true,
          types: [],
        },
        files: ['manifests.ts'],
      }),
    );
    const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', dir, '--pretty', 'false'], { encoding: 'utf8' });
    if (r.status === 0) return [];
    const out = `${r.stdout}${r.stderr}`.trim();
    return out
      ? out.split('\n').map((l) => l.replace(/^\S*\.k8s-typecheck-[^/]+\//, '<manifests>/'))
      : [`tsc exited ${r.status}`];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
