/**
 * `npm run bench:memif`: memif packet rate at 64 B, poll mode, Ferry <-> dpdk-testpmd in both
 * directions, with testpmd <-> testpmd measured in the same run as the reference. Several short
 * rounds, medians, ratios to the reference of the same direction.
 *
 * Cases (Ferry is the memif client, testpmd the server, as a DPDK app would usually be):
 *   C2S ref   testpmd client txonly -> testpmd server rxonly   (rate at the server)
 *   Ferry tx  Ferry client (pktgen tx) -> testpmd server rxonly (rate at Ferry, checked at testpmd)
 *   S2C ref   testpmd server txonly -> testpmd client rxonly   (rate at the client)
 *   Ferry rx  testpmd server txonly -> Ferry client (pktgen rx) (rate at Ferry)
 * testpmd's forwarding lcore runs on CPU 1 (server) or 0 (client); Ferry's process is pinned to
 * CPU 0 with taskset when available, so each side has a CPU, as the two testpmds do.
 * Besides rates, each case reports the CPU time per packet of the side under test (Ferry's process;
 * for the references the testpmd in the same position: the sender for C2S, the receiver for S2C).
 * Rates depend on what else the machine runs; CPU per packet much less so (it includes turns spent
 * waiting on a full or empty ring, reported as the idle share).
 * Options: --rounds N (3), --seconds S per measurement (3), --warmup S (0.5), --size B (64), --json.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Testpmd, tempSocketDir, testpmdAvailable } from '../dpdk/testpmd.js';
import { median as medianOf } from './median.js';

const PKTGEN = fileURLToPath(new URL('../memif/pktgen.js', import.meta.url));

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '0.5' },
    size: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const warmup = Number(values.warmup);
const size = Number(values.size);

type CaseName = 'C2S ref' | 'Ferry tx' | 'S2C ref' | 'Ferry rx';
const CASES: { name: CaseName; label: string; ref: CaseName }[] = [
  { name: 'C2S ref', label: 'testpmd txonly -> testpmd rxonly (client to server)', ref: 'C2S ref' },
  { name: 'Ferry tx', label: 'Ferry tx (poll) -> testpmd rxonly', ref: 'C2S ref' },
  { name: 'S2C ref', label: 'testpmd txonly -> testpmd rxonly (server to client)', ref: 'S2C ref' },
  { name: 'Ferry rx', label: 'testpmd txonly -> Ferry rx (poll)', ref: 'S2C ref' },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const haveTaskset = spawnSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' }).status === 0;

function log(s: string): void {
  if (!values.json) process.stderr.write(s);
}

interface Sample {
  pps: number;
  /** CPU ns per packet of the side under test (includes time spent waiting on the ring). */
  cpuNs: number;
  /** Ferry only: median ns per packet over loop turns that moved packets (no waiting). */
  busyNs?: number;
  note: string;
}

/**
 * Reference: rate at the receiving testpmd over `seconds`, after the warm-up; CPU per packet of the
 * sender (C2S, compared with Ferry tx) or of the receiver (S2C, compared with Ferry rx).
 */
async function measureRef(socket: string, txRole: 'client' | 'server'): Promise<Sample> {
  const server = await Testpmd.start({ role: 'server', socket });
  let client: Testpmd | undefined;
  try {
    client = await Testpmd.start({ role: 'client', socket });
    await client.waitLinkUp();
    const [tx, rx] = txRole === 'client' ? [client, server] : [server, client];
    await rx.setFwd('rxonly');
    await tx.setFwd('txonly');
    if (size !== 64) await tx.cmd(`set txpkts ${size}`);
    await rx.startFwd();
    await tx.startFwd();
    await sleep(warmup * 1000);
    const a = await rx.portStats();
    const cpuA = [tx.workerCpuMs(), rx.workerCpuMs()];
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const b = await rx.portStats();
    const cpuB = [tx.workerCpuMs(), rx.workerCpuMs()];
    const t1 = performance.now();
    await tx.stopFwd();
    await rx.stopFwd();
    const packets = b.rxPackets - a.rxPackets;
    const nsPer = (i: number) => (((cpuB[i] ?? 0) - (cpuA[i] ?? 0)) * 1e6) / Math.max(1, packets);
    return {
      pps: packets / ((t1 - t0) / 1000),
      cpuNs: txRole === 'client' ? nsPer(0) : nsPer(1),
      note: `sender ${nsPer(0).toFixed(0)} / receiver ${nsPer(1).toFixed(0)} CPU ns per packet`,
    };
  } finally {
    await client?.close();
    await server.close();
  }
}

function spawnPktgen(args: string[]): ChildProcess {
  const node = [process.execPath, PKTGEN, ...args];
  const [cmd, ...rest] = haveTaskset ? ['taskset', '-c', '0', ...node] : node;
  return spawn(cmd as string, rest, { stdio: ['pipe', 'pipe', 'inherit'] });
}

/** Resolves with the first stdout line matching `re` (rejects on exit or after timeoutMs). */
function lineMatching(p: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`pktgen: no ${re} within ${timeoutMs} ms: ${buf}`)),
      timeoutMs,
    );
    const onData = (d: Buffer) => {
      buf += d.toString();
      for (const line of buf.split('\n')) {
        if (re.test(line)) {
          clearTimeout(timer);
          p.stdout?.off('data', onData);
          resolve(line);
          return;
        }
      }
    };
    p.stdout?.on('data', onData);
    p.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`pktgen exited (${code}) before ${re}: ${buf}`));
    });
  });
}

interface PktgenResult {
  packets: number;
  pps: number;
  cpuNsPerPacket: number;
  busyNsPerPacket: number;
  total: number;
  downs: number;
  turns: number;
  idleTurns: number;
}

/** Ferry as client: pktgen in `mode` against a testpmd server in the matching forwarding mode. */
async function measureFerry(socket: string, mode: 'tx' | 'rx'): Promise<Sample> {
  const server = await Testpmd.start({ role: 'server', socket });
  let gen: ChildProcess | undefined;
  try {
    await server.setFwd(mode === 'tx' ? 'rxonly' : 'txonly');
    if (mode === 'rx' && size !== 64) await server.cmd(`set txpkts ${size}`);
    gen = spawnPktgen([
      '--mode',
      mode,
      '--role',
      'client',
      '--socket',
      socket,
      '--size',
      String(size),
      '--duration',
      String(seconds),
      '--warmup',
      String(warmup),
      '--rx-mode',
      'poll',
      '--hold',
      '--json',
    ]);
    await lineMatching(gen, /^pktgen up/, 15_000);
    await server.waitLinkUp();
    await server.startFwd();
    const line = await lineMatching(gen, /^\{/, (seconds + warmup) * 1000 + 20_000);
    const r = JSON.parse(line) as PktgenResult;
    let check: string;
    if (mode === 'tx') {
      // Everything Ferry put on the ring reaches testpmd: let it drain, read while still connected.
      let stats = await server.portStats();
      for (let i = 0; i < 200 && stats.rxPackets < r.total; i++) {
        await sleep(10);
        stats = await server.portStats();
      }
      await server.stopFwd();
      check = `testpmd counted ${stats.rxPackets} of ${r.total} sent`;
      if (stats.rxPackets !== r.total) throw new Error(`Ferry tx: ${check}`);
    } else {
      const fwd = await server.stopFwd();
      check = `Ferry counted ${r.total} in its run; testpmd sent ${fwd?.txPackets} (${fwd?.txDropped} dropped on a full ring) in all`;
    }
    // Packets per loop turn that moved any: near the burst size (rx 256, tx 64) means Ferry was
    // the slower side (the ring always had packets / room); small means it waited for testpmd.
    const perTurn = r.total / Math.max(1, r.turns - r.idleTurns);
    check += `; ${r.busyNsPerPacket} ns per packet in busy turns (median; ${(1e3 / Math.max(1, r.busyNsPerPacket)).toFixed(1)} Mpps on a CPU of its own)`;
    check += `; Ferry moved ${perTurn.toFixed(1)} packets per busy turn (burst ${mode === 'rx' ? 256 : 64}), idle in ${r.idleTurns} of ${r.turns} turns`;
    if (r.downs !== 0) throw new Error(`the link went down ${r.downs} times during the run`);
    return { pps: r.pps, cpuNs: r.cpuNsPerPacket, busyNs: r.busyNsPerPacket, note: check };
  } finally {
    gen?.stdin?.end();
    if (gen && gen.exitCode === null) {
      const exited = new Promise((resolve) => gen?.once('exit', resolve));
      const t = setTimeout(() => gen?.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    await server.close();
  }
}

/** No samples read as 0, as this bench always reported them. */
const median = (xs: number[]): number => medianOf(xs, 0);

async function main(): Promise<void> {
  if (!testpmdAvailable()) {
    console.error(
      'bench:memif needs dpdk-testpmd: apt-get install -y --no-install-recommends dpdk-dev librte-net-memif23',
    );
    process.exit(2);
  }
  const dirs = tempSocketDir('ferry-bench-memif-');
  const samples = new Map<CaseName, Sample[]>();
  const checks: string[] = [];
  let n = 0;
  try {
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 ? [...CASES].reverse() : CASES;
      for (const c of order) {
        const socket = dirs.path(`b${n++}.sock`);
        let res: Sample;
        if (c.name === 'C2S ref') res = await measureRef(socket, 'client');
        else if (c.name === 'S2C ref') res = await measureRef(socket, 'server');
        else res = await measureFerry(socket, c.name === 'Ferry tx' ? 'tx' : 'rx');
        checks.push(`round ${r + 1} ${c.name}: ${(res.pps / 1e6).toFixed(2)} Mpps; ${res.note}`);
        samples.set(c.name, [...(samples.get(c.name) ?? []), res]);
        log('.');
      }
    }
  } finally {
    dirs.cleanup();
  }
  log('\n');
  const results = CASES.map((c) => {
    const xs = samples.get(c.name) ?? [];
    const refs = samples.get(c.ref) ?? [];
    const med = median(xs.map((x) => x.pps));
    const cpu = median(xs.map((x) => x.cpuNs));
    return {
      case: c.name,
      label: c.label,
      medianPps: Math.round(med),
      rounds: xs.map((x) => Math.round(x.pps)),
      vsReference: med / median(refs.map((x) => x.pps)),
      cpuNsPerPacket: Math.round(cpu),
      cpuVsReference: cpu / median(refs.map((x) => x.cpuNs)),
      busyNsPerPacket: c.name === c.ref ? null : Math.round(median(xs.map((x) => x.busyNs ?? Number.NaN))),
    };
  });
  const conditions = {
    size,
    seconds,
    warmup,
    rounds,
    rxMode: 'poll',
    ferryRole: 'client',
    ferryPinnedToCpu0: haveTaskset,
    cpus: (await import('node:os')).cpus().length,
  };
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ conditions, results, checks })}\n`);
    return;
  }
  process.stdout.write(
    `memif packet rate, ${size} B, poll mode: medians of ${rounds} rounds x ${seconds} s (after ${warmup} s warm-up)\n\n`,
  );
  process.stdout.write(
    `${'case'.padEnd(52)} ${'Mpps'.padStart(6)}  ${'rounds (Mpps)'.padEnd(18)} ${'x ref'.padStart(6)} ${'CPU ns/pkt'.padStart(11)} ${'x ref'.padStart(6)} ${'busy ns/pkt'.padStart(12)}\n`,
  );
  for (const r of results) {
    const each = r.rounds.map((x) => (x / 1e6).toFixed(2)).join(' ');
    const busy =
      r.busyNsPerPacket === null ? '' : `${r.busyNsPerPacket} (${(1e3 / r.busyNsPerPacket).toFixed(1)} Mpps)`;
    process.stdout.write(
      `${r.label.padEnd(52)} ${(r.medianPps / 1e6).toFixed(2).padStart(6)}  ${each.padEnd(18)} ${r.vsReference.toFixed(2).padStart(6)} ${String(r.cpuNsPerPacket).padStart(11)} ${r.cpuVsReference.toFixed(2).padStart(6)} ${busy.padStart(12)}\n`,
    );
  }
  process.stdout.write(
    '\nCPU ns/pkt: CPU time of the side under test per packet (testpmd: its forwarding thread), waiting included.\n' +
      "busy ns/pkt: Ferry's median time per packet in loop turns that moved packets; in brackets the rate\n" +
      'that implies on a CPU of its own (an estimate that holds when the machine is busy; rates do not).\n',
  );
  process.stdout.write(`\n${checks.join('\n')}\n`);
}

await main();
