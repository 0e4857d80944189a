import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startDaemon } from '../testing/harness.js';
import { formatShow, formatTable } from './show-client.js';

const FERRY = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

test('formatTable aligns columns under upper-case headers and renders lists and nulls', () => {
  const text = formatTable([
    { id: 1, uri: 'tcp://127.0.0.1:80', peer: null, apps: [1, 2] },
    { id: 22, uri: 'tcp://[::1]:8080', peer: 7, apps: [3] },
  ]);
  assert.equal(
    text,
    [
      'ID  URI                 PEER  APPS',
      '1   tcp://127.0.0.1:80  -     1,2',
      '22  tcp://[::1]:8080    7     3',
      '',
    ].join('\n'),
  );
  assert.equal(formatTable([]), '(none)\n');
  assert.equal(formatShow({ apps: 0 }), '{\n  "apps": 0\n}\n');
});

test('`ferry show` asks a running ferryd and prints JSON or text; a bad topic is refused', async () => {
  const d = await startDaemon();
  try {
    const run = promisify(execFile);
    const json = await run(process.execPath, [FERRY, 'show', 'stats', '--json', '--socket', d.socket]);
    const stats = JSON.parse(json.stdout) as { apps: number; sessions: number };
    assert.equal(stats.apps, 0);
    assert.equal(stats.sessions, 0);
    const text = await run(process.execPath, [FERRY, 'show', 'listeners', '--socket', d.socket]);
    assert.equal(text.stdout, '(none)\n');
    await assert.rejects(
      run(process.execPath, [FERRY, 'show', 'everything', '--socket', d.socket]),
      /one of/,
    );
    await assert.rejects(
      run(process.execPath, [FERRY, 'show', 'stats', '--socket', `${d.socket}.nope`]),
      /cannot reach/,
    );
  } finally {
    await d.stop();
  }
});

test('`ferry health` exits 0 while ferryd answers and 1 with the reason when it does not', async () => {
  const d = await startDaemon();
  const run = promisify(execFile);
  try {
    const ok = await run(process.execPath, [FERRY, 'health', '--socket', d.socket]);
    assert.match(ok.stdout, /^ok: ferryd at .*, 0 apps, 0 sessions\n$/);
  } finally {
    await d.stop();
  }
  await assert.rejects(
    run(process.execPath, [FERRY, 'health', '--socket', d.socket, '--timeout-ms', '500']),
    (err) => {
      const e = err as { code?: number; stderr?: string };
      assert.equal(e.code, 1);
      assert.match(e.stderr ?? '', /^ferry health: cannot reach ferryd/);
      return true;
    },
  );
});
