/**
 * Topics across a ferryd restart (docs/messages.md): the topic dies with its ferryd. Publishers and
 * subscribers end with ERR_FERRY_DAEMON_LOST (a subscriber first hands over what it had read), and
 * publishing and subscribing again once the app has reattached to the next ferryd works.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { publish, type Subscriber, subscribe } from '@ferry/sdk/messages';
import { eventually, startDaemon } from '../testing/harness.js';

test('kill -9 of ferryd ends topic members with ERR_FERRY_DAEMON_LOST; they publish and subscribe again after', async () => {
  const d1 = await startDaemon();
  const socket = d1.socket;
  const sub = await subscribe('restart', { socket });
  const pub = await publish('restart', { socket });
  for (let i = 0; i < 5; i++) pub.send({ i });
  await d1.kill('SIGKILL');
  const got: unknown[] = [];
  await assert.rejects(
    (async () => {
      for await (const v of sub) got.push(v);
    })(),
    { code: 'ERR_FERRY_DAEMON_LOST' },
  );
  assert.deepEqual(
    got,
    [0, 1, 2, 3, 4].map((i) => ({ i })),
    'what was published before is delivered first',
  );
  assert.equal(sub.error?.code, 'ERR_FERRY_DAEMON_LOST');
  assert.throws(() => pub.send({ i: 5 }), { code: 'ERR_FERRY_DAEMON_LOST' });
  assert.equal(pub.error?.code, 'ERR_FERRY_DAEMON_LOST');

  const d2 = await startDaemon([], { socket });
  try {
    // The app reattaches on its own (with backoff); a new subscription then works as before.
    let sub2: Subscriber | null = null;
    await eventually(
      async () => {
        sub2 = await subscribe('restart', { socket }).catch(() => null);
        return sub2 !== null;
      },
      30_000,
      'subscribe after the restart',
    );
    if (sub2 === null) throw new Error('not subscribed');
    const s2: Subscriber = sub2;
    const pub2 = await publish('restart', { socket });
    pub2.send({ again: true });
    const it = s2[Symbol.asyncIterator]();
    assert.deepEqual((await it.next()).value, { again: true });
    await Promise.all([pub2.close(), s2.close(), pub.close(), sub.close()]);
  } finally {
    await d2.stop();
  }
});
