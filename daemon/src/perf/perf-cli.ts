/** `ferry perf server|client`: VPP echo-test style tools over the SDK or node:net. */

import { writeFileSync, writeSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { NotifyMode } from '@ferry/sdk';
import { cliInt } from '../cli-numbers.js';
import { perfChartSvg } from './chart.js';
import { type PerfWorkload, runPerf } from './perf-client.js';
import { startPerfServer } from './perf-server.js';
import { PerfRecorder } from './progress.js';
import { type StackName, stackFor } from './stack.js';

export const PERF_HELP = `Usage:
  ferry perf server --uri URI [--stack ferry|net] [--mode interrupt|poll|adaptive]
  ferry perf client --uri URI --workload throughput|rate|rtt|cps [--count N] [--size B]
                    [--concurrency C] [--stack ferry|net] [--mode M] [--fifo-size B] [--json]
                    [--progress] [--chart FILE.svg] [--warmup N] [--slowest N]

URI is any URI the SDK takes (tcp://127.0.0.1:5000); with --stack net, unix:/path or tcp://host:port.
Defaults: throughput 1 GiB in 256 KiB writes; rate 1,000,000 x 64 B; rtt 20,000 x 64 B; cps 5,000
connections, 64 B each, concurrency 8.
Progress goes to stderr (in place on a terminal; --progress: a line a second anywhere).
--chart writes an SVG: throughput over time (100 ms steps), and the RTT histogram for rtt.
--warmup N: N round trips (rtt), connections (cps), messages (rate) or bytes (throughput) first,
left out of every figure (rate and throughput send them over a connection of their own); with
--json a line {"phase":"start"} says when the measured part starts.
--slowest N (rtt): the N slowest round trips in the result, each with its start on CLOCK_MONOTONIC
(us), to line up with a scheduler trace (examples/dist/bench/main.js --sched-trace).
`;

/** What the progress and the chart count, per workload. */
const UNITS: Record<PerfWorkload, string> = {
  throughput: 'bytes',
  rate: 'messages',
  rtt: 'round trips',
  cps: 'connections',
};

const DEFAULTS: Record<PerfWorkload, { count: number; size: number }> = {
  throughput: { count: 1024 * 1024 * 1024, size: 256 * 1024 },
  rate: { count: 1_000_000, size: 64 },
  rtt: { count: 20_000, size: 64 },
  cps: { count: 5_000, size: 64 },
};

export async function perfMain(args: string[]): Promise<number> {
  const [role, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      uri: { type: 'string' },
      stack: { type: 'string', default: 'ferry' },
      mode: { type: 'string' },
      workload: { type: 'string', default: 'throughput' },
      count: { type: 'string' },
      size: { type: 'string' },
      concurrency: { type: 'string', default: '8' },
      'fifo-size': { type: 'string' },
      'timeout-ms': { type: 'string', default: '120000' },
      json: { type: 'boolean', default: false },
      progress: { type: 'boolean', default: false },
      chart: { type: 'string' },
      warmup: { type: 'string', default: '0' },
      slowest: { type: 'string', default: '0' },
    },
  });
  if ((role !== 'server' && role !== 'client') || !values.uri) {
    process.stderr.write(PERF_HELP);
    return 2;
  }
  const stackName = values.stack as StackName;
  if (stackName !== 'ferry' && stackName !== 'net') {
    process.stderr.write(`ferry perf: --stack must be ferry or net\n`);
    return 2;
  }
  let fifo: number | undefined;
  let nums: {
    count?: number;
    size?: number;
    concurrency: number;
    timeoutMs: number;
    warmup: number;
    slowest: number;
  };
  try {
    fifo =
      values['fifo-size'] === undefined ? undefined : cliInt('fifo-size', values['fifo-size'], 0, 2 ** 30);
    nums = {
      ...(values.count === undefined ? {} : { count: cliInt('count', values.count, 1, 2 ** 50) }),
      ...(values.size === undefined ? {} : { size: cliInt('size', values.size, 1, 2 ** 30) }),
      concurrency: cliInt('concurrency', values.concurrency, 1, 100_000),
      timeoutMs: cliInt('timeout-ms', values['timeout-ms'], 1, 24 * 3_600_000),
      warmup: cliInt('warmup', values.warmup, 0, 2 ** 40),
      slowest: cliInt('slowest', values.slowest, 0, 100_000),
    };
  } catch (err) {
    process.stderr.write(`ferry perf: ${(err as Error).message}\n`);
    return 2;
  }
  const stack = stackFor(stackName, {
    ...(values.mode ? { mode: values.mode as NotifyMode } : {}),
    ...(fifo ? { rxFifoSize: fifo, txFifoSize: fifo } : {}),
  });
  if (role === 'server') {
    const srv = await startPerfServer(stack, values.uri);
    process.stdout.write(`${JSON.stringify({ listening: srv.uri })}\n`);
    await new Promise<void>((resolve) => {
      process.once('SIGTERM', resolve);
      process.once('SIGINT', resolve);
    });
    srv.close();
    // A poll-mode notifier keeps the loop busy forever; exit so that SIGTERM ends the server (and
    // --cpu-prof gets written) in every mode.
    process.exit(0);
  }
  const workload = values.workload as PerfWorkload;
  const d = DEFAULTS[workload];
  if (!d) {
    process.stderr.write(`ferry perf: unknown workload ${values.workload}\n`);
    return 2;
  }
  const count = nums.count ?? d.count;
  const size = nums.size ?? d.size;
  const tty = process.stderr.isTTY === true;
  const unit = UNITS[workload];
  const recorder = new PerfRecorder(
    count,
    unit,
    values.progress || tty ? (line) => process.stderr.write(line) : null,
    tty,
  );
  let rtt: readonly number[] = [];
  // The phase line goes straight to fd 1 (writeSync), not through process.stdout: a stream write
  // there, when the warm-up ends, ran the stream code the round trips run with another receiver
  // (stdout is a net.Socket too: node:net's Socket._write, writeOrBuffer, onwrite were compiled
  // again during the measured part) or invalidated it (Ferry's #pull and onStreamRead were
  // deoptimized for "code dependencies" by the first write); the compile jobs run on V8's worker
  // threads and take a CPU from the client or the server (BENCHMARKS.md, tail1, session 7).
  const phaseLine = (): void => {
    writeSync(1, `${JSON.stringify({ phase: 'start' })}\n`);
  };
  recorder.start();
  const r = await runPerf(stack, {
    workload,
    target: values.uri,
    count,
    size,
    concurrency: nums.concurrency,
    timeoutMs: nums.timeoutMs,
    onProgress: (n) => recorder.add(n),
    onRttSamples: (s) => {
      rtt = s;
    },
    warmup: nums.warmup,
    slowest: nums.slowest,
    ...(values.json && nums.warmup > 0 ? { onMeasureStart: phaseLine } : {}),
  }).finally(() => recorder.stop());
  if (values.chart) {
    const title = `ferry perf ${r.workload} (${r.stack}, ${r.target})`;
    writeFileSync(
      values.chart,
      perfChartSvg({ title, unit: `${unit}/s`, timeline: recorder.timeline, rttUs: rtt }),
    );
  }
  if (values.json)
    process.stdout.write(`${JSON.stringify(values.chart ? { ...r, chart: values.chart } : r)}\n`);
  else {
    const extra =
      r.p50us !== undefined
        ? ` p50 ${r.p50us.toFixed(1)} us p99 ${r.p99us?.toFixed(1)} us p999 ${r.p999us?.toFixed(1)} us`
        : '';
    const rate = r.gbps !== undefined ? `${r.gbps.toFixed(2)} GB/s` : `${Math.round(r.perSecond)} /s`;
    process.stdout.write(
      `${r.stack} ${r.workload} ${r.target}: ${rate} in ${r.seconds.toFixed(3)} s${extra}\n`,
    );
  }
  // Attachments stay referenced while sockets linger in close; the run is over.
  process.exit(0);
}
