/**
 * `npm run scale`: 10,000 concurrent cut-through sessions in one ferryd, each echoing, and
 * ferryd's memory per session (BENCHMARKS.md). Options: --sessions (10000), --clients (4),
 * --servers (2), --bytes (1024), --fifo-size (4096), --concurrency (64 connects in flight per
 * client). Exit status 0 when every session opened and echoed intact.
 */
import { parseArgs } from 'node:util';
import { cliInt } from '../cli-numbers.js';
import { runScale } from './scale-run.js';

const { values } = parseArgs({
  options: {
    sessions: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '4' },
    servers: { type: 'string', default: '2' },
    bytes: { type: 'string', default: '1024' },
    'fifo-size': { type: 'string', default: '4096' },
    concurrency: { type: 'string', default: '64' },
  },
});

const log = (line: string) => process.stdout.write(`scale: ${line}\n`);
const r = await runScale({
  sessions: cliInt('sessions', values.sessions, 1, 1_000_000),
  clients: cliInt('clients', values.clients, 1, 1024),
  servers: cliInt('servers', values.servers, 1, 1024),
  bytes: cliInt('bytes', values.bytes, 1, 2 ** 30),
  fifoSize: cliInt('fifo-size', values['fifo-size'], 0, 2 ** 30),
  concurrency: cliInt('concurrency', values.concurrency, 1, 100_000),
  log,
});
const f = r.ferryd;
const mib = (b: number) => (b / 2 ** 20).toFixed(1);
log(JSON.stringify(r));
log(
  `${r.opened} sessions (${f.sessionEnds} session ends in ferryd), ${r.intact} echoed intact; ` +
    `ferryd rss ${mib(f.rssBaseBytes)} -> ${mib(f.rssLoadedBytes)} MiB = ${f.rssDeltaPerSessionBytes} B/session ` +
    `(anon ${f.anonDeltaPerSessionBytes} B/session, shmem +${mib(f.rssShmemDeltaBytes)} MiB); ` +
    `${f.segments} segments, ${mib(f.segmentBytes)} MiB of segments allocated, ` +
    `${r.fifoBytesPerSession} B of fifos per session; fds ${f.fdsBase} -> ${f.fdsLoaded}`,
);
process.exit(r.opened === r.sessions && r.intact === r.sessions ? 0 : 1);
