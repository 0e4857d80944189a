import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/ferry.js', import.meta.url));

function ferry(...args: string[]) {
  // No ferryd runs at this socket: a command that tried to reach one would fail, not print help.
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, FERRY_SOCKET: '/nonexistent/ferry-help-test.sock' },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('ferry <command> --help prints that command usage and exits 0', () => {
  for (const cmd of ['show', 'daemon', 'health', 'config', 'top', 'perf']) {
    for (const flag of ['--help', '-h']) {
      const r = ferry(cmd, flag);
      assert.equal(r.status, 0, `${cmd} ${flag}: ${r.stderr}`);
      assert.equal(r.stderr, '', `${cmd} ${flag}`);
      assert.match(r.stdout, cmd === 'perf' ? /ferry perf server/ : new RegExp(`^Usage: ferry ${cmd}\\b`));
    }
  }
  assert.match(ferry('show', 'apps', '--help').stdout, /^Usage: ferry show \[sessions\|apps/);
  assert.match(ferry('config', 'check', '--help').stdout, /^Usage: ferry config check/);
  assert.match(ferry('--help').stdout, /^Usage: ferry <command>/);
});

test('an unknown option is a usage error (exit 2, the command usage), not a stack trace', () => {
  const r = ferry('show', '--bogus');
  assert.equal(r.status, 2);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^ferry show: Unknown option '--bogus'/);
  assert.match(r.stderr, /Usage: ferry show/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const h = ferry('health', '--timeout-ms');
  assert.equal(h.status, 2);
  assert.match(h.stderr, /^ferry health: Option '--timeout-ms <value>' argument missing/);
  // After `--` a --help is an operand, not a request for help: health takes no operands.
  const op = ferry('health', '--', '--help');
  assert.equal(op.status, 2);
  assert.match(op.stderr, /^ferry health: Unexpected argument '--help'/);
});
