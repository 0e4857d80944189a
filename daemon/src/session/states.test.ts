import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { nextState, SESSION_STATES, SESSION_TRANSITIONS, type SessionEvent } from './states.js';

const doc = readFileSync(new URL('../../../docs/session-lifecycle.md', import.meta.url), 'utf8');

test('docs/session-lifecycle.md lists exactly the transitions of the table', () => {
  const fromDoc = new Set<string>();
  for (const m of doc.matchAll(/^\|\s*([a-z-]+)\s*\|\s*([a-z-]+)\s*\|\s*([a-z-]+)\s*\|$/gm)) {
    if (m[1] !== 'state' && !m[1]?.startsWith('-')) fromDoc.add(`${m[1]} ${m[2]} ${m[3]}`);
  }
  const fromCode = new Set<string>();
  for (const s of SESSION_STATES) {
    for (const [ev, next] of Object.entries(SESSION_TRANSITIONS[s])) fromCode.add(`${s} ${ev} ${next}`);
  }
  assert.deepEqual([...fromDoc].sort(), [...fromCode].sort());
});

test('terminal states accept nothing but the reset acknowledgement', () => {
  assert.equal(nextState('closed', 'close'), undefined);
  assert.equal(nextState('reset', 'close'), 'reset');
  for (const ev of ['shutdown', 'peer-fin', 'peer-close'] as SessionEvent[]) {
    assert.equal(nextState('closed', ev), undefined);
    assert.equal(nextState('reset', ev), undefined);
  }
});

test('a half-close from both sides ends closed', () => {
  assert.equal(nextState('established', 'shutdown'), 'local-fin');
  assert.equal(nextState('local-fin', 'peer-fin'), 'closed');
  assert.equal(nextState('established', 'peer-fin'), 'remote-fin');
  assert.equal(nextState('remote-fin', 'shutdown'), 'closed');
});

test('a session starts established: every state is reachable from it, none is dead code', () => {
  const seen = new Set<string>(['established']);
  for (let grew = true; grew; ) {
    grew = false;
    for (const s of [...seen]) {
      for (const next of Object.values(SESSION_TRANSITIONS[s as keyof typeof SESSION_TRANSITIONS])) {
        if (next && !seen.has(next)) {
          seen.add(next);
          grew = true;
        }
      }
    }
  }
  assert.deepEqual([...seen].sort(), [...SESSION_STATES].sort());
});
