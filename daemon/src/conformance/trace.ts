/**
 * What a user of a socket observes, written down as comparable values: the events in order (with
 * their arguments) and the socket's properties at chosen moments.
 */
import type { SocketLike } from './targets.js';

/** Events a stream user can see. 'data' is recorded only when asked (a listener changes the mode). */
const EVENTS = ['connect', 'ready', 'end', 'finish', 'close', 'error', 'timeout'] as const;

export interface WatchOptions {
  /** Attach a 'data' listener (puts the socket in flowing mode). */
  data?: boolean;
  /** Record 'drain' (only where the scenario controls when writes fill the buffer). */
  drain?: boolean;
}

/**
 * An ordered log of one socket's events. Consecutive 'data' events are merged into one entry
 * with their total size: how bytes are cut into chunks depends on the transport's buffers, which
 * no program may rely on.
 */
export class Trace {
  readonly entries: string[] = [];
  #waiters: { pred: (e: string) => boolean; resolve: () => void }[] = [];

  /** Adds a marker of the scenario's own (a call returned, a callback ran). */
  mark(entry: string): void {
    this.entries.push(entry);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(entry)) return true;
      w.resolve();
      return false;
    });
  }

  data(n: number, kind: string): void {
    const last = this.entries.length - 1;
    const m = /^data:(\w+)\((\d+)\)$/.exec(this.entries[last] ?? '');
    if (m && m[1] === kind) this.entries[last] = `data:${kind}(${Number(m[2]) + n})`;
    else this.mark(`data:${kind}(${n})`);
  }

  has(prefix: string): boolean {
    return this.entries.some((e) => e.startsWith(prefix));
  }

  /**
   * Resolves when an entry starting with `prefix` is (or was) recorded, or after `ms` with a
   * `HUNG(prefix)` entry: every wait is bounded, and a wait that ran out shows in the trace.
   */
  until(prefix: string, ms = 4000): Promise<void> {
    if (this.has(prefix)) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        this.mark(`HUNG(${prefix})`);
        resolve();
      }, ms);
      const waiter = {
        pred: (e: string) => e.startsWith(prefix),
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }
}

export function watch(s: SocketLike, opts: WatchOptions = {}): Trace {
  const t = new Trace();
  for (const ev of EVENTS) {
    s.on(ev, (arg: unknown) => {
      if (ev === 'close') t.mark(`close(${arg === true})`);
      else if (ev === 'error') t.mark(`error(${errCode(arg)})`);
      else t.mark(ev);
    });
  }
  if (opts.drain) s.on('drain', () => t.mark('drain'));
  if (opts.data) {
    s.on('data', (d: Buffer | string) => t.data(d.length, typeof d === 'string' ? 'string' : 'buffer'));
  }
  return t;
}

export function errCode(e: unknown): string {
  if (e === null || e === undefined) return String(e);
  const err = e as { code?: unknown; name?: unknown };
  return String(err.code ?? err.name ?? 'no-code');
}

/** The net.Socket properties a program reads to decide what to do. */
export function props(s: SocketLike): Record<string, unknown> {
  return {
    readyState: s.readyState,
    pending: s.pending,
    connecting: s.connecting,
    destroyed: s.destroyed,
    readable: s.readable,
    writable: s.writable,
    readableEnded: s.readableEnded,
    writableEnded: s.writableEnded,
    writableFinished: s.writableFinished,
    bytesRead: s.bytesRead,
    bytesWritten: s.bytesWritten,
  };
}

/** Resolves with `p`'s value, or with 'HUNG' when it has not settled within `ms` (a liveness
 *  bound: the scenario then reports what it saw, and the comparison shows the difference). */
export async function within<T>(p: Promise<T>, ms = 4000): Promise<T | 'HUNG'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'HUNG'>((r) => {
    timer = setTimeout(() => r('HUNG'), ms);
  });
  try {
    return await Promise.race([p, hung]);
  } finally {
    clearTimeout(timer);
  }
}

export function tick(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
