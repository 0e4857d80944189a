/**
 * `ferry perf`: every workload over the SDK (cut-through) and over node:net prints one JSON line
 * whose figures are consistent with the work asked for. Small counts: this checks the tool, the
 * benchmark measures speed.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

const CLI = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

/** Runs the CLI with `args` to its exit: its exit code and each stdout line parsed as JSON. */
async function runJsonLines(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: unknown; lines: Record<string, unknown>[] }> {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise((resolve) => child.once('exit', resolve));
  const lines = out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, lines };
}

function firstJsonLine(p: ChildProcess, what: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`${what}: no line in ${timeoutMs} ms (${err})`)),
      timeoutMs,
    );
    p.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    p.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(out.slice(0, nl)) as Record<string, unknown>);
        } catch (e) {
          reject(e);
        }
      }
    });
    p.once('exit', (code) => {
      if (out.includes('\n')) return;
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code} before printing: ${err}`));
    });
  });
}

const WORKLOADS = [
  { workload: 'throughput', count: 4 * 1024 * 1024, size: 64 * 1024 },
  { workload: 'rate', count: 2_000, size: 64 },
  { workload: 'rtt', count: 200, size: 64 },
  { workload: 'cps', count: 60, size: 64 },
] as const;

describe('ferry perf server|client --json', () => {
  let daemon: DaemonHandle;
  before(async () => {
    daemon = await startDaemon();
  });
  after(async () => {
    await daemon.stop();
  });

  for (const stack of ['ferry', 'net'] as const) {
    test(`${stack}: each workload reports what it did`, async () => {
      const env = { ...process.env, FERRY_SOCKET: daemon.socket };
      const server = spawn(
        process.execPath,
        [CLI, 'perf', 'server', '--uri', 'tcp://127.0.0.1:0', '--stack', stack],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      try {
        const listening = String((await firstJsonLine(server, 'perf server'))['listening']);
        assert.match(listening, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
        for (const w of WORKLOADS) {
          const client = spawn(
            process.execPath,
            [
              CLI,
              'perf',
              'client',
              '--uri',
              listening,
              '--stack',
              stack,
              '--workload',
              w.workload,
              '--count',
              String(w.count),
              '--size',
              String(w.size),
              '--concurrency',
              '4',
              '--json',
            ],
            { env, stdio: ['ignore', 'pipe', 'pipe'] },
          );
          const r = await firstJsonLine(client, `perf client ${w.workload}`);
          assert.equal(r['stack'], stack);
          assert.equal(r['workload'], w.workload);
          assert.equal(r['count'], w.count);
          const seconds = r['seconds'] as number;
          assert.ok(seconds > 0, `${w.workload}: seconds ${seconds}`);
          assert.ok(Math.abs((r['perSecond'] as number) - w.count / seconds) < 1e-6 * (w.count / seconds));
          // The client did work, so it used CPU.
          const cpuUs = r['cpuUs'] as number;
          assert.ok(cpuUs > 0, `${w.workload}: cpuUs ${cpuUs}`);
          if (w.workload === 'throughput') {
            assert.ok(Math.abs((r['gbps'] as number) - w.count / seconds / 1e9) < 1e-9);
          }
          if (w.workload === 'rtt') {
            const p50 = r['p50us'] as number;
            const p99 = r['p99us'] as number;
            const p999 = r['p999us'] as number;
            assert.ok(p50 > 0 && p50 <= p99 && p99 <= p999, `rtt p50 ${p50} p99 ${p99} p999 ${p999}`);
            // Round trips are sequential and half of them took at least p50.
            assert.ok(seconds * 1e6 >= (w.count * p50) / 2, `rtt ${seconds} s for ${w.count} x ${p50} us`);
          }
        }
      } finally {
        server.kill('SIGTERM');
      }
    });
  }

  test('--chart writes an SVG beside the JSON: a point per 100 ms step, and every round trip in the histogram', async () => {
    const env = { ...process.env, FERRY_SOCKET: daemon.socket };
    const server = spawn(process.execPath, [CLI, 'perf', 'server', '--uri', 'tcp://127.0.0.1:0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const dir = mkdtempSync(join(tmpdir(), 'ferry-perf-chart-'));
    try {
      const listening = String((await firstJsonLine(server, 'perf server'))['listening']);
      const chart = join(dir, 'rtt.svg');
      const client = spawn(
        process.execPath,
        [
          CLI,
          'perf',
          'client',
          '--uri',
          listening,
          '--workload',
          'rtt',
          '--count',
          '300',
          '--json',
          '--chart',
          chart,
        ],
        { env, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      const r = await firstJsonLine(client, 'perf client rtt --chart');
      assert.equal(r['chart'], chart);
      await new Promise((resolve) => client.once('exit', resolve));
      const svg = readFileSync(chart, 'utf8');
      assert.match(svg, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<svg /);
      const counts = [...svg.matchAll(/class="bar"[^>]*data-count="(\d+)"/g)].map((m) => Number(m[1]));
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        300,
      );
      const rates = [...svg.matchAll(/class="point"[^>]*data-t="([^"]+)" data-rate="([^"]+)"/g)].map((m) => [
        Number(m[1]),
        Number(m[2]),
      ]);
      assert.ok(rates.length >= 1);
      // The steps add up to the round trips done.
      let done = 0;
      let prev = 0;
      for (const [t = 0, rate = 0] of rates) {
        done += rate * (t - prev);
        prev = t;
      }
      assert.ok(Math.abs(done - 300) < 1e-6, `timeline adds up to ${done}`);
    } finally {
      server.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('rtt --warmup: a phase line when the measured part starts, then figures of the measured round trips only', async () => {
    const env = { ...process.env, FERRY_SOCKET: daemon.socket };
    const server = spawn(process.execPath, [CLI, 'perf', 'server', '--uri', 'tcp://127.0.0.1:0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const dir = mkdtempSync(join(tmpdir(), 'ferry-perf-warmup-'));
    try {
      const listening = String((await firstJsonLine(server, 'perf server'))['listening']);
      const chart = join(dir, 'rtt.svg');
      const args = ['perf', 'client', '--uri', listening, '--workload', 'rtt', '--count', '120'];
      const fromUs = Number(process.hrtime.bigint()) / 1000;
      const { code, lines } = await runJsonLines(
        [...args, '--warmup', '250', '--json', '--chart', chart, '--slowest', '5'],
        env,
      );
      const toUs = Number(process.hrtime.bigint()) / 1000;
      assert.equal(code, 0);
      assert.deepEqual(lines[0], { phase: 'start' });
      assert.equal(lines.length, 2);
      assert.equal(lines[1]?.['count'], 120);
      // --slowest: the 5 slowest measured round trips, slowest first, started on this clock
      // (CLOCK_MONOTONIC) while the client ran; the slowest of 120 is the p99.9.
      const slowest = lines[1]?.['slowest'] as { index: number; atUs: number; us: number }[];
      assert.equal(slowest.length, 5);
      assert.equal(slowest[0]?.us, lines[1]?.['p999us']);
      for (let i = 0; i < slowest.length; i++) {
        const s = slowest[i] as { index: number; atUs: number; us: number };
        assert.ok(s.index >= 0 && s.index < 120, `index ${s.index}`);
        assert.ok(s.atUs > fromUs && s.atUs + s.us < toUs, `started at ${s.atUs}, not in ${fromUs}..${toUs}`);
        if (i > 0) assert.ok(s.us <= (slowest[i - 1] as { us: number }).us);
      }
      // The histogram holds the measured round trips, not the warm-up's.
      const svg = readFileSync(chart, 'utf8');
      const counts = [...svg.matchAll(/class="bar"[^>]*data-count="(\d+)"/g)].map((m) => Number(m[1]));
      assert.equal(
        counts.reduce((a, b) => a + b, 0),
        120,
      );
      // A bad count is a usage error.
      const bad = spawn(process.execPath, [CLI, ...args, '--warmup', '-1'], { env, stdio: 'ignore' });
      assert.equal(await new Promise((resolve) => bad.once('exit', resolve)), 2);
    } finally {
      server.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('cps --warmup: the warm-up connections are made (ferryd accepts them all), the figures count only the measured ones', async () => {
    const env = { ...process.env, FERRY_SOCKET: daemon.socket };
    const server = spawn(process.execPath, [CLI, 'perf', 'server', '--uri', 'tcp://127.0.0.1:0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const accepted = async () =>
      Number(((await daemon.stats())['session'] as Record<string, number>)['accepted']);
    try {
      const listening = String((await firstJsonLine(server, 'perf server'))['listening']);
      const before = await accepted();
      const args = ['perf', 'client', '--uri', listening, '--workload', 'cps', '--count', '30'];
      const { code, lines } = await runJsonLines(
        [...args, '--warmup', '45', '--concurrency', '4', '--json'],
        env,
      );
      assert.equal(code, 0);
      assert.deepEqual(lines[0], { phase: 'start' });
      assert.equal(lines.length, 2);
      assert.equal(lines[1]?.['count'], 30);
      // What the warm-up took is reported beside the measured figures.
      const warm = lines[1]?.['warmup'] as { count: number; seconds: number; cpuUs: number };
      assert.equal(warm.count, 45);
      assert.ok(warm.seconds > 0 && warm.cpuUs > 0, JSON.stringify(warm));
      const seconds = lines[1]?.['seconds'] as number;
      assert.ok(Math.abs((lines[1]?.['perSecond'] as number) - 30 / seconds) < 1e-6 * (30 / seconds));
      // 45 + 30 connections reached the server (fast connects are counted once ferryd hears of them).
      let seen = 0;
      await eventually(
        async () => {
          seen = (await accepted()) - before;
          return seen >= 75;
        },
        10_000,
        'ferryd to count the connections',
      );
      assert.equal(seen, 75);
    } finally {
      server.kill('SIGTERM');
    }
  });
});
