// Is this machine's CPU contended? Adaptive wake-up polling asks before it spins.
//
// Why: polling shared memory only pays while a core is free. On a machine with no idle core the
// spinning process takes CPU time the peer (or anything else) needs, and the scheduler lets it keep
// that time for a whole slice (milliseconds), longer than any polling window, so a poll never
// notices it was preempted. Linux's pressure stall information says it directly: the share of
// wall time in which at least one runnable task waited for a CPU ("some" in /proc/pressure/cpu).
// Its cumulative `total` (us) is read at most every SAMPLE_MS, so the answer follows load within a
// tenth of a second and costs one pread per sample. Where PSI is absent (kernels before 4.20, or
// built without it), the fallback is /proc/loadavg's runnable-task count against the CPUs; where
// neither can be read, the answer is always "not contended" (polling as before).

import { closeSync, openSync, readSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Oldest answer reused (ms): a new sample is read when the last one is older. */
const SAMPLE_MS = 50;
/** Stall share above which the CPU counts as contended (tasks waited for a CPU 10% of the time). */
export const CONTENDED_STALL_SHARE = 0.1;

/** The cumulative "some" stall time (us) in /proc/pressure/cpu text, or null when absent or malformed. */
export function parsePressureSomeTotal(text: string): number | null {
  const line = text.split('\n').find((l) => l.startsWith('some '));
  if (line === undefined) return null;
  const m = / total=(\d{1,20})(?:\s|$)/.exec(line);
  if (m === null) return null;
  const total = Number(m[1]);
  return Number.isSafeInteger(total) ? total : null;
}

/** Runnable tasks (the numerator of the 4th field) in /proc/loadavg text, or null when malformed. */
export function parseLoadavgRunnable(text: string): number | null {
  const m = /^\S+ \S+ \S+ (\d{1,9})\/\d{1,9} /.exec(text);
  return m === null ? null : Number(m[1]);
}

interface Source {
  /** Reads the source; null when it cannot be read or parsed (the source is then dropped). */
  sample(): number | null;
  close(): void;
}

/** A file read whole from offset 0 on every call (procfs regenerates it). */
export interface TextFile {
  text(): string | null;
  close(): void;
}

class FileSource implements TextFile {
  readonly #fd: number;
  readonly #buf = Buffer.allocUnsafe(512);
  constructor(path: string) {
    this.#fd = openSync(path, 'r');
  }
  /** The file's text from offset 0 (procfs files regenerate on every read). */
  text(): string | null {
    try {
      const n = readSync(this.#fd, this.#buf, 0, this.#buf.length, 0);
      return this.#buf.toString('latin1', 0, n);
    } catch {
      return null;
    }
  }
  close(): void {
    try {
      closeSync(this.#fd);
    } catch {
      // already gone
    }
  }
}

/**
 * Process-wide answer to "would spinning now take CPU someone else needs?", sampled lazily: the
 * first question opens the source, later ones reuse the last answer for up to SAMPLE_MS.
 */
export class CpuContention {
  #source: Source | null | undefined;
  #kind: 'psi' | 'loadavg' | 'none' = 'none';
  #lastMs = 0;
  #lastTotal = 0;
  #contended = false;
  readonly #cpus: number;
  readonly #now: () => number;
  readonly #open: (path: string) => TextFile;

  constructor(deps?: { now?: () => number; open?: (path: string) => TextFile; cpus?: number }) {
    this.#now = deps?.now ?? (() => performance.now());
    this.#open = deps?.open ?? ((p) => new FileSource(p));
    this.#cpus = deps?.cpus ?? availableParallelism();
  }

  /** Which signal answers: PSI, the runnable-task count, or none (never contended). */
  get kind(): 'psi' | 'loadavg' | 'none' {
    this.#init();
    return this.#kind;
  }

  /** True when, over the last sample, tasks waited for a CPU (or more were runnable than CPUs). */
  contended(): boolean {
    const now = this.#now();
    if (now - this.#lastMs < SAMPLE_MS) return this.#contended;
    this.#init();
    const src = this.#source;
    if (src === null || src === undefined) return false;
    const value = src.sample();
    if (value === null) {
      // The file stopped making sense (hostile or changed procfs): stop asking it.
      src.close();
      this.#source = null;
      this.#kind = 'none';
      this.#contended = false;
      return false;
    }
    if (this.#kind === 'psi') {
      const elapsedUs = (now - this.#lastMs) * 1000;
      const stalledUs = value - this.#lastTotal;
      // The first sample has no interval: keep the previous answer (false) until the next.
      if (this.#lastMs !== 0 && elapsedUs > 0)
        this.#contended = stalledUs / elapsedUs > CONTENDED_STALL_SHARE;
      this.#lastTotal = value;
    } else {
      // The reading task itself is runnable: more runnable tasks than CPUs means someone waits.
      this.#contended = value > this.#cpus;
    }
    this.#lastMs = now;
    return this.#contended;
  }

  /** Closes the file it reads (tests; a process keeps its sampler). */
  close(): void {
    this.#source?.close();
    this.#source = null;
  }

  #init(): void {
    if (this.#source !== undefined) return;
    this.#source = null;
    for (const [path, kind, parse] of [
      ['/proc/pressure/cpu', 'psi', parsePressureSomeTotal],
      ['/proc/loadavg', 'loadavg', parseLoadavgRunnable],
    ] as const) {
      let file: TextFile;
      try {
        file = this.#open(path);
      } catch {
        continue;
      }
      const first = file.text();
      if (first === null || parse(first) === null) {
        file.close();
        continue;
      }
      this.#kind = kind;
      this.#source = {
        sample: () => {
          const t = file.text();
          return t === null ? null : parse(t);
        },
        close: () => file.close(),
      };
      return;
    }
  }
}

let shared: CpuContention | undefined;

/** The process's sampler, shared by every notifier (one pread per SAMPLE_MS in all). */
export function cpuContended(): boolean {
  shared ??= new CpuContention();
  return shared.contended();
}
