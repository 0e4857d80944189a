/**
 * The manifests of deploy/kubernetes, parsed as kubectl parses them (YAML 1.1: `0440` is octal),
 * with the file each came from.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from '../images.js';

export const K8S_DIR = join(REPO_ROOT, 'deploy/kubernetes');

export interface Manifest {
  /** Path relative to deploy/kubernetes. */
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  // biome-ignore lint/suspicious/noExplicitAny: manifests are walked as plain data
  [key: string]: any;
}

/** Every YAML document under `dir`, in file order; throws on a YAML error, naming the file. */
export function loadManifests(dir = K8S_DIR): Manifest[] {
  const out: Manifest[] = [];
  for (const path of yamlFiles(dir)) {
    const docs = parseAllDocuments(readFileSync(path, 'utf8'), { version: '1.1' });
    for (const doc of Array.isArray(docs) ? docs : [docs]) {
      if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((e) => e.message).join('; ')}`);
      const value = doc.toJS() as Manifest | null;
      if (value === null) continue;
      out.push({ ...value, file: relative(dir, path) });
    }
  }
  return out;
}

export function yamlFiles(dir: string): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) files.push(...yamlFiles(p));
    else if (/\.ya?ml$/.test(name)) files.push(p);
  }
  return files;
}

/** The one manifest of `kind` named `name` (in `namespace` when given). */
export function find(all: readonly Manifest[], kind: string, name: string, namespace?: string): Manifest {
  const hits = all.filter(
    (m) =>
      m.kind === kind &&
      m.metadata?.name === name &&
      (namespace === undefined || m.metadata.namespace === namespace) &&
      m.file !== undefined,
  );
  if (hits.length !== 1) throw new Error(`${hits.length} manifests of kind ${kind} named ${name}`);
  return hits[0] as Manifest;
}
