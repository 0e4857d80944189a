// The testpmd harness against itself: testpmd server <-> testpmd client over memif (the reference
// the Ferry interop tests and the benchmark compare with), both socket kinds.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Testpmd, tempSocketDir, testpmdSkip, uniqueAbstractName } from './testpmd.js';

const skip = testpmdSkip();

describe('testpmd harness (testpmd <-> testpmd)', { skip }, () => {
  const dirs = tempSocketDir();
  const procs: Testpmd[] = [];
  after(async () => {
    for (const p of procs) await p.kill();
    dirs.cleanup();
  });

  for (const kind of ['filesystem', 'abstract'] as const) {
    it(`txonly client -> rxonly server over a ${kind} socket: the server counts what the client sent`, async () => {
      const socket = kind === 'filesystem' ? dirs.path(`ref-${kind}.sock`) : uniqueAbstractName('ref');
      const server = await Testpmd.start({ role: 'server', socket });
      procs.push(server);
      const client = await Testpmd.start({ role: 'client', socket });
      procs.push(client);
      await client.waitLinkUp();
      await server.waitLinkUp();
      await server.setFwd('rxonly');
      await server.startFwd();
      await client.setFwd('txonly');
      await client.startFwd();
      await new Promise((r) => setTimeout(r, 300));
      const sent = await client.stopFwd();
      // Let the server drain what is still in the ring, then read its counters while connected.
      let received = await server.portStats();
      for (let i = 0; i < 50 && received.rxPackets < (sent?.txPackets ?? 0); i++) {
        await new Promise((r) => setTimeout(r, 20));
        received = await server.portStats();
      }
      const fwd = await server.stopFwd();
      assert.ok(sent && sent.txPackets > 0, `client sent nothing: ${JSON.stringify(sent)}`);
      assert.equal(received.rxPackets, sent.txPackets);
      assert.equal(received.rxBytes, sent.txPackets * 64);
      assert.equal(fwd?.rxPackets, sent.txPackets);
      await client.close();
      await server.waitLinkDown();
      await server.close();
      if (kind === 'filesystem') {
        await assert.rejects(
          import('node:fs/promises').then((fs) => fs.stat(socket)),
          /ENOENT/,
        );
      }
    });
  }

  it('a client started before its server connects once port start 0 is re-issued', async () => {
    const socket = dirs.path('late.sock');
    const client = await Testpmd.start({ role: 'client', socket });
    procs.push(client);
    assert.equal((await client.portInfo()).linkUp, false);
    const server = await Testpmd.start({ role: 'server', socket });
    procs.push(server);
    await client.waitLinkUp();
    await client.close();
    await server.close();
  });

  it('kill() leaves no process and no socket file behind', async () => {
    const socket = dirs.path('kill.sock');
    const server = await Testpmd.start({ role: 'server', socket });
    procs.push(server);
    await server.kill();
    assert.equal(server.running, false);
    await assert.rejects(server.cmd('show port info 0'), /not running/);
    await assert.rejects(
      import('node:fs/promises').then((fs) => fs.stat(socket)),
      /ENOENT/,
    );
  });
});
