// Runs every compiled test file with node's test runner. Test files are found under each
// workspace's dist/ (compiled from src/**/*.test.ts); e2e suites decide for themselves whether
// a container engine is there. Extra arguments are passed to `node --test`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const roots = ['sdk/dist', 'daemon/dist', 'examples/dist', 'testcontainers/dist', 'e2e/dist'];
const files = [];
function walk(dir) {
  let entries;
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.test.js')) files.push(p);
  }
}
for (const r of roots) walk(r);
// tsc -b never deletes what it emitted for a source that was removed: a stale compiled test would
// run against the current build and fail (or pass for code that is gone). Each workspace compiles
// src/ into dist/, so a test whose .test.ts is gone is skipped, and said.
for (let i = files.length - 1; i >= 0; i--) {
  const f = files[i];
  const src = f.replace(/([\\/])dist([\\/])/, '$1src$2').replace(/\.test\.js$/, '.test.ts');
  if (!existsSync(src)) {
    console.error(`run-tests: skipping ${f}: its source ${src} is gone (a stale build output; delete it)`);
    files.splice(i, 1);
  }
}
files.sort();
const filter = process.env.FERRY_TEST_FILTER;
const chosen = filter ? files.filter((f) => f.includes(filter)) : files;
if (chosen.length === 0) {
  console.error('run-tests: no test files found (did the build run?)');
  process.exit(1);
}
// No single test may hang the run (CI stops at 90 minutes); a test that needs more is broken.
const args = ['--test', '--test-concurrency=1', '--test-timeout=300000', ...process.argv.slice(2), ...chosen];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
