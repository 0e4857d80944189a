import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { configFromEnv } from './config.js';
import { parseListenArgs } from './install.js';
import { InterceptRules, parseRules } from './rules.js';

test('rules: hosts, ports, wildcards and loopback names', () => {
  const r = new InterceptRules(parseRules('127.0.0.1:8080, localhost:*\n*:5432 [::1]:9000 db.internal:6379'));
  assert.equal(r.matchConnect('127.0.0.1', 8080), true);
  assert.equal(r.matchConnect('localhost', 8080), true);
  assert.equal(r.matchConnect('::1', 1234), true, 'localhost:* covers ::1 (one place, as for ferryd)');
  assert.equal(r.matchConnect(undefined, 3000), true, "net's default host is localhost");
  assert.equal(r.matchConnect('10.1.2.3', 8080), false);
  assert.equal(r.matchConnect('10.1.2.3', 5432), true);
  assert.equal(r.matchConnect('DB.Internal', 6379), true);
  assert.equal(r.matchConnect('db.internal', 6380), false);
  // Listens: a wildcard listen serves every address, so any rule with its port matches it.
  assert.equal(r.matchListen(undefined, 6379), true);
  assert.equal(r.matchListen('0.0.0.0', 8080), true);
  assert.equal(r.matchListen('::', 9000), true);
  assert.equal(r.matchListen('10.1.2.3', 8080), false);
  assert.equal(r.matchListen('127.0.0.1', 0), true, 'port 0 matches a rule with any port');
  const exact = new InterceptRules(parseRules('127.0.0.1:8080'));
  assert.equal(exact.matchListen('127.0.0.1', 0), false, 'port 0 cannot match a fixed port');
  assert.equal(exact.matchConnect('127.0.0.1', 8081), false);
  assert.equal(new InterceptRules(parseRules('')).empty, true);
});

test('rules: bad entries fail loudly with ERR_INVALID_ARG_VALUE', () => {
  for (const bad of ['8080', '127.0.0.1', 'host:0', 'host:65536', 'host:abc', '::1:80', 'a:b:c', ':80']) {
    assert.throws(() => parseRules(bad), { code: 'ERR_INVALID_ARG_VALUE' }, bad);
  }
});

test('config: environment, a JSON file, and the fallback setting', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-register-'));
  try {
    const file = join(dir, 'intercept.json');
    writeFileSync(file, JSON.stringify({ intercept: ['127.0.0.1:7000'], fallback: 'fail' }));
    const c = configFromEnv({ FERRY_INTERCEPT: '*:8080', FERRY_INTERCEPT_FILE: file });
    assert.equal(c.fallback, 'fail');
    assert.equal(c.rules.matchConnect('127.0.0.1', 7000), true);
    assert.equal(c.rules.matchConnect('10.0.0.1', 8080), true);
    assert.equal(
      configFromEnv({ FERRY_INTERCEPT_FILE: file, FERRY_INTERCEPT_FALLBACK: 'kernel' }).fallback,
      'kernel',
    );
    assert.equal(configFromEnv({}).fallback, 'kernel');
    assert.throws(() => configFromEnv({ FERRY_INTERCEPT_FALLBACK: 'maybe' }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
    writeFileSync(file, '{ not json');
    assert.throws(() => configFromEnv({ FERRY_INTERCEPT_FILE: file }), { code: 'ERR_INVALID_ARG_VALUE' });
    writeFileSync(file, JSON.stringify({ intercept: [1, 2] }));
    assert.throws(() => configFromEnv({ FERRY_INTERCEPT_FILE: file }), { code: 'ERR_INVALID_ARG_VALUE' });
    assert.throws(() => configFromEnv({ FERRY_INTERCEPT_FILE: join(dir, 'missing.json') }), {
      code: 'ERR_INVALID_ARG_VALUE',
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("listen's argument forms", () => {
  const cb = () => {};
  assert.deepEqual(parseListenArgs([8080, '127.0.0.1', 511, cb]), {
    host: '127.0.0.1',
    port: 8080,
    cb,
    rest: [8080, '127.0.0.1', 511],
  });
  assert.deepEqual(parseListenArgs([{ port: 3000, host: '0.0.0.0' }]), {
    host: '0.0.0.0',
    port: 3000,
    cb: undefined,
    rest: [{ port: 3000, host: '0.0.0.0' }],
  });
  assert.equal(parseListenArgs([cb])?.port, 0);
  assert.equal(parseListenArgs(['3000'])?.port, 3000);
  assert.equal(parseListenArgs(['/tmp/app.sock']), null, 'a unix socket path');
  assert.equal(parseListenArgs([{ path: '/tmp/app.sock' }]), null);
  assert.equal(parseListenArgs([{ fd: 3 }]), null);
  assert.equal(parseListenArgs([{ port: 70000 }]), null, 'node refuses it itself');
});
