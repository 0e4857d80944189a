import assert from 'node:assert/strict';
import { FerrydContainer } from '@ferry/testcontainers';
import { GenericContainer, Wait } from 'testcontainers';

export async function echoThroughFerry(appImage: string): Promise<void> {
  const ferryd = await new FerrydContainer().withNamespace('shop').start();
  const server = await ferryd
    .attach(new GenericContainer(appImage), { namespace: 'shop' })
    .withCommand(['node', 'examples/dist/echo/server.js', 'tcp://0.0.0.0:7000'])
    .withWaitStrategy(Wait.forLogMessage('listening'))
    .start();
  const client = await ferryd
    .attach(new GenericContainer(appImage), { namespace: 'shop' })
    .withCommand(['sleep', 'infinity'])
    .start();
  try {
    const { stdout } = await client.exec(['node', 'examples/dist/echo/verify.js', 'tcp://127.0.0.1:7000']);
    assert.match(stdout, /"transport":"ct"/); // cut-through: shared memory between the two containers
    assert.match(stdout, /"ok":true/);
    const apps = await ferryd.show<{ name: string }[]>('apps');
    assert.deepEqual(
      apps.map((a) => a.name),
      ['server.js'],
    );
  } finally {
    await client.stop();
    await server.stop();
    await ferryd.stop();
  }
}
