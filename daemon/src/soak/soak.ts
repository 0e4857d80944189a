/**
 * `npm run soak`: many apps connecting, transferring and dying at random against one ferryd, for
 * minutes. Every transfer is an echo checked by sha256 at the client; a transfer whose two apps
 * both lived through it must deliver every byte intact, one that lost an app may fail, but only
 * with a clear code. At the end every app goes (half killed, half exiting) and ferryd must hold
 * zero apps, sessions, segments and listeners, and exactly the fds it had before the first app
 * (from `ferry show stats --json` and /proc/<pid>/fd). Exit status 0 when all of that held.
 *
 * Options (flags or FERRY_SOAK_*): --duration-s (180), --apps (8), --concurrency (12),
 * --kill-every-ms (mean time between app kills, 2500), --max-bytes (2 MiB), --seed.
 */
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  type AppEvent,
  type AppHandle,
  type DaemonHandle,
  startApp,
  startDaemon,
} from '../testing/harness.js';
import { prng } from '../testing/hostile.js';

const CLI = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));

const { values } = parseArgs({
  options: {
    'duration-s': { type: 'string' },
    apps: { type: 'string' },
    concurrency: { type: 'string' },
    'kill-every-ms': { type: 'string' },
    'max-bytes': { type: 'string' },
    seed: { type: 'string' },
  },
});
const num = (flag: string | undefined, env: string, dflt: number): number => {
  const v = Number(flag ?? process.env[env] ?? dflt);
  if (!Number.isFinite(v) || v < 0) throw new Error(`bad value for ${env}: ${flag ?? process.env[env]}`);
  return v;
};
const DURATION_MS = 1000 * num(values['duration-s'], 'FERRY_SOAK_DURATION_S', 180);
const APPS = Math.max(2, num(values.apps, 'FERRY_SOAK_APPS', 8));
const CONCURRENCY = Math.max(1, num(values.concurrency, 'FERRY_SOAK_CONCURRENCY', 12));
const KILL_EVERY_MS = num(values['kill-every-ms'], 'FERRY_SOAK_KILL_EVERY_MS', 2500);
const MAX_BYTES = num(values['max-bytes'], 'FERRY_SOAK_MAX_BYTES', 2 * 1024 * 1024);
const SEED = num(values.seed, 'FERRY_SOAK_SEED', Date.now() % 1_000_000);

/** An app slot: the process in it changes when it is killed and replaced. */
interface Slot {
  app: AppHandle;
  uri: string;
  /** Bumped when the app is killed: transfers that saw another generation may fail. */
  gen: number;
  dying: boolean;
}

const stats = {
  transfers: 0,
  intact: 0,
  bytesVerified: 0,
  failedWithKilledApp: 0,
  abortedOnPurpose: 0,
  unexpected: [] as string[],
  kills: 0,
  spawned: 0,
  failureCodes: {} as Record<string, number>,
  rssMax: 0,
  sessionsMax: 0,
};

function log(line: string): void {
  process.stdout.write(`soak: ${line}\n`);
}

async function ferryShow(socket: string, what: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [CLI, 'show', what, '--json', '--socket', socket], (err, out) => {
      if (err) reject(err);
      else resolve(JSON.parse(out) as Record<string, unknown>);
    });
  });
}

function fdsOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function spawnSlot(d: DaemonHandle): Promise<{ app: AppHandle; uri: string }> {
  const app = await startApp(d.socket);
  stats.spawned++;
  const r = await app.ok({ op: 'listen', uri: 'tcp://127.0.0.1:0', behavior: 'echo' });
  return { app, uri: String(r['uri']) };
}

/** The first event matching `pred`, or null when the app exits or the time runs out. */
async function eventOrExit(
  app: AppHandle,
  pred: (e: AppEvent) => boolean,
  ms: number,
): Promise<AppEvent | null> {
  return Promise.race([
    app.waitFor(pred, ms).catch(() => null),
    app.exited.then(() => app.events.find(pred) ?? null),
  ]);
}

function countCode(code: string): void {
  stats.failureCodes[code] = (stats.failureCodes[code] ?? 0) + 1;
}

async function transfer(id: number, slots: Slot[], rnd: () => number): Promise<void> {
  const c = slots[Math.floor(rnd() * slots.length)] as Slot;
  const s = slots[Math.floor(rnd() * slots.length)] as Slot;
  if (c.dying || s.dying) return;
  const [cApp, cGen, sGen, uri] = [c.app, c.gen, s.gen, s.uri];
  const lostAnApp = () => c.gen !== cGen || s.gen !== sGen;
  const tag = `t${id}`;
  const bytes = Math.floor(rnd() * rnd() * MAX_BYTES);
  const chunk = 1 + Math.floor(rnd() * 65_536);
  const fifoSize = rnd() < 0.5 ? 0 : 4096 << Math.floor(rnd() * 9);
  const abort = rnd() < 0.05;
  stats.transfers++;
  const fail = (what: string, code: string) => {
    countCode(code);
    if (lostAnApp()) stats.failedWithKilledApp++;
    else stats.unexpected.push(`${tag} (${bytes} B, fifo ${fifoSize}): ${what}: ${code}`);
  };
  const conn = await cApp.call({ op: 'connect', tag, uri, ...(fifoSize ? { fifoSize } : {}) }, 30_000);
  if (!conn['ok']) return fail('connect', String(conn['code']));
  const send = await cApp.call({ op: 'send', tag, bytes, seed: id, chunk, end: !abort }, 120_000);
  if (!send['ok']) return fail('send', String(send['code']));
  if (abort) {
    await cApp.call({ op: 'reset', tag });
    stats.abortedOnPurpose++;
    return;
  }
  const end = await eventOrExit(
    cApp,
    (e) => e.tag === tag && (e.event === 'end' || e.event === 'error'),
    120_000,
  );
  if (!end) return fail('end', lostAnApp() ? 'APP_EXITED' : 'NO_END_IN_120S');
  if (end.event === 'error') return fail('echo', String(end['code']));
  if (end['rxBytes'] !== bytes || end['sha256'] !== send['sha256']) {
    // Wrong bytes are never expected, killed app or not: a session delivers intact or fails.
    stats.unexpected.push(
      `${tag}: got ${end['rxBytes']} of ${bytes} B, sha ${end['sha256'] === send['sha256']}`,
    );
    return;
  }
  stats.intact++;
  stats.bytesVerified += bytes;
}

async function main(): Promise<number> {
  log(
    `duration ${DURATION_MS / 1000} s, ${APPS} apps, concurrency ${CONCURRENCY}, kill every ~${KILL_EVERY_MS} ms, ` +
      `max ${MAX_BYTES} B per transfer, seed ${SEED}`,
  );
  const rnd = prng(SEED);
  const d = await startDaemon();
  const pid = d.proc.pid ?? 0;
  await new Promise((r) => setTimeout(r, 300));
  const before = await ferryShow(d.socket, 'stats');
  const fdsBefore = fdsOf(pid);
  log(
    `ferryd pid ${pid}: ${before['fds']} fds, rss ${((before['rssBytes'] as number) / 2 ** 20).toFixed(1)} MiB`,
  );

  const slots: Slot[] = [];
  for (let i = 0; i < APPS; i++) slots.push({ ...(await spawnSlot(d)), gen: 0, dying: false });

  const t0 = Date.now();
  const stopAt = t0 + DURATION_MS;
  let nextId = 1;
  const workers = Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < stopAt) await transfer(nextId++, slots, rnd);
  });
  const killer = (async () => {
    while (Date.now() < stopAt) {
      await new Promise((r) => setTimeout(r, KILL_EVERY_MS * (0.2 + 1.6 * rnd())));
      if (Date.now() >= stopAt || KILL_EVERY_MS === 0) break;
      const slot = slots[Math.floor(rnd() * slots.length)] as Slot;
      if (slot.dying) continue;
      slot.dying = true;
      slot.gen++;
      stats.kills++;
      await slot.app.kill('SIGKILL');
      const fresh = await spawnSlot(d);
      slot.app = fresh.app;
      slot.uri = fresh.uri;
      slot.dying = false;
    }
  })();
  const sampler = setInterval(async () => {
    try {
      const st = await d.stats();
      stats.rssMax = Math.max(stats.rssMax, Number(st['rssBytes']));
      stats.sessionsMax = Math.max(stats.sessionsMax, Number(st['sessions']));
      const el = ((Date.now() - t0) / 1000).toFixed(0);
      log(
        `${el} s: ${stats.intact}/${stats.transfers} intact, ${(stats.bytesVerified / 2 ** 20).toFixed(0)} MiB verified, ` +
          `${stats.kills} kills, ferryd ${st['apps']} apps ${st['sessions']} sessions ${st['segments']} segments ` +
          `${st['fds']} fds rss ${(Number(st['rssBytes']) / 2 ** 20).toFixed(0)} MiB, unexpected ${stats.unexpected.length}`,
      );
    } catch {}
  }, 10_000);
  await Promise.all([...workers, killer]);
  clearInterval(sampler);

  // Every app goes: half are killed, half exit on their own.
  for (const [i, s] of slots.entries()) {
    if (i % 2 === 0) await s.app.kill('SIGKILL');
    else {
      await s.app.call({ op: 'exit' }).catch(() => {});
      await Promise.race([s.app.exited, new Promise((r) => setTimeout(r, 5000))]);
      await s.app.kill('SIGKILL');
    }
  }
  let after: Record<string, unknown> = {};
  let fdsAfter = -1;
  const settleEnd = Date.now() + 15_000;
  for (;;) {
    after = await ferryShow(d.socket, 'stats');
    fdsAfter = fdsOf(pid);
    const clean =
      after['apps'] === 0 &&
      after['sessions'] === 0 &&
      after['segments'] === 0 &&
      after['listeners'] === 0 &&
      after['daemonSegments'] === 0 &&
      fdsAfter === fdsBefore;
    if (clean || Date.now() > settleEnd) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const sessions = (await ferryShow(d.socket, 'sessions')) as unknown as unknown[];
  await d.stop();

  const leaks: string[] = [];
  for (const k of [
    'apps',
    'sessions',
    'segments',
    'listeners',
    'daemonSegments',
    'pendingChannels',
  ] as const) {
    if (after[k] !== 0) leaks.push(`${k} ${after[k]}`);
  }
  if (fdsAfter !== fdsBefore) leaks.push(`fds ${fdsAfter} (before ${fdsBefore})`);
  if (Number(after['fds']) !== Number(before['fds']))
    leaks.push(`show fds ${after['fds']} (before ${before['fds']})`);
  if (sessions.length !== 0) leaks.push(`show sessions lists ${sessions.length}`);

  const summary = {
    seed: SEED,
    durationS: Math.round((Date.now() - t0) / 1000),
    apps: APPS,
    concurrency: CONCURRENCY,
    appsSpawned: stats.spawned,
    appsKilled: stats.kills,
    transfers: stats.transfers,
    intact: stats.intact,
    bytesVerified: stats.bytesVerified,
    failedWithKilledApp: stats.failedWithKilledApp,
    abortedOnPurpose: stats.abortedOnPurpose,
    failureCodes: stats.failureCodes,
    unexpected: stats.unexpected.length,
    ferrydRssMaxMiB: +(stats.rssMax / 2 ** 20).toFixed(1),
    ferrydSessionsMax: stats.sessionsMax,
    fdsBefore,
    fdsAfter,
    after: Object.fromEntries(
      ['apps', 'sessions', 'segments', 'listeners', 'daemonSegments', 'pendingChannels'].map((k) => [
        k,
        after[k],
      ]),
    ),
    leaks,
  };
  log(JSON.stringify(summary));
  for (const u of stats.unexpected.slice(0, 20)) log(`unexpected: ${u}`);
  const ok = leaks.length === 0 && stats.unexpected.length === 0 && stats.intact > 0;
  log(ok ? 'PASS' : 'FAIL');
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`soak: ${err.stack ?? err.message}\n`);
    process.exit(2);
  },
);
