// Tests that docs/control-protocol.md lists every message type and the exact status table.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CTRL_TYPES } from './schema.js';
import { WIRE_STATUS } from './status.js';

// Tests run from sdk/dist/proto/ctrl; docs/ is at the repository root.
const DOC = readFileSync(new URL('../../../../docs/control-protocol.md', import.meta.url), 'utf8');

describe('docs/control-protocol.md', () => {
  it('has a section for every message type and no other', () => {
    const sections = [...DOC.matchAll(/^#### (\S+)\s*$/gm)].map((m) => m[1]);
    assert.deepEqual([...sections].sort(), [...CTRL_TYPES].sort());
  });

  it('has a status table equal to WIRE_STATUS', () => {
    const rows = [...DOC.matchAll(/^\|\s*(-\d+)\s*\|\s*`(\w+)`\s*\|/gm)].map((m) => [m[2], Number(m[1])]);
    assert.deepEqual(Object.fromEntries(rows), WIRE_STATUS);
    assert.equal(rows.length, Object.keys(WIRE_STATUS).length, 'no code listed twice');
  });
});
