/**
 * Handoff mode across containers: two ferryd (each its own "host", joined by a network), apps in
 * containers with no network at all (network_mode: none) reach each other over TCP because each
 * ferryd connects or accepts in its own network namespace and hands them the kernel socket.
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { FerrydContainer, type ShowSession } from '@ferry/testcontainers';
import { GenericContainer, Network, type StartedNetwork, Wait } from 'testcontainers';
import { execOk, jsonLines, pollWhile } from './support/containers.js';
import { SKIP } from './support/engine.js';
import { ensureImages, IMAGES } from './support/images.js';

const HANDOFF = { FERRY_TCP_MODE: 'handoff' };

describe('handoff: apps with network_mode none over two ferryd', { skip: SKIP }, () => {
  const stops: (() => Promise<unknown>)[] = [];
  after(async () => {
    for (const s of stops.reverse()) await s().catch(() => {});
  });

  test('an echo across two ferryd on handed kernel sockets, intact, both ferryd show them', {
    timeout: 180_000,
  }, async () => {
    await ensureImages();
    const wan: StartedNetwork = await new Network().start();
    stops.push(() => wan.stop());
    // ferryd-a accepts each connection and hands it over (so it shows it), rather than lending its
    // listener to the app (the default, which shows the listener's figures instead).
    const ferrydA = await new FerrydContainer(IMAGES.ferryd)
      .withConfig({ tcpHandoffListeners: 'accept' })
      .withNetwork(wan)
      .withNetworkAliases('ferryd-a')
      .start();
    stops.push(() => ferrydA.stop());
    const ferrydB = await new FerrydContainer(IMAGES.ferryd).withNetwork(wan).start();
    stops.push(() => ferrydB.stop());
    const server = await ferrydA
      .attach(
        new GenericContainer(IMAGES.app)
          .withNetworkMode('none')
          .withEnvironment(HANDOFF)
          .withCommand(['node', 'examples/dist/echo/server.js', 'tcp://0.0.0.0:7000'])
          .withWaitStrategy(Wait.forLogMessage('echo server listening')),
      )
      .start();
    stops.push(() => server.stop({ timeout: 0 }));
    const client = await ferrydB
      .attach(
        new GenericContainer(IMAGES.app)
          .withNetworkMode('none')
          .withEnvironment(HANDOFF)
          .withCommand(['sleep', 'infinity']),
      )
      .start();
    stops.push(() => client.stop({ timeout: 0 }));
    // No network in the apps' containers: loopback only.
    for (const c of [server, client]) {
      assert.equal((await execOk(c, ['ls', '/sys/class/net'])).trim(), 'lo');
    }
    // Paced so that both ferryd can be asked while the session runs.
    const run = execOk(client, [
      'node',
      'examples/dist/echo/verify.js',
      'tcp://ferryd-a:7000',
      '--bytes',
      String(16 << 20),
      '--pause-ms',
      '20',
    ]);
    let seenA: ShowSession[] = [];
    let seenB: ShowSession[] = [];
    const out = await pollWhile(run, async () => {
      const a = (await ferrydA.show<ShowSession[]>('sessions')).filter((s) => s.transport === 'tcp-handoff');
      const b = (await ferrydB.show<ShowSession[]>('sessions')).filter((s) => s.transport === 'tcp-handoff');
      if (a.length > seenA.length) seenA = a;
      if (b.length > seenB.length) seenB = b;
    });
    const [connected, result] = jsonLines(out);
    assert.equal(connected?.['transport'], 'tcp-handoff', out);
    assert.equal(result?.['ok'], true, out);
    assert.equal(seenA.length, 1, 'ferryd-a handed the accepted connection to the server');
    assert.equal(seenB.length, 1, 'ferryd-b handed the connection it made to the client');
  });
});
