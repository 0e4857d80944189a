/**
 * The scale run: one ferryd, a few server and client app processes, thousands of concurrent
 * cut-through sessions each echoing a distinct message, and ferryd's memory per session. Used by
 * `npm run scale` (10,000 sessions) and by a smaller test in `npm test`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { AppHandle, type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';

const SCALE_APP = fileURLToPath(new URL('./scale-app.js', import.meta.url));

export interface ScaleOptions {
  sessions: number;
  clients: number;
  servers: number;
  /** Bytes each session echoes. */
  bytes: number;
  /** Fifo size per direction (bytes); 0 = ferryd's default (1 MiB). */
  fifoSize: number;
  /** Connects in flight per client. */
  concurrency: number;
  log?: (line: string) => void;
}

export interface ScaleResult {
  sessions: number;
  opened: number;
  intact: number;
  openMs: number;
  echoMs: number;
  connectCodes: Record<string, number>;
  ferryd: {
    sessionEnds: number;
    segments: number;
    segmentBytes: number;
    rssBaseBytes: number;
    rssLoadedBytes: number;
    rssAnonDeltaBytes: number;
    rssShmemDeltaBytes: number;
    rssDeltaPerSessionBytes: number;
    anonDeltaPerSessionBytes: number;
    fdsBase: number;
    fdsLoaded: number;
  };
  /** Shared memory the sessions' fifos and the queues occupy (allocated, not touched). */
  fifoBytesPerSession: number;
  afterClose: Record<string, unknown>;
}

function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(VmRSS|RssAnon|RssFile|RssShmem):\s+(\d+) kB/.exec(line);
    if (m) out[m[1] as string] = Number(m[2]) * 1024;
  }
  return out;
}

async function settledStatus(pid: number): Promise<Record<string, number>> {
  // A few samples a little apart: the smallest is the least disturbed by a transient allocation.
  let best: Record<string, number> = procStatus(pid);
  for (let i = 0; i < 4; i++) {
    await new Promise((r) => setTimeout(r, 250));
    const s = procStatus(pid);
    if ((s['VmRSS'] ?? 0) < (best['VmRSS'] ?? 0)) best = s;
  }
  return best;
}

async function app(d: DaemonHandle): Promise<AppHandle> {
  const a = new AppHandle(d.socket, {}, SCALE_APP);
  await a.ready();
  return a;
}

export async function runScale(o: ScaleOptions): Promise<ScaleResult> {
  const log = o.log ?? (() => {});
  const d = await startDaemon();
  const pid = d.proc.pid ?? 0;
  const apps: AppHandle[] = [];
  try {
    const servers: { app: AppHandle; uri: string }[] = [];
    for (let i = 0; i < o.servers; i++) {
      const a = await app(d);
      apps.push(a);
      const r = await a.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0' });
      servers.push({ app: a, uri: String(r['uri']) });
    }
    const clients: AppHandle[] = [];
    for (let i = 0; i < o.clients; i++) {
      const a = await app(d);
      apps.push(a);
      clients.push(a);
    }
    const base = await settledStatus(pid);
    const baseStats = await d.stats();
    log(`ferryd base: rss ${(base['VmRSS'] ?? 0) / 2 ** 20} MiB, ${baseStats['fds']} fds`);

    // Sessions are spread over every client-server pair.
    const t0 = performance.now();
    const per = Math.ceil(o.sessions / o.clients);
    const opens = clients.map((c, i) => {
      const n = Math.min(per, o.sessions - i * per);
      const s = servers[i % servers.length] as { uri: string };
      return c.ok(
        {
          op: 'open',
          uri: s.uri,
          sessions: Math.max(0, n),
          concurrency: o.concurrency,
          fifoSize: o.fifoSize,
        },
        600_000,
      );
    });
    const opened = await Promise.all(opens);
    const openMs = Math.round(performance.now() - t0);
    const codes: Record<string, number> = {};
    let total = 0;
    for (const r of opened) {
      total += Number(r['opened']);
      for (const [k, v] of Object.entries(r['codes'] as Record<string, number>))
        codes[k] = (codes[k] ?? 0) + v;
    }
    log(`opened ${total}/${o.sessions} sessions in ${openMs} ms ${JSON.stringify(codes)}`);
    const loadedStats = await d.stats();

    const t1 = performance.now();
    const echoes = await Promise.all(clients.map((c) => c.ok({ op: 'echo', bytes: o.bytes }, 600_000)));
    const echoMs = Math.round(performance.now() - t1);
    const intact = echoes.reduce((n, r) => n + Number(r['intact']), 0);
    log(`${intact}/${total} sessions echoed ${o.bytes} B intact in ${echoMs} ms`);
    const loaded = await settledStatus(pid);
    const loadedFds = Number((await d.stats())['fds']);

    await Promise.all(clients.map((c) => c.ok({ op: 'close' }, 600_000)));
    let afterClose: Record<string, unknown> = {};
    await eventually(
      async () => {
        afterClose = await d.stats();
        return afterClose['sessions'] === 0;
      },
      60_000,
      'every session freed',
    ).catch(() => {});

    const sessionsN = Math.max(1, total);
    const footprint = (size: number) => 192 + size;
    const fifo = o.fifoSize || 1024 * 1024;
    return {
      sessions: o.sessions,
      opened: total,
      intact,
      openMs,
      echoMs,
      connectCodes: codes,
      ferryd: {
        sessionEnds: Number(loadedStats['sessions']),
        segments: Number(loadedStats['segments']),
        segmentBytes: Number(loadedStats['segmentBytes']),
        rssBaseBytes: base['VmRSS'] ?? 0,
        rssLoadedBytes: loaded['VmRSS'] ?? 0,
        rssAnonDeltaBytes: (loaded['RssAnon'] ?? 0) - (base['RssAnon'] ?? 0),
        rssShmemDeltaBytes: (loaded['RssShmem'] ?? 0) - (base['RssShmem'] ?? 0),
        rssDeltaPerSessionBytes: Math.round(((loaded['VmRSS'] ?? 0) - (base['VmRSS'] ?? 0)) / sessionsN),
        anonDeltaPerSessionBytes: Math.round(((loaded['RssAnon'] ?? 0) - (base['RssAnon'] ?? 0)) / sessionsN),
        fdsBase: Number(baseStats['fds']),
        fdsLoaded: loadedFds,
      },
      fifoBytesPerSession: 2 * footprint(fifo),
      afterClose: {
        apps: afterClose['apps'],
        sessions: afterClose['sessions'],
        segments: afterClose['segments'],
      },
    };
  } finally {
    for (const a of apps) await a.kill();
    await d.stop();
  }
}
