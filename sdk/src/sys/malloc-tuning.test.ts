import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { mallocTuningVeto } from './malloc-tuning.js';

const MODULE = fileURLToPath(new URL('./malloc-tuning.js', import.meta.url));

test('mallocTuningVeto: the process keeps its own malloc settings and the opt-out', () => {
  assert.equal(mallocTuningVeto({}), null);
  assert.equal(mallocTuningVeto({ FERRY_MALLOC_TUNING: 'on' }), null);
  for (const off of ['off', 'OFF', '0', 'false', ' no ']) {
    assert.equal(mallocTuningVeto({ FERRY_MALLOC_TUNING: off }), 'FERRY_MALLOC_TUNING=off', off);
  }
  assert.equal(
    mallocTuningVeto({ GLIBC_TUNABLES: 'glibc.rtld.nns=2:glibc.malloc.trim_threshold=1' }),
    'GLIBC_TUNABLES sets malloc',
  );
  assert.equal(mallocTuningVeto({ GLIBC_TUNABLES: 'glibc.rtld.nns=2' }), null);
  assert.equal(mallocTuningVeto({ MALLOC_ARENA_MAX: '2' }), 'MALLOC_ARENA_MAX is set');
  assert.equal(mallocTuningVeto({ MALLOC_TRIM_THRESHOLD_: '0' }), 'MALLOC_TRIM_THRESHOLD_ is set');
  // glibc's other tuning variables (MALLOC_MMAP_MAX_=0 turns mmap off: a threshold would not matter).
  assert.equal(mallocTuningVeto({ MALLOC_MMAP_MAX_: '0' }), 'MALLOC_MMAP_MAX_ is set');
  assert.equal(mallocTuningVeto({ MALLOC_ARENA_TEST: '1' }), 'MALLOC_ARENA_TEST is set');
  // Debugging variables are no tuning of the process's own.
  assert.equal(mallocTuningVeto({ MALLOC_PERTURB_: '165', MALLOC_CHECK_: '3' }), null);
});

/** Runs the tuning in a fresh process with `env` and returns what it reports (twice: once only). */
function tuneIn(env: NodeJS.ProcessEnv): { first: string; second: string; reason: string } {
  const code = `import(${JSON.stringify(MODULE)}).then((m) => {
    const first = m.tuneMallocForLargeReads();
    const second = m.tuneMallocForLargeReads();
    console.log(JSON.stringify({ first, second, reason: m.mallocTuning().reason }));
  });`;
  const r = spawnSync(process.execPath, ['-e', code], { env, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test('tuneMallocForLargeReads: applied once by glibc, skipped when the process opted out', () => {
  const base = { PATH: process.env['PATH'] ?? '' };
  // mallopt answers 1 only when glibc accepted both thresholds.
  assert.deepEqual(tuneIn(base), { first: 'applied', second: 'applied', reason: '' });
  assert.deepEqual(tuneIn({ ...base, FERRY_MALLOC_TUNING: 'off' }), {
    first: 'skipped',
    second: 'skipped',
    reason: 'FERRY_MALLOC_TUNING=off',
  });
  assert.deepEqual(tuneIn({ ...base, GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=262144' }), {
    first: 'skipped',
    second: 'skipped',
    reason: 'GLIBC_TUNABLES sets malloc',
  });
});
