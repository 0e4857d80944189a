/** A small scale run in the default suite (npm run scale does 10,000): every session echoes intact. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runScale } from '../soak/scale-run.js';

test('2,000 concurrent cut-through sessions over 2 clients and 2 servers each echo intact, then all are freed', async () => {
  const r = await runScale({
    sessions: 2000,
    clients: 2,
    servers: 2,
    bytes: 512,
    fifoSize: 4096,
    concurrency: 64,
  });
  assert.deepEqual(r.connectCodes, {});
  assert.equal(r.opened, 2000);
  assert.equal(r.ferryd.sessionEnds, 4000, 'ferryd holds both ends of every session');
  assert.equal(r.intact, 2000);
  assert.equal(r.afterClose['sessions'], 0);
});
