// Tests that docs/errors.md documents exactly the codes of the error table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_MESSAGES, FerryError, ferryError, isErrorCode } from './errors.js';

// Tests run from sdk/dist; docs/ is at the repository root.
const DOC = new URL('../../docs/errors.md', import.meta.url);

function documentedCodes(): string[] {
  return [...readFileSync(DOC, 'utf8').matchAll(/^## (\S+)\s*$/gm)].map((m) => m[1] as string);
}

describe('docs/errors.md', () => {
  it('has a section for every code in ERROR_MESSAGES', () => {
    const documented = new Set(documentedCodes());
    const missing = Object.keys(ERROR_MESSAGES).filter((c) => !documented.has(c));
    assert.deepEqual(missing, [], `add a '## CODE' section to docs/errors.md for: ${missing.join(', ')}`);
  });

  it('documents no code that ERROR_MESSAGES lacks, and none twice', () => {
    const codes = documentedCodes();
    const unknown = codes.filter((c) => !isErrorCode(c));
    assert.deepEqual(unknown, [], `docs/errors.md documents unknown codes: ${unknown.join(', ')}`);
    assert.equal(new Set(codes).size, codes.length, 'a code is documented twice');
  });
});

describe('FerryError', () => {
  it('carries code, table message with detail, and wireStatus', () => {
    const e = ferryError('ECONNREFUSED', 'tcp://a:1', { wireStatus: -111 });
    assert.ok(e instanceof FerryError);
    assert.ok(e instanceof Error);
    assert.equal(e.code, 'ECONNREFUSED');
    assert.equal(e.message, 'Connection refused: tcp://a:1');
    assert.equal(e.wireStatus, -111);
  });
});
