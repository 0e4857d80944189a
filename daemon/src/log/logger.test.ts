import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from './logger.js';

function capture() {
  const lines: string[] = [];
  return { lines, sink: { write: (s: string) => lines.push(s) } };
}

test('text format: `ferryd: <message>`, warnings and errors say so; the level filters', () => {
  const { lines, sink } = capture();
  const log = createLogger({ sink, level: 'info' });
  log.info('listening on /run/ferry/ferryd.sock');
  log.warn('app 3 "x" is not reading');
  log.error('reload refused');
  log.debug('not shown at info');
  assert.deepEqual(lines, [
    'ferryd: listening on /run/ferry/ferryd.sock\n',
    'ferryd: warning: app 3 "x" is not reading\n',
    'ferryd: error: reload refused\n',
  ]);
  log.setLevel('debug');
  log.debug('now shown');
  assert.equal(lines.at(-1), 'ferryd: debug: now shown\n');
  log.setLevel('error');
  log.warn('hidden');
  assert.equal(lines.length, 4);
});

test('json format: one JSON object per line with level, time, name and msg', () => {
  const { lines, sink } = capture();
  const log = createLogger({ sink, format: 'json', level: 'warn' });
  log.info('hidden');
  log.warn('a "quoted" message');
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(rec['level'], 40);
  assert.equal(rec['msg'], 'a "quoted" message');
  assert.equal(rec['name'], 'ferryd');
  assert.equal(typeof rec['time'], 'string');
});
