/**
 * @ferry/sdk and @ferry/daemon as they are published: `npm pack` holds what a user needs (code,
 * declarations, the `ferry` command, READMEs) and no tests; both tarballs install into an empty
 * project outside the workspace (their dependencies from the npm cache that `npm ci` filled, no
 * registry), type-check from there, and the echo example runs there through the installed ferryd.
 * No container engine needed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from './support/images.js';

interface Packed {
  filename: string;
  files: { path: string }[];
}

function pack(
  pkg: string,
  dest: string,
): { file: string; files: string[]; manifest: Record<string, unknown> } {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], {
    cwd: join(REPO_ROOT, pkg),
    encoding: 'utf8',
  });
  const [p] = JSON.parse(out) as Packed[];
  assert.ok(p, pkg);
  const manifest = JSON.parse(readFileSync(join(REPO_ROOT, pkg, 'package.json'), 'utf8')) as Record<
    string,
    unknown
  >;
  return { file: join(dest, p.filename), files: p.files.map((f) => f.path), manifest };
}

/** Every file package.json points at (main, types, bin, exports) is in the tarball. */
function entryFiles(manifest: Record<string, unknown>): string[] {
  const out: string[] = [];
  const add = (v: unknown) => {
    if (typeof v === 'string') out.push(v.replace(/^\.\//, ''));
    else if (v && typeof v === 'object') for (const x of Object.values(v)) add(x);
  };
  add(manifest['main']);
  add(manifest['types']);
  add(manifest['bin']);
  add(manifest['exports']);
  return out;
}

type LockEntry = Record<string, unknown> & {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
};

/**
 * A lockfile for the user project: the two tarballs, and the workspace's lock entries of every
 * package they need at run time (those of other platforms too: npm skips them by os and cpu).
 */
function projectLock(
  sdk: ReturnType<typeof pack>,
  daemon: ReturnType<typeof pack>,
  deps: Record<string, string>,
): Record<string, unknown> {
  const lock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockEntry>;
  };
  const out: Record<string, LockEntry> = { '': { name: 'user-project', dependencies: deps } };
  const visit = (name: string, optionalVersion?: string) => {
    const key = `node_modules/${name}`;
    const entry = lock.packages[key];
    if (out[key] || entry?.['link']) return;
    if (!entry) {
      // An optional package of another platform that the workspace's lock left out (npm did not
      // record msgpackr-extract's): say which platform it is for, so that npm skips it here too.
      const m = /-(darwin|linux|win32|freebsd|android|openbsd)-([a-z0-9]+)$/.exec(name);
      if (optionalVersion && m && !(m[1] === process.platform && m[2] === process.arch)) {
        out[key] = { version: optionalVersion, optional: true, os: [m[1]], cpu: [m[2]] };
      }
      return;
    }
    out[key] = entry;
    for (const d of Object.keys(entry.dependencies ?? {})) visit(d);
    for (const [d, v] of Object.entries(entry.optionalDependencies ?? {})) visit(d, v);
  };
  for (const [p, ws] of [
    [sdk, 'sdk'],
    [daemon, 'daemon'],
  ] as const) {
    const manifest = lock.packages[ws] ?? {};
    const name = String(p.manifest['name']);
    out[`node_modules/${name}`] = {
      version: String(p.manifest['version']),
      resolved: deps[name] ?? '',
      integrity: `sha512-${createHash('sha512').update(readFileSync(p.file)).digest('base64')}`,
      ...(manifest.dependencies ? { dependencies: manifest.dependencies } : {}),
      ...(p.manifest['bin'] ? { bin: p.manifest['bin'] } : {}),
    };
    for (const d of Object.keys(manifest.dependencies ?? {})) if (!d.startsWith('@ferry/')) visit(d);
  }
  return { name: 'user-project', lockfileVersion: 3, requires: true, packages: out };
}

/** Lines of a child's stdout until `match` shows up (bounded in time). */
function waitForLine(child: ChildProcess, match: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${match} in ${timeoutMs} ms; got: ${out}`)),
      timeoutMs,
    );
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = match.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before ${match}; got: ${out}`));
    });
  });
}

test('@ferry/sdk and @ferry/daemon pack, install outside the workspace, type-check and run the echo example', {
  timeout: 300_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pack-'));
  const children: ChildProcess[] = [];
  try {
    const sdk = pack('sdk', dir);
    const daemon = pack('daemon', dir);
    for (const p of [sdk, daemon]) {
      assert.deepEqual(
        p.files.filter((f) =>
          /\.test\.|tsbuildinfo|\.map$|^src\/|\/testing\/|\/integration\/|\/interop\//.test(f),
        ),
        [],
      );
      for (const f of [...entryFiles(p.manifest), 'README.md', 'package.json'])
        assert.ok(p.files.includes(f), f);
    }
    // Declarations beside every entry point (types for `@ferry/sdk/messages`, `@ferry/daemon/testing`
    // and the others).
    for (const p of [sdk, daemon]) {
      for (const f of Object.values(p.manifest['exports'] as Record<string, string>)) {
        if (f.endsWith('.js'))
          assert.ok(p.files.includes(f.replace(/^\.\//, '').replace(/\.js$/, '.d.ts')), f);
      }
    }
    assert.ok(daemon.files.includes('bin/ferry.js') && daemon.files.includes('dist/index.d.ts'));

    const project = join(dir, 'user-project');
    mkdirSync(project);
    const deps = {
      '@ferry/sdk': `file:../${basename(sdk.file)}`,
      '@ferry/daemon': `file:../${basename(daemon.file)}`,
    };
    writeFileSync(
      join(project, 'package.json'),
      `${JSON.stringify({ name: 'user-project', private: true, type: 'module', dependencies: deps }, null, 2)}\n`,
    );
    // The versions the workspace locked: `npm ci --offline` then takes every tarball from the npm
    // cache that the workspace's `npm ci` filled (a plain install would ask the registry which
    // versions exist).
    writeFileSync(
      join(project, 'package-lock.json'),
      JSON.stringify(projectLock(sdk, daemon, deps), null, 2),
    );
    execFileSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
      cwd: project,
      stdio: 'pipe',
    });

    // The public entry points type-check from the installed packages.
    writeFileSync(
      join(project, 'consumer.ts'),
      [
        "import { connect, createServer, type Socket } from '@ferry/sdk';",
        "import { connectMessages } from '@ferry/sdk/messages';",
        "import { Daemon, type DaemonConfig, defaultConfig, loadConfig } from '@ferry/daemon';",
        "import { type DaemonHandle, makeTestCerts, startDaemon } from '@ferry/daemon/testing';",
        "const s: Socket = connect('tcp://127.0.0.1:7000');",
        'const server = createServer();',
        'const c: DaemonConfig = defaultConfig({});',
        'const started: Promise<DaemonHandle> = startDaemon([], { env: {} });',
        'export const used = [s, server, c.maxApps + 1, connectMessages, Daemon, loadConfig, started, makeTestCerts];',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = spawnSync(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', project],
      { cwd: project, encoding: 'utf8' },
    );
    assert.equal(tsc.status, 0, `tsc: ${tsc.stdout}${tsc.stderr}`);

    // The echo example, as the repository ships it (it imports only `@ferry/sdk`).
    for (const f of ['server.js', 'client.js']) {
      copyFileSync(join(REPO_ROOT, 'examples', 'dist', 'echo', f), join(project, f));
    }
    const socket = join(dir, 'ferryd.sock');
    const env = { ...process.env, FERRY_SOCKET: socket };
    const ferryd = spawn(process.execPath, [join(project, 'node_modules', '.bin', 'ferry'), 'daemon'], {
      cwd: project,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(ferryd);
    await waitForLine(ferryd, /ferryd: listening on/, 60_000);
    const server = spawn(process.execPath, ['server.js', 'tcp://127.0.0.1:0'], {
      cwd: project,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(server);
    const listening = await waitForLine(server, /listening on tcp:\/\/[\d.]+:\d+/, 60_000);
    const uri = listening.replace('listening on ', '');
    const out = execFileSync(process.execPath, ['client.js', uri, 'packed', 'and', 'installed'], {
      cwd: project,
      env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.match(out, /over 'ct'/);
    assert.match(out, /echoed: packed and installed/);

    // @ferry/daemon/testing from the installed package: a ferryd of its own for a test suite, the
    // echo example through it, then nothing left behind.
    writeFileSync(
      join(project, 'harness.mjs'),
      [
        "import { execFileSync } from 'node:child_process';",
        "import { existsSync } from 'node:fs';",
        "import { startDaemon } from '@ferry/daemon/testing';",
        'const d = await startDaemon();',
        'const env = { ...process.env, FERRY_SOCKET: d.socket };',
        "const { spawn } = await import('node:child_process');",
        "const server = spawn(process.execPath, ['server.js', 'tcp://127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'inherit'] });",
        'const uri = await new Promise((resolve) => {',
        "  let text = '';",
        "  server.stdout.on('data', (b) => {",
        '    text += b;',
        '    const m = /listening on (\\S+)/.exec(text);',
        '    if (m) resolve(m[1]);',
        '  });',
        '});',
        "const out = execFileSync(process.execPath, ['client.js', uri, 'through', 'the', 'harness'], { env, encoding: 'utf8' });",
        "const apps = (await d.show('apps')).length;",
        'server.kill();',
        'await d.stop();',
        'console.log(JSON.stringify({ out, apps, left: existsSync(d.socket) }));',
        '',
      ].join('\n'),
    );
    const harness = JSON.parse(
      execFileSync(process.execPath, ['harness.mjs'], { cwd: project, encoding: 'utf8', timeout: 60_000 }),
    ) as { out: string; apps: number; left: boolean };
    assert.match(harness.out, /echoed: through the harness/);
    assert.ok(harness.apps >= 1, 'ferry show apps through the handle');
    assert.equal(harness.left, false, 'stop() removes the socket directory');
  } finally {
    for (const c of children) c.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
});
