/**
 * @ferry/testcontainers as it is published: `npm pack` holds the built module, its declarations
 * and README and no tests, and the tarball installs into an empty project (its dependency from the
 * npm cache that `npm ci` filled) and loads from there. No container engine needed.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/images.js';

const PKG = join(REPO_ROOT, 'testcontainers');

test('@ferry/testcontainers packs its build, installs from the tarball and loads', {
  timeout: 240_000,
}, () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tc-pack-'));
  try {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dir], {
      cwd: PKG,
      encoding: 'utf8',
    });
    const [packed] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    assert.ok(packed);
    const files = packed.files.map((f) => f.path);
    for (const f of ['package.json', 'README.md', 'dist/index.js', 'dist/index.d.ts'])
      assert.ok(files.includes(f), f);
    assert.deepEqual(
      files.filter((f) => /\.test\.|tsbuildinfo|^src\//.test(f)),
      [],
    );

    const project = join(dir, 'user-project');
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(
      join(project, 'package.json'),
      '{ "name": "user-project", "private": true, "type": "module" }\n',
    );
    execFileSync(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        join(dir, packed.filename),
      ],
      { cwd: project, stdio: 'pipe' },
    );
    const loaded = execFileSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('@ferry/testcontainers'); const f = new m.FerrydContainer('x/ferryd:1').withNamespace('web'); " +
          'console.log(JSON.stringify([Object.keys(m).sort(), typeof f.start, m.SOCKET_PATH]))',
      ],
      { cwd: project, encoding: 'utf8' },
    );
    assert.deepEqual(JSON.parse(loaded), [
      [
        'ABSTRACT_SOCKET',
        'CONFIG_PATH',
        'FerrydContainer',
        'SOCKET_DIR',
        'SOCKET_PATH',
        'StartedFerrydContainer',
        'TOKEN_DIR',
        'defaultFerrydImage',
      ],
      'function',
      '/run/ferry/ferryd.sock',
    ]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
