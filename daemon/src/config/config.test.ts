// The configuration file: validation messages, token sources, reload rules, and the docs.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type DaemonConfig, defaultConfig, fifoSizeFor, validateConfig } from '../config.js';
import { describeConfig } from './describe.js';
import { configJsonSchema, OPTIONS_HEADING, renderOptionsDoc } from './docs.js';
import { ConfigError, loadConfig } from './load.js';
import { OPTION_NAMES, OPTIONS } from './options.js';
import { applyReload } from './reload.js';
import { hashToken, tokenFingerprint, tokenMatches } from './tokens.js';
import { validateFile } from './validate.js';

const dir = mkdtempSync(join(tmpdir(), 'ferry-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

function file(doc: unknown): string {
  const f = join(dir, `c${++n}.json`);
  writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
  return f;
}

function errorsOf(doc: unknown, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    loadConfig({ file: file(doc), env });
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.errors;
  }
  assert.fail('expected the configuration to be refused');
}

describe('configuration file', () => {
  it('runs with no file: the embedded defaults are valid', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.socket, '/run/ferry/ferryd.sock');
    assert.equal(c.socketMode, 0o660);
    assert.deepEqual(c.rules, []);
    validateConfig(c);
    assert.deepEqual(Object.keys(c).sort(), Object.keys(defaultConfig({})).sort());
  });

  it('has an option entry for every configuration key (new keys must be documented)', () => {
    const keys = Object.keys(defaultConfig({})).sort();
    assert.deepEqual(keys, [...OPTION_NAMES].sort());
  });

  it('reads FERRY_CONFIG, and FERRY_SOCKET and flags override the file', () => {
    const f = file({ socket: '/tmp/from-file.sock', maxApps: 7 });
    assert.equal(loadConfig({ env: { FERRY_CONFIG: f } }).maxApps, 7);
    assert.equal(loadConfig({ env: { FERRY_CONFIG: f } }).socket, '/tmp/from-file.sock');
    assert.equal(loadConfig({ env: { FERRY_CONFIG: f, FERRY_SOCKET: '@env' } }).socket, '@env');
    const c = loadConfig({ env: { FERRY_CONFIG: f, FERRY_SOCKET: '@env' }, overrides: { socket: '@flag' } });
    assert.equal(c.socket, '@flag');
  });

  it('names the path, the expectation and the value of every error', () => {
    const errors = errorsOf({
      maxApps: 0,
      queueCapacity: 100,
      socketMode: '0666',
      defaultAction: 'maybe',
      rules: [
        { action: 'permit', port: [9, 1], address: '10.0.0.0/33', service: 'tcp:/x', via: 'up', extra: 1 },
      ],
      namespaces: {
        'bad name': {},
        a: { token: 'x', tokenEnv: 'Y' },
        u: { uids: [] },
        g: { gids: ['wheel'] },
      },
      bogus: true,
    });
    const expect = [
      '$.maxApps: expected an integer in 1..1000000, got 0',
      '$.queueCapacity: expected an integer in 16..65536, a power of two, got 100',
      '$.socketMode: expected no permission for others (the last digit 0), got "0666"',
      '$.defaultAction: expected one of "allow", "deny", got "maybe"',
      '$.rules[0].extra: unknown key',
      '$.rules[0].action: expected "allow" or "deny", got "permit"',
      '$.rules[0].port: expected a port 0..65535 or a range [low, high], got [9,1]',
      '$.rules[0].address: expected an IP address or CIDR block',
      '$.rules[0].service: expected a URI pattern',
      '$.rules[0].via: expected "local" or "remote", got "up"',
      '$.namespaces.bad name: expected a namespace name',
      '$.namespaces.a: expected at most one of token, tokenEnv, tokenFile',
      '$.namespaces.u.uids: expected a non-empty array of numeric user ids',
      '$.namespaces.g.gids: expected a non-empty array of numeric group ids',
      '$.bogus: unknown option',
    ];
    for (const e of expect)
      assert.ok(
        errors.some((x) => x.startsWith(e)),
        `missing '${e}' in:\n${errors.join('\n')}`,
      );
    assert.equal(errors.length, expect.length, errors.join('\n'));
  });

  it('reports JSON syntax errors and relations between options', () => {
    assert.match(errorsOf('{"maxApps": }')[0] ?? '', /^not valid JSON/);
    assert.match(errorsOf([1])[0] ?? '', /^\$: expected an object/);
    const rel = errorsOf({ minFifoSizeBytes: 1 << 22, defaultFifoSizeBytes: 1 << 20 });
    assert.match(
      rel[0] ?? '',
      /^\$\.defaultFifoSizeBytes: expected minFifoSizeBytes <= defaultFifoSizeBytes/,
    );
    const seg = errorsOf({ segmentSizeBytes: 4 << 20, maxFifoSizeBytes: 4 << 20 });
    assert.match(seg[0] ?? '', /^\$\.segmentSizeBytes: expected room for two of the largest fifos/);
  });

  it('takes tokens from the file, the environment or a token file, and keeps only hashes', () => {
    const tokenFile = join(dir, 'b.token');
    writeFileSync(tokenFile, 'token-from-file\n');
    const c = loadConfig({
      file: file({
        namespaces: {
          a: { token: 'token-in-config' },
          b: { tokenFile: 'b.token' },
          c: { tokenEnv: 'T_C' },
          d: {},
        },
      }),
      env: { T_C: 'token-from-env' },
    });
    const ns = c.namespaces;
    assert.ok(ns['a']?.tokenHash && tokenMatches(ns['a'].tokenHash, 'token-in-config'));
    assert.ok(ns['b']?.tokenHash && tokenMatches(ns['b'].tokenHash, 'token-from-file'));
    assert.ok(ns['c']?.tokenHash && tokenMatches(ns['c'].tokenHash, 'token-from-env'));
    assert.ok(ns['a'].tokenHash && !tokenMatches(ns['a'].tokenHash, 'token-in-confiG'));
    assert.equal(ns['b'].tokenSource, `tokenFile:${tokenFile}`);
    assert.equal(ns['d']?.tokenHash, null);
    const shown = JSON.stringify(describeConfig(c));
    for (const t of ['token-in-config', 'token-from-file', 'token-from-env']) assert.ok(!shown.includes(t));
    assert.ok(shown.includes(`sha256:${tokenFingerprint(hashToken('token-in-config'))}`));
  });

  it('never echoes a token in an error', () => {
    const errors = errorsOf({ namespaces: { a: { token: 'short' }, b: { tokenFile: 'missing.token' } } }, {});
    assert.equal(errors.length, 2);
    assert.ok(!errors.join('\n').includes('short'));
    assert.match(errors[1] ?? '', /missing\.token: ENOENT/);
  });

  it('clamps fifo sizes to min..max, rounding up to a power of two', () => {
    const c = { ...defaultConfig({}), minFifoSizeBytes: 16384, maxFifoSizeBytes: 1 << 20 };
    assert.equal(fifoSizeFor(c, 1), 16384);
    assert.equal(fifoSizeFor(c, 20000), 32768);
    assert.equal(fifoSizeFor(c, 1 << 30), 1 << 20);
    assert.equal(fifoSizeFor(c, 0), c.defaultFifoSizeBytes);
  });
});

describe('reload', () => {
  const load = (doc: unknown): DaemonConfig => loadConfig({ file: file(doc), env: {} });

  it('applies live options in place and reports the ones that take a restart', () => {
    const running = load({ maxApps: 5, namespaces: { a: { token: 'first-token' } } });
    const same = running;
    const out = applyReload(
      running,
      load({
        maxApps: 6,
        segmentSizeBytes: 128 << 20,
        socketMode: '0600',
        namespaces: { a: { token: 'second-token' } },
      }),
    );
    assert.deepEqual(out.applied.sort(), ['maxApps', 'namespaces']);
    assert.deepEqual(out.needsRestart.sort(), ['segmentSizeBytes', 'socketMode']);
    assert.equal(same.maxApps, 6);
    assert.equal(same.segmentSizeBytes, 64 << 20);
    assert.ok(
      same.namespaces['a']?.tokenHash && tokenMatches(same.namespaces['a'].tokenHash, 'second-token'),
    );
  });

  it('refuses the whole reload when the merged result is inconsistent', () => {
    const running = load({ segmentSizeBytes: 8 << 20, maxFifoSizeBytes: 1 << 20, maxApps: 3 });
    // 8 MiB segments cannot hold two 4 MiB fifos: segmentSizeBytes takes a restart, so refused.
    const next = load({ segmentSizeBytes: 16 << 20, maxFifoSizeBytes: 4 << 20, maxApps: 4 });
    assert.throws(() => applyReload(running, next, validateConfig), /segmentSizeBytes/);
    assert.equal(running.maxApps, 3);
    assert.equal(running.maxFifoSizeBytes, 1 << 20);
  });
});

describe('docs generated from the option table', () => {
  // Tests run from daemon/dist/config; docs/ is at the repository root.
  const doc = readFileSync(new URL('../../../docs/configuration.md', import.meta.url), 'utf8');
  const schemaFile = readFileSync(new URL('../../../docs/ferryd.schema.json', import.meta.url), 'utf8');
  const sections = new Map(
    [...doc.matchAll(/^### `(\w+)`\n\nDefault: (.+?) · (live|restart)$/gm)].map((m) => [
      m[1] as string,
      { def: m[2] as string, when: m[3] as string },
    ]),
  );

  it('docs/configuration.md has the option reference the table generates (node scripts/config-docs.mjs)', () => {
    const at = doc.indexOf(OPTIONS_HEADING);
    assert.ok(at > 0);
    assert.equal(doc.slice(at), renderOptionsDoc());
  });

  it('documents every option, with its default and whether a reload applies it', () => {
    const all: Record<string, { default: unknown; live: boolean }> = OPTIONS;
    assert.deepEqual([...sections.keys()].sort(), Object.keys(all).sort());
    for (const [key, info] of Object.entries(all)) {
      const s = sections.get(key);
      assert.ok(s, key);
      assert.equal(s.when, info.live ? 'live' : 'restart', `${key}: live or restart`);
      if (key === 'socket') continue;
      const spelled = key === 'socketMode' ? `0${(info.default as number).toString(8)}` : info.default;
      assert.equal(s.def, `\`${JSON.stringify(spelled)}\``, `${key}: default`);
    }
  });

  it('docs/ferryd.schema.json is the schema the table generates; the built-in defaults pass it', () => {
    // Compared as data: the file is formatted by biome like every JSON file here.
    assert.deepEqual(JSON.parse(schemaFile), configJsonSchema());
    const schema = JSON.parse(schemaFile) as {
      properties: Record<string, { default?: unknown }>;
      additionalProperties: boolean;
    };
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(Object.keys(schema.properties).sort(), ['$schema', 'comment', ...OPTION_NAMES].sort());
    // The defaults as the schema states them are a valid file.
    const defaults = Object.fromEntries(
      OPTION_NAMES.filter((k) => k !== 'socket').map((k) => [k, schema.properties[k]?.default]),
    );
    const { errors } = validateFile(defaults, { env: {}, baseDir: dir });
    assert.deepEqual(errors, []);
  });
});
