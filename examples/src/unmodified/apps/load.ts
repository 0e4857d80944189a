/**
 * A load generator for the benchmark: autocannon's own API, run as its own process (plain or
 * under the hook, like the server). `node load.js URL [--socket-path P] [--connections N]
 * [--duration-s S]` prints one JSON line: requests, req/s, latency p50/p99 (ms), errors, non-2xx
 * and this process's CPU time (user + system, µs) over the run.
 */
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    'socket-path': { type: 'string' },
    connections: { type: 'string', default: '16' },
    'duration-s': { type: 'string', default: '5' },
  },
});
const url = positionals[0] ?? 'http://127.0.0.1:8080/hello';
const cpu0 = process.cpuUsage();
const result = await autocannon({
  url,
  connections: Number(values.connections),
  duration: Number(values['duration-s']),
  ...(values['socket-path'] ? { socketPath: values['socket-path'] } : {}),
});
const cpu = process.cpuUsage(cpu0);
console.log(
  JSON.stringify({
    requests: result.requests.total,
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors,
    non2xx: result.non2xx,
    timeouts: result.timeouts,
    cpuUs: cpu.user + cpu.system,
  }),
);
