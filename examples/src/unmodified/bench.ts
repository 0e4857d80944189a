/**
 * `npm run bench:http-unmodified`: what a user trying Ferry first will measure. An unmodified
 * fastify (and express) server and autocannon as its load generator, both run three ways:
 *   ferry  both under NODE_OPTIONS='--import @ferry/sdk/register' (cut-through, proven by ferryd)
 *   tcp    plain, over kernel TCP loopback
 *   unix   plain, over a unix socket (autocannon --socketPath)
 * Rounds are interleaved (ferry, tcp, unix, ferry, ...) so that the machine's noise falls on all
 * three alike; the figures are medians over the rounds. CPU per request is the server's CPU time
 * (/proc/PID/stat) and the load generator's (its own process.cpuUsage) divided by the requests.
 *   ferry-adaptive  as ferry, with FERRY_MODE=adaptive (the SDK's default; the hook's is interrupt)
 * Flags: --rounds N (5) --duration-s S (5) --connections C (16) --server fastify,express
 *        --paths ferry,ferry-adaptive,tcp,unix
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startDaemon } from '@ferry/daemon/testing';
import { app, freePort, lastJson, type Proc, runNode } from './procs.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'duration-s': { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    server: { type: 'string', default: 'fastify,express' },
    paths: { type: 'string', default: 'ferry,ferry-adaptive,tcp,unix' },
  },
});
const rounds = Math.max(1, Math.min(50, Number(values.rounds)));
const durationS = Math.max(1, Math.min(60, Number(values['duration-s'])));
const connections = Math.max(1, Math.min(256, Number(values.connections)));
const servers = String(values.server).split(',');
const ALL_MODES = ['ferry', 'ferry-adaptive', 'tcp', 'unix'] as const;
type Mode = (typeof ALL_MODES)[number];
const MODES = String(values.paths)
  .split(',')
  .filter((m): m is Mode => (ALL_MODES as readonly string[]).includes(m));
if (!MODES.includes('tcp')) MODES.push('tcp');
const LABEL: Record<Mode, string> = {
  ferry: 'Ferry hook (cut-through, interrupt)',
  'ferry-adaptive': 'Ferry hook, FERRY_MODE=adaptive',
  tcp: 'TCP loopback',
  unix: 'unix socket',
};

interface Round {
  requests: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  timeouts: number;
  cpuUs: number;
  serverCpuUs: number;
}

/** utime + stime of a process in µs (clock ticks of 10 ms: enough over rounds of seconds). */
function cpuUsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

const daemon = await startDaemon();
const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-http-'));
const procs: Proc[] = [];
const env = { FERRY_SOCKET: daemon.socket };
try {
  console.log(
    `# unmodified HTTP apps: autocannon -c ${connections} against GET /hello, ${rounds} rounds of ${durationS} s, medians; ` +
      `node ${process.version}, ${new Date().toISOString()}`,
  );
  console.log('# the machine is shared (2 vCPUs): compare rows of one run, not runs of different times');
  for (const server of servers) {
    const port = { ferry: await freePort(), 'ferry-adaptive': await freePort(), tcp: await freePort() };
    const hooked = (mode: Mode) =>
      mode === 'ferry'
        ? { intercept: `127.0.0.1:${port.ferry}`, env }
        : { intercept: `127.0.0.1:${port['ferry-adaptive']}`, env: { ...env, FERRY_MODE: 'adaptive' } };
    const path = join(dir, `${server}.sock`);
    const started = {} as Record<Mode, Proc>;
    for (const mode of MODES) {
      const args = [app(`${server}-server`), mode === 'unix' ? path : String(port[mode])];
      started[mode] = runNode(args, mode.startsWith('ferry') ? hooked(mode) : { env });
    }
    procs.push(...Object.values(started));
    for (const p of Object.values(started)) await p.waitFor('listening');
    const load = async (mode: Mode, seconds: number): Promise<Round> => {
      const url = mode === 'unix' ? 'http://localhost/hello' : `http://127.0.0.1:${port[mode]}/hello`;
      const args = [app('load'), url, '--connections', String(connections), '--duration-s', String(seconds)];
      if (mode === 'unix') args.push('--socket-path', path);
      const serverPid = started[mode].proc.pid as number;
      const before = cpuUsOf(serverPid);
      const stats0 = (await daemon.stats())['session'] as Record<string, number>;
      const p = runNode(args, mode.startsWith('ferry') ? hooked(mode) : { env });
      procs.push(p);
      const code = await p.exited();
      if (code !== 0) throw new Error(`load generator failed (${code}): ${p.stderr()}`);
      const r = lastJson(p.stdout()) as Omit<Round, 'serverCpuUs'>;
      const stats1 = (await daemon.stats())['session'] as Record<string, number>;
      // The ferry rows must have gone app to app: sessions accepted, none through ferryd's TCP.
      const tcp =
        (stats1['tcpConnects'] ?? 0) -
        (stats0['tcpConnects'] ?? 0) +
        (stats1['tcpAccepts'] ?? 0) -
        (stats0['tcpAccepts'] ?? 0);
      const ct = (stats1['accepted'] ?? 0) - (stats0['accepted'] ?? 0);
      if (mode.startsWith('ferry') && (tcp !== 0 || ct < connections))
        throw new Error(`ferry round not cut-through: ct ${ct}, tcp ${tcp}`);
      if (!mode.startsWith('ferry') && ct + tcp !== 0) throw new Error(`${mode} round went through ferryd`);
      if (r.errors || r.non2xx || r.timeouts)
        throw new Error(`${mode}: errors ${r.errors}, non-2xx ${r.non2xx}, timeouts ${r.timeouts}`);
      return { ...r, serverCpuUs: cpuUsOf(serverPid) - before };
    };
    for (const mode of MODES) await load(mode, 1); // warm-up (JIT, connection setup), not counted
    const results = Object.fromEntries(MODES.map((m) => [m, [] as Round[]])) as Record<Mode, Round[]>;
    for (let i = 0; i < rounds; i++) {
      for (const mode of MODES) results[mode].push(await load(mode, durationS));
    }
    const tcpRps = median(results.tcp.map((r) => r.rps));
    console.log(`\n## ${server}`);
    console.log(
      '| path | req/s | vs tcp | p50 ms | p99 ms | server CPU µs/req | client CPU µs/req | req/s of each round |',
    );
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
    for (const mode of MODES) {
      const rs = results[mode];
      const rps = median(rs.map((r) => r.rps));
      console.log(
        `| ${LABEL[mode]} | ${rps.toFixed(0)} | ${(rps / tcpRps).toFixed(2)} | ` +
          `${median(rs.map((r) => r.p50)).toFixed(2)} | ${median(rs.map((r) => r.p99)).toFixed(2)} | ` +
          `${median(rs.map((r) => r.serverCpuUs / r.requests)).toFixed(1)} | ${median(rs.map((r) => r.cpuUs / r.requests)).toFixed(1)} | ` +
          `${rs.map((r) => r.rps.toFixed(0)).join(', ')} |`,
      );
    }
    for (const p of Object.values(started)) p.kill();
  }
} finally {
  for (const p of procs) p.kill();
  await daemon.stop();
  rmSync(dir, { recursive: true, force: true });
}
