/**
 * @ferry/sdk/messages across containers: a message server and its client in separate containers
 * (own network and IPC namespaces, other uids) sharing only ferryd's socket, and a publisher with
 * two subscribers each in a container of its own. Asserted from inside (what the apps received)
 * and from outside (`ferry show topics --json` in ferryd's container).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { StartedTestContainer } from 'testcontainers';
import { eventually, execDetached, execOk, show } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { SidecarGroup } from './support/sidecar.js';

/** `node -e` with ESM, from the image's working directory (where @ferry/sdk resolves). */
const node = (script: string) => ['node', '--input-type=module', '-e', script];

const SERVER = `
import { createMessageServer } from '@ferry/sdk/messages';
const s = createMessageServer({ onRequest: (v) => ({ echo: v, pid: process.pid }) }).listen('tcp://0.0.0.0:7100');
await s.ready();
console.log('message server listening');
`;

const CLIENT = `
import { connectMessages } from '@ferry/sdk/messages';
const ch = await connectMessages('tcp://127.0.0.1:7100');
const big = Buffer.alloc(3 * 1024 * 1024, 7);
const values = [1, 'two', { three: [3] }, new Date(5), new Map([[1, 2]]), 10n ** 30n];
let ok = 0;
for (const v of values) {
  const r = await ch.request(v);
  if (JSON.stringify(r.echo, (k, x) => typeof x === 'bigint' ? String(x) : x) === JSON.stringify(v, (k, x) => typeof x === 'bigint' ? String(x) : x)) ok++;
}
const r = await ch.request(big);
const bigOk = Buffer.isBuffer(r.echo) && r.echo.length === big.length && r.echo.every((b) => b === 7);
console.log(JSON.stringify({ ok, of: values.length, bigOk, transport: ch.transport }));
await ch.close();
`;

const SUBSCRIBER = (n: number) => `
import { subscribe } from '@ferry/sdk/messages';
const sub = await subscribe('e2e-prices');
console.log('subscribed');
let got = 0, inOrder = true;
for await (const v of sub) {
  if (v.i !== got) inOrder = false;
  if (++got === ${n}) break;
}
console.log(JSON.stringify({ got, inOrder, dropped: sub.dropped }));
`;

const PUBLISHER = (n: number) => `
import { publish } from '@ferry/sdk/messages';
const pub = await publish('e2e-prices');
for (let i = 0; i < ${n}; i++) {
  pub.send({ i, sym: 'X', px: i / 4 });
  if (i % 50 === 0) await new Promise((r) => setTimeout(r, 2));
}
console.log(JSON.stringify({ published: pub.published }));
await new Promise((r) => setTimeout(r, 500));
await pub.close();
`;

interface ShowTopic {
  name: string;
  publishers: { messages: number }[];
  subscribers: { dropped: number }[];
}

describe('messages across containers', { skip: SKIP }, () => {
  let group: SidecarGroup | undefined;
  let ferryd: StartedTestContainer;

  before(async () => {
    group = await SidecarGroup.start();
    ferryd = group.ferryd;
  });

  after(() => group?.stop());

  test('request/response between containers, cut-through', { timeout: 180_000 }, async () => {
    const g = group as SidecarGroup;
    await g.app(1001, 'msgserver', node(SERVER), 'message server listening');
    const client = await g.idle(1002, 'msgclient');
    const out = JSON.parse((await execOk(client, node(CLIENT))).trim()) as Record<string, unknown>;
    assert.deepEqual(out, { ok: 6, of: 6, bigOk: true, transport: 'ct' });
  });

  test('a publisher and two subscribers in three containers: each subscriber gets every message', {
    timeout: 180_000,
  }, async () => {
    const g = group as SidecarGroup;
    const n = 5000;
    const subs = [await g.idle(1003, 'sub1'), await g.idle(1004, 'sub2')];
    for (const s of subs)
      await execDetached(
        s,
        node(SUBSCRIBER(n))
          .map((a) => `'${a.replace(/'/g, "'\\''")}'`)
          .join(' '),
        '/tmp/sub.log',
      );
    for (const s of subs) {
      await eventually('subscribed', async () =>
        (await execOk(s, ['cat', '/tmp/sub.log'])).includes('subscribed') ? true : undefined,
      );
    }
    const before = (await show<ShowTopic[]>(ferryd, 'topics')).find((t) => t.name === 'e2e-prices');
    assert.equal(before?.subscribers.length, 2, 'ferryd sees both subscribers of the topic');
    const pub = await g.idle(1005, 'pub');
    const published = JSON.parse((await execOk(pub, node(PUBLISHER(n)))).trim().split('\n').pop() ?? '{}');
    assert.deepEqual(published, { published: n });
    for (const s of subs) {
      const line = await eventually(
        'the subscriber’s result',
        async () => {
          const log = await execOk(s, ['cat', '/tmp/sub.log']);
          return log.split('\n').find((l) => l.startsWith('{'));
        },
        60_000,
      );
      assert.deepEqual(JSON.parse(line), { got: n, inOrder: true, dropped: 0 });
    }
    // Every member left: the topic went with the last of them.
    await eventually('the topic gone', async () =>
      (await show<ShowTopic[]>(ferryd, 'topics')).some((t) => t.name === 'e2e-prices') ? undefined : true,
    );
  });
});
