/**
 * No import cycles in daemon/src or sdk/src: every relative import counts, `import type` and
 * `import()` included (a type-only cycle still ties two modules into one). Test files are left out.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** `from '...'`, `import '...'` and `import('...')` with a relative specifier. */
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.{1,2}\/[^'"]+)['"]/g;

/** Each module's relative imports, resolved to source files (`x.js` is `x.ts`). */
function importGraph(files: readonly string[], read: (f: string) => string): Map<string, string[]> {
  const known = new Set(files);
  const graph = new Map<string, string[]>();
  for (const f of files) {
    const deps: string[] = [];
    for (const m of read(f).matchAll(IMPORT)) {
      const p = resolve(dirname(f), m[1] as string).replace(/\.js$/, '.ts');
      if (known.has(p)) deps.push(p);
    }
    graph.set(f, deps);
  }
  return graph;
}

/** The cycles of `graph`: its strongly connected components of more than one module (or a self-import). */
function importCycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || graph.get(v)?.includes(v)) cycles.push(scc.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

test('the cycle finder finds a cycle through type imports and dynamic imports, and none in a chain', () => {
  const files: Record<string, string> = {
    '/r/a.ts': "import type { B } from './b.js';",
    '/r/b.ts': "export const x = () => import('./c.js');",
    '/r/c.ts': "import { a } from './a.js';\nimport '../elsewhere.js';",
    '/r/d.ts': "import { c } from './c.js';",
  };
  const read = (f: string) => files[f] ?? '';
  assert.deepEqual(importCycles(importGraph(Object.keys(files), read)), [['/r/a.ts', '/r/b.ts', '/r/c.ts']]);
  delete files['/r/c.ts'];
  files['/r/c.ts'] = 'export const a = 1;';
  assert.deepEqual(importCycles(importGraph(Object.keys(files), read)), []);
});

for (const root of ['daemon/src', 'sdk/src']) {
  test(`${root} has no import cycle`, () => {
    const files = sources(join(REPO, root));
    assert.ok(files.length > 50, `${root}: ${files.length} modules found`);
    const cycles = importCycles(importGraph(files, (f) => readFileSync(f, 'utf8')));
    assert.deepEqual(
      cycles.map((c) => c.map((f) => relative(join(REPO, root), f))),
      [],
    );
  });
}

test('every relative import inside each tree resolves to a module the graph knows', () => {
  // Otherwise an edge (a './dir' specifier, a missing '.js') would be missed and a cycle hidden.
  const unresolved: string[] = [];
  for (const root of ['daemon/src', 'sdk/src']) {
    const dir = join(REPO, root);
    const files = sources(dir);
    const known = new Set(files);
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
        const p = resolve(dirname(f), m[1] as string).replace(/\.js$/, '.ts');
        if (!relative(dir, p).startsWith('..') && !known.has(p))
          unresolved.push(`${relative(REPO, f)}: ${m[1]}`);
      }
    }
  }
  assert.deepEqual(unresolved, []);
});
