import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configDocument, type NamespaceSpec, namespaceSpec } from './config.js';

test('no configuration and no namespace: no file (ferryd runs with its built-in one)', () => {
  assert.equal(configDocument({}, new Map()), null);
});

test('withNamespace: a random token by default, the given one, or none; read from a token file', () => {
  const a = namespaceSpec('web', {});
  const b = namespaceSpec('web', {});
  assert.match(String(a.token), /^[0-9a-f]{48}$/);
  assert.notEqual(a.token, b.token);
  assert.equal(namespaceSpec('web', { token: 'given-token-1' }).token, 'given-token-1');
  assert.equal(namespaceSpec('open', { token: null }).token, null);
  const namespaces = new Map<string, NamespaceSpec>([
    ['web', namespaceSpec('web', { token: 'given-token-1', uids: [1001] })],
    ['open', namespaceSpec('open', { token: null, gids: [1000] })],
  ]);
  const doc = JSON.parse(String(configDocument({ maxApps: 8, namespaces: { default: {} } }, namespaces)));
  assert.deepEqual(doc, {
    maxApps: 8,
    namespaces: {
      default: {},
      web: { tokenFile: '/etc/ferry/tokens/web', uids: [1001] },
      open: { gids: [1000] },
    },
  });
  assert.ok(!JSON.stringify(doc).includes('given-token-1'), 'the token is not in the configuration');
});

test('bad namespace names and tokens are refused before any container starts', () => {
  assert.throws(() => namespaceSpec('no/slash', {}), /letters, digits/);
  assert.throws(() => namespaceSpec('x'.repeat(65), {}), /at most 64/);
  assert.throws(() => namespaceSpec('web', { token: 'short' }), /at least 8 characters/);
  assert.throws(() => namespaceSpec('web', { token: 'long-enough\n' }), /no line break/);
});
