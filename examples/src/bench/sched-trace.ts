// What the scheduler did during given intervals (the slowest round trips of an RTT run): a private
// tracefs instance records every context switch and wake-up on the machine (sched_switch,
// sched_wakeup) on CLOCK_MONOTONIC, the clock of process.hrtime; afterwards each interval is
// described by how long each watched thread (the client's and the server's main threads) ran,
// waited for a CPU (runnable, not running) or slept, and which other threads held the CPUs
// meanwhile, and for how long.
//
// Why: getrusage and schedstat say that a spinning process lost its CPU, not to whom. On 2 vCPUs
// with two busy processes, any third runnable thread (a V8 helper, ferryd, the bench's parent,
// another engineer's build) takes a CPU from one of them for a scheduler slice; the fix differs
// with the thief.
//
// Needs root and tracefs at /sys/kernel/tracing. The instance is removed when stopped, and its
// clock and buffer are its own: the machine's global tracing is left as it was. Tracing costs about
// a microsecond per context switch, so figures taken under it are a little slower.

import { mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const INSTANCES = '/sys/kernel/tracing/instances';

export interface Switch {
  /** us, CLOCK_MONOTONIC */
  t: number;
  cpu: number;
  prevPid: number;
  prevComm: string;
  /** The state the previous task left in: R / R+ (preempted, still runnable), S, D... */
  prevState: string;
  nextPid: number;
  nextComm: string;
}

export interface Wakeup {
  t: number;
  pid: number;
}

export interface Trace {
  switches: Switch[];
  wakeups: Wakeup[];
  /** Lines the parser did not understand (other events, a truncated line). */
  skipped: number;
  /** Whether the kernel said events were lost (the buffer overran). */
  lost: boolean;
}

/** Instances this process has started and not yet removed (removed on a signal too). */
const live = new Set<SchedTrace>();
let signalsHooked = false;

/**
 * Removes our live instances on SIGINT/SIGTERM, then dies of the signal as it would have: an
 * instance left behind keeps its 64 MiB-per-CPU buffer until someone removes it by hand.
 */
function hookSignals(): void {
  if (signalsHooked) return;
  signalsHooked = true;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const t of live) t.discard();
      process.kill(process.pid, sig);
    });
  }
}

/**
 * Removes instances named `<prefix><pid>` whose process is gone (killed with SIGKILL, say, which no
 * handler sees). Returns the names removed.
 */
export function sweepStale(prefix: string, instances = INSTANCES): string[] {
  let names: string[];
  try {
    names = readdirSync(instances);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(name.slice(prefix.length));
    if (!Number.isSafeInteger(pid) || pid <= 0 || pid === process.pid || alive(pid)) continue;
    try {
      rmdirSync(join(instances, name));
      removed.push(name);
    } catch {
      // Busy or gone.
    }
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class SchedTrace {
  readonly #dir: string;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** Starts recording; throws (with the reason) where tracefs is not there or not writable. */
  static start(name: string, bufferKbPerCpu = 65536): SchedTrace {
    const dir = join(INSTANCES, name);
    try {
      mkdirSync(dir);
    } catch (err) {
      throw new Error(
        `sched trace: cannot create ${dir} (root and tracefs needed): ${(err as Error).message}`,
      );
    }
    const t = new SchedTrace(dir);
    live.add(t);
    hookSignals();
    try {
      t.#write('trace_clock', 'mono');
      t.#write('buffer_size_kb', String(bufferKbPerCpu));
      t.#write('options/overwrite', '0');
      t.#write('events/sched/sched_switch/enable', '1');
      t.#write('events/sched/sched_wakeup/enable', '1');
      t.#write('tracing_on', '1');
    } catch (err) {
      t.#remove();
      throw err;
    }
    return t;
  }

  /** Stops recording, reads what was recorded and removes the instance. */
  stop(): Trace {
    try {
      this.#write('tracing_on', '0');
      return parseTrace(readFileSync(join(this.#dir, 'trace'), 'latin1'));
    } finally {
      this.#remove();
    }
  }

  /** Stops recording and removes the instance without reading it. */
  discard(): void {
    this.#remove();
  }

  #write(file: string, value: string): void {
    writeFileSync(join(this.#dir, file), value);
  }

  #remove(): void {
    live.delete(this);
    try {
      this.#write('tracing_on', '0');
    } catch {
      // Already gone.
    }
    try {
      rmdirSync(this.#dir);
    } catch {
      // Busy or gone: nothing more we can do; it holds only a buffer.
    }
  }
}

const LINE = /^\s*.+?-\d+\s+\[(\d+)\]\s+\S+\s+(\d+)\.(\d+):\s+(sched_switch|sched_wakeup):\s+(.*)$/;
const SWITCH =
  /^prev_comm=(.*) prev_pid=(\d+) prev_prio=-?\d+ prev_state=(\S+) ==> next_comm=(.*) next_pid=(\d+) next_prio=-?\d+$/;
const WAKEUP = /^comm=(.*) pid=(\d+) prio=-?\d+ target_cpu=\d+$/;

/** Parses tracefs's text output of sched_switch and sched_wakeup events. */
export function parseTrace(text: string): Trace {
  const out: Trace = { switches: [], wakeups: [], skipped: 0, lost: false };
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') {
      if (line.includes('LOST')) out.lost = true;
      continue;
    }
    const m = LINE.exec(line);
    if (!m) {
      if (line.includes('LOST')) out.lost = true;
      out.skipped++;
      continue;
    }
    const frac = m[3] as string;
    const t = Number(m[2]) * 1e6 + Number(frac) * 10 ** (6 - frac.length);
    const body = m[5] as string;
    if (m[4] === 'sched_switch') {
      const s = SWITCH.exec(body);
      if (!s) {
        out.skipped++;
        continue;
      }
      out.switches.push({
        t,
        cpu: Number(m[1]),
        prevComm: s[1] as string,
        prevPid: Number(s[2]),
        prevState: s[3] as string,
        nextComm: s[4] as string,
        nextPid: Number(s[5]),
      });
    } else {
      const w = WAKEUP.exec(body);
      if (!w) {
        out.skipped++;
        continue;
      }
      out.wakeups.push({ t, pid: Number(w[2]) });
    }
  }
  return out;
}

interface Span {
  from: number;
  to: number;
}
interface RunSpan extends Span {
  tid: number;
  comm: string;
  cpu: number;
}

/** What ran on each CPU, from one switch to the next (the task before a CPU's first switch is unknown). */
export function runSpans(trace: Trace): RunSpan[] {
  const byCpu = new Map<number, Switch[]>();
  for (const s of trace.switches) {
    const list = byCpu.get(s.cpu) ?? [];
    list.push(s);
    byCpu.set(s.cpu, list);
  }
  const out: RunSpan[] = [];
  for (const [cpu, list] of byCpu) {
    list.sort((a, b) => a.t - b.t);
    for (let i = 0; i + 1 < list.length; i++) {
      const s = list[i] as Switch;
      out.push({ tid: s.nextPid, comm: s.nextComm, cpu, from: s.t, to: (list[i + 1] as Switch).t });
    }
  }
  return out.sort((a, b) => a.from - b.from);
}

/** A thread's time split by state: on a CPU, runnable and waiting for one, asleep. */
export interface ThreadStates {
  run: Span[];
  wait: Span[];
}

/**
 * The run and wait spans of thread `tid`. Waiting starts when it is switched out still runnable
 * (preempted: prev_state R or R+) or when it is woken, and ends when it is switched in.
 */
export function threadStates(trace: Trace, tid: number): ThreadStates {
  type Ev = { t: number; kind: 'in' | 'out' | 'wake'; runnable?: boolean };
  const evs: Ev[] = [];
  for (const s of trace.switches) {
    if (s.nextPid === tid) evs.push({ t: s.t, kind: 'in' });
    if (s.prevPid === tid) evs.push({ t: s.t, kind: 'out', runnable: s.prevState.startsWith('R') });
  }
  for (const w of trace.wakeups) if (w.pid === tid) evs.push({ t: w.t, kind: 'wake' });
  // At one timestamp: a switch out comes before the wake-up and switch in that may follow it.
  const order = { out: 0, wake: 1, in: 2 };
  evs.sort((a, b) => a.t - b.t || order[a.kind] - order[b.kind]);
  const run: Span[] = [];
  const wait: Span[] = [];
  let runFrom = Number.NaN;
  let waitFrom = Number.NaN;
  for (const e of evs) {
    if (e.kind === 'in') {
      if (!Number.isNaN(waitFrom)) wait.push({ from: waitFrom, to: e.t });
      waitFrom = Number.NaN;
      runFrom = e.t;
    } else if (e.kind === 'out') {
      if (!Number.isNaN(runFrom)) run.push({ from: runFrom, to: e.t });
      runFrom = Number.NaN;
      waitFrom = e.runnable ? e.t : Number.NaN;
    } else if (Number.isNaN(runFrom) && Number.isNaN(waitFrom)) {
      waitFrom = e.t;
    }
  }
  return { run, wait };
}

function overlap(spans: readonly Span[], a: number, b: number): number {
  let sum = 0;
  for (const s of spans) {
    const lo = Math.max(a, s.from);
    const hi = Math.min(b, s.to);
    if (hi > lo) sum += hi - lo;
  }
  return sum;
}

/** How an interval went: the watched threads' states, and who else held the CPUs (us). */
export interface IntervalReport {
  watched: Record<string, { run: number; wait: number; sleep: number }>;
  /** Other threads by label, most time first; `idle` is a CPU with nothing to run. */
  others: { who: string; us: number }[];
}

/**
 * Describes [from, from + us) for each interval. `watched` names the threads whose states to give
 * (label -> tid); `label` names any other thread (its tid and comm) for the `others` list.
 */
export function describeIntervals(
  trace: Trace,
  intervals: readonly { atUs: number; us: number }[],
  watched: Record<string, number>,
  label: (tid: number, comm: string) => string,
): IntervalReport[] {
  const spans = runSpans(trace);
  const states = Object.entries(watched).map(([name, tid]) => ({ name, tid, st: threadStates(trace, tid) }));
  const watchedTids = new Set(Object.values(watched));
  return intervals.map(({ atUs, us }) => {
    const a = atUs;
    const b = atUs + us;
    const w: IntervalReport['watched'] = {};
    for (const { name, st } of states) {
      const run = overlap(st.run, a, b);
      const wait = overlap(st.wait, a, b);
      w[name] = { run: round(run), wait: round(wait), sleep: round(Math.max(0, us - run - wait)) };
    }
    const others = new Map<string, number>();
    for (const s of spans) {
      if (s.from >= b) break;
      if (s.to <= a || watchedTids.has(s.tid)) continue;
      const who = s.tid === 0 ? 'idle' : label(s.tid, s.comm);
      others.set(who, (others.get(who) ?? 0) + Math.min(b, s.to) - Math.max(a, s.from));
    }
    return {
      watched: w,
      others: [...others].sort((x, y) => y[1] - x[1]).map(([who, t]) => ({ who, us: round(t) })),
    };
  });
}

const round = (x: number): number => Math.round(x * 10) / 10;

/** The threads of a running process (tids), or none when it is gone. */
export function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** Who a thread belongs to, read from /proc while it lives: `comm` (its process: first words of its command line). */
export function describeThread(tid: number, comm: string): string {
  try {
    const status = readFileSync(`/proc/${tid}/status`, 'latin1');
    const tgid = Number(/\nTgid:\s+(\d+)/.exec(status)?.[1]);
    const cmd = readFileSync(`/proc/${tgid}/cmdline`, 'latin1').split('\0').filter(Boolean);
    const main = tgid === tid ? 'main' : 'thread';
    // The script and its first arguments tell node processes apart (a ferryd, a tsc, a test).
    const words = cmd
      .slice(0, 4)
      .map((w) => w.split('/').slice(-2).join('/'))
      .join(' ');
    return `${comm} ${main} of ${words}`.slice(0, 110);
  } catch {
    return `${comm} (gone)`;
  }
}

/**
 * How often and how long each labelled thread ran within [from, to) (us): what would take a CPU
 * from a spinning main thread on a machine with nothing else to run. Unlabelled threads are left out.
 */
export function activity(
  trace: Trace,
  from: number,
  to: number,
  label: (tid: number) => string | undefined,
): Record<string, { runs: number; us: number }> {
  const out: Record<string, { runs: number; us: number }> = {};
  for (const s of runSpans(trace)) {
    if (s.to <= from || s.from >= to) continue;
    const who = label(s.tid);
    if (who === undefined) continue;
    const a = out[who] ?? { runs: 0, us: 0 };
    out[who] = a;
    a.runs++;
    a.us = round(a.us + Math.min(to, s.to) - Math.max(from, s.from));
  }
  return out;
}
