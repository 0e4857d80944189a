// The packet generator / counter example as a user runs it: Ferry to Ferry over memif (two
// processes, sequence numbers checked), and against dpdk-testpmd when it is installed.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Testpmd, tempSocketDir, testpmdSkip } from '../dpdk/testpmd.js';

const PKTGEN = fileURLToPath(new URL('./pktgen.js', import.meta.url));
const dirs = tempSocketDir('ferry-pktgen-');
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) p.kill('SIGKILL');
  dirs.cleanup();
});

interface Run {
  child: ChildProcess;
  /** Resolves with the first line matching re. */
  line(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number | null>;
}

function pktgen(args: string[]): Run {
  const child = spawn(process.execPath, [PKTGEN, '--json', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  procs.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    exited,
    line(re, timeoutMs = 15_000) {
      const deadline = Date.now() + timeoutMs;
      return (async () => {
        for (;;) {
          const hit = out.split('\n').find((l) => re.test(l));
          if (hit !== undefined) return hit;
          if (Date.now() > deadline || child.exitCode !== null)
            throw new Error(`pktgen: no ${re} in: ${out}`);
          await new Promise((r) => setTimeout(r, 10));
        }
      })();
    },
  };
}

interface Summary {
  mode: string;
  packets: number;
  bytes: number;
  seqErrors: number;
  downs: number;
}

describe('pktgen example', () => {
  it('Ferry to Ferry: a generator sends 20000 frames, a counter (other process) gets all, in order', async () => {
    const socket = dirs.path('ff.sock');
    const rx = pktgen([
      '--mode',
      'rx',
      '--role',
      'server',
      '--socket',
      socket,
      '--count',
      '20000',
      '--check-seq',
    ]);
    await rx.line(/listening on/);
    // --hold: the generator stays connected until told, so nothing it queued is lost by closing.
    const tx = pktgen([
      '--mode',
      'tx',
      '--role',
      'client',
      '--socket',
      socket,
      '--count',
      '20000',
      '--size',
      '128',
      '--hold',
    ]);
    const got = JSON.parse(await rx.line(/^\{/, 30_000)) as Summary;
    const sent = JSON.parse(await tx.line(/^\{/, 30_000)) as Summary;
    assert.equal(sent.packets, 20_000);
    assert.equal(got.packets, 20_000);
    assert.equal(got.bytes, 20_000 * 128);
    assert.equal(got.seqErrors, 0);
    assert.equal(await rx.exited, 0);
    tx.child.stdin?.end();
    assert.equal(await tx.exited, 0);
  });

  it('interrupt-mode counter with chained frames (4000 B frames over 2048 B buffers)', async () => {
    const socket = dirs.path('chain.sock');
    const rx = pktgen([
      '--mode',
      'rx',
      '--role',
      'client',
      '--socket',
      socket,
      '--count',
      '3000',
      '--check-seq',
      '--rx-mode',
      'interrupt',
    ]);
    const tx = pktgen([
      '--mode',
      'tx',
      '--role',
      'server',
      '--socket',
      socket,
      '--count',
      '3000',
      '--size',
      '4000',
      '--hold',
    ]);
    const got = JSON.parse(await rx.line(/^\{/, 30_000)) as Summary;
    const sent = JSON.parse(await tx.line(/^\{/, 30_000)) as Summary;
    assert.equal(sent.packets, 3000);
    assert.deepEqual([got.packets, got.bytes, got.seqErrors], [3000, 3000 * 4000, 0]);
    tx.child.stdin?.end();
    assert.equal(await tx.exited, 0);
  });

  describe('against dpdk-testpmd', { skip: testpmdSkip() }, () => {
    it('pktgen tx -> testpmd rxonly counts exactly --count', async () => {
      const socket = dirs.path('tp-rx.sock');
      const tp = await Testpmd.start({ role: 'server', socket });
      try {
        await tp.setFwd('rxonly');
        await tp.startFwd();
        const tx = pktgen([
          '--mode',
          'tx',
          '--role',
          'client',
          '--socket',
          socket,
          '--count',
          '50000',
          '--hold',
        ]);
        const sent = JSON.parse(await tx.line(/^\{/, 30_000)) as Summary;
        assert.equal(sent.packets, 50_000);
        let stats = await tp.portStats();
        for (let i = 0; i < 100 && stats.rxPackets < 50_000; i++) stats = await tp.portStats();
        await tp.stopFwd();
        assert.equal(stats.rxPackets, 50_000);
        assert.equal(stats.rxBytes, 50_000 * 64);
        tx.child.stdin?.end();
        assert.equal(await tx.exited, 0);
      } finally {
        await tp.close();
      }
    });

    it('testpmd txonly -> pktgen rx (poll) counts every packet testpmd sent', async () => {
      const socket = dirs.path('tp-tx.sock');
      const rx = pktgen(['--mode', 'rx', '--role', 'server', '--socket', socket, '--duration', '60']);
      await rx.line(/listening on/);
      const tp = await Testpmd.start({ role: 'client', socket });
      try {
        await tp.waitLinkUp();
        await tp.setFwd('txonly');
        await tp.startFwd();
        for (let i = 0; i < 500 && (await tp.portStats()).txPackets < 50_000; i++) {
          await new Promise((r) => setTimeout(r, 10));
        }
        const fwd = await tp.stopFwd();
        await new Promise((r) => setTimeout(r, 300)); // the counter drains the ring
        rx.child.kill('SIGTERM'); // prints the summary, then disconnects (testpmd has stopped)
        const got = JSON.parse(await rx.line(/^\{/, 10_000)) as Summary;
        assert.ok(fwd && fwd.txPackets >= 50_000, `testpmd sent ${fwd?.txPackets}`);
        assert.equal(got.packets, fwd.txPackets);
        assert.equal(got.bytes, fwd.txPackets * 64);
        assert.equal(await rx.exited, 0);
      } finally {
        await tp.close();
      }
    });
  });
});
