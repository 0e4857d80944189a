// Test and benchmark harness: dpdk-testpmd as a memif peer, driven interactively through stdin
// (the interop tests beside it, the memif examples' tests, `npm run bench:memif`). The pitfalls
// it works around: stdout is block-buffered into pipes (hence `stdbuf -oL`); there are no
// hugepages (`--no-huge -m`, a small mbuf pool); two instances need `--no-shconf`; a DPDK process
// whose peer vanishes while it forwards can crash, so forwarding is stopped before any disconnect
// this harness controls; every child is killed on exit so a failed test never leaves a process
// busy-polling a CPU.

import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ForwardStats,
  type PortInfo,
  type PortStats,
  parseForwardStats,
  parsePortInfo,
  parsePortStats,
} from './testpmd-parse.js';

export type { ForwardStats, PortInfo, PortStats } from './testpmd-parse.js';

export const TESTPMD = 'dpdk-testpmd';
const PROMPT = 'testpmd> ';

let availability: boolean | undefined;

/** True when dpdk-testpmd and stdbuf are on PATH (cached). */
export function testpmdAvailable(): boolean {
  if (availability === undefined) {
    const r = spawnSync('sh', ['-c', `command -v ${TESTPMD} && command -v stdbuf`], { stdio: 'ignore' });
    availability = r.status === 0;
  }
  return availability;
}

/**
 * For node:test's `skip` option: false when testpmd is there; a reason to skip otherwise. In CI
 * (`CI=true`) a missing testpmd is an error, not a skip: `.ci/run` installs it.
 */
export function testpmdSkip(): false | string {
  if (testpmdAvailable()) return false;
  if (process.env['CI'] === 'true') {
    throw new Error(
      `${TESTPMD} is missing in CI: .ci/run should have installed dpdk-dev and librte-net-memif23`,
    );
  }
  return `${TESTPMD} not installed (apt-get install -y --no-install-recommends dpdk-dev librte-net-memif23)`;
}

export type ForwardMode = 'rxonly' | 'txonly' | 'io' | 'macswap' | 'flowgen' | 'icmpecho' | `${string} retry`;

export interface TestpmdOptions {
  role: 'server' | 'client';
  /** Ferry spelling: '/path' (filesystem) or '@name' (abstract; DPDK's `socket=name`). */
  socket: string;
  id?: number;
  secret?: string;
  /** DPDK `bsize` (default 2048; only a client's value shapes the memory). */
  bufferSize?: number;
  /** DPDK `rsize`: log2 ring size (default 10). */
  ringSize?: number;
  rxq?: number;
  txq?: number;
  /** Client only: DPDK's `zero-copy=yes` (regions 1.. are its own memory; adds --single-file-segments). */
  zeroCopy?: boolean;
  /** EAL `-m` in MB (default 64) and testpmd `--total-num-mbufs` (default 4096). */
  memMb?: number;
  mbufs?: number;
  /** EAL lcore map; default cross-pinned by role so a server and a client use different CPUs. */
  lcores?: string;
  /** Forwarding mode set with `--forward-mode` at startup (default io; see `setFwd`). */
  forwardMode?: string;
  /** Adds `--log-level=pmd.net.memif,debug` (handshake messages in `output`). */
  debug?: boolean;
  /** Extra testpmd application arguments (after `--`). */
  appArgs?: string[];
  /** How long to wait for the first prompt (default 15 s: the machine may be busy). */
  startTimeoutMs?: number;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

/** A private temp directory for socket files; `cleanup()` removes it. */
export function tempSocketDir(prefix = 'ferry-tp-'): {
  dir: string;
  path(name: string): string;
  cleanup(): void;
} {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    path: (name: string) => join(dir, name),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A unique abstract socket name in Ferry's spelling ('@...'). */
export function uniqueAbstractName(tag: string): string {
  return `@ferry-tp-${tag}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

function vdevArg(o: TestpmdOptions): string {
  const parts = [`net_memif0`, `role=${o.role}`, `id=${o.id ?? 0}`];
  if (o.socket.startsWith('@')) parts.push(`socket=${o.socket.slice(1)}`, 'socket-abstract=yes');
  else parts.push(`socket=${o.socket}`, 'socket-abstract=no');
  if (o.secret !== undefined) parts.push(`secret=${o.secret}`);
  if (o.bufferSize !== undefined) parts.push(`bsize=${o.bufferSize}`);
  if (o.ringSize !== undefined) parts.push(`rsize=${o.ringSize}`);
  if (o.zeroCopy) parts.push('zero-copy=yes');
  return `--vdev=${parts.join(',')}`;
}

export class Testpmd {
  readonly options: TestpmdOptions;
  readonly child: ChildProcess;
  /** Everything testpmd printed so far (for diagnostics). */
  output = '';
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<number | string>;
  #forwarding = false;
  #queue: Promise<unknown> = Promise.resolve();
  #waiter: (() => void) | undefined;
  #gone = false;
  /** stdout alone: the prompt is written there, and stderr lines can land in the middle of it. */
  #stdout = '';

  private constructor(options: TestpmdOptions, child: ChildProcess) {
    this.options = options;
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.#gone = true;
        live.delete(child);
        resolve(code ?? signal ?? 'unknown');
        this.#waiter?.();
      });
    });
    const onData = (d: Buffer) => {
      // Interactive testpmd prints only what it is asked for (plus link events): the log stays small.
      this.output += d.toString('latin1');
      this.#waiter?.();
    };
    child.stdout?.on('data', (d: Buffer) => {
      this.#stdout += d.toString('latin1');
      onData(d);
    });
    child.stderr?.on('data', onData);
    child.stdin?.on('error', () => {
      // EPIPE when testpmd died: reported through `exited` / command errors instead.
    });
  }

  /** Spawns testpmd and waits for its first prompt. A stale socket file at the path is removed. */
  static async start(options: TestpmdOptions): Promise<Testpmd> {
    if (!testpmdAvailable()) throw new Error(`${TESTPMD} is not installed`);
    installExitHook();
    if (options.role === 'server' && !options.socket.startsWith('@')) rmSync(options.socket, { force: true });
    const lcores = options.lcores ?? (options.role === 'server' ? '0@0,1@1' : '0@1,1@0');
    const eal = [
      `--lcores=${lcores}`,
      '--no-huge',
      '-m',
      String(options.memMb ?? 64),
      '--no-pci',
      '--no-shconf',
      '--no-telemetry',
      vdevArg(options),
    ];
    if (options.debug) eal.push('--log-level=pmd.net.memif,debug');
    if (options.zeroCopy) eal.push('--single-file-segments');
    const app = ['-i', `--total-num-mbufs=${options.mbufs ?? 4096}`];
    if (options.rxq !== undefined) app.push(`--rxq=${options.rxq}`);
    if (options.txq !== undefined) app.push(`--txq=${options.txq}`);
    if (options.forwardMode !== undefined) app.push(`--forward-mode=${options.forwardMode}`);
    app.push(...(options.appArgs ?? []));
    const child = spawn('stdbuf', ['-oL', '-eL', TESTPMD, ...eal, '--', ...app], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    live.add(child);
    const tp = new Testpmd(options, child);
    try {
      await tp.#waitFor(() => tp.#stdout.includes(PROMPT), options.startTimeoutMs ?? 15_000, 'first prompt');
    } catch (e) {
      await tp.kill();
      throw e;
    }
    return tp;
  }

  get running(): boolean {
    return !this.#gone;
  }

  get forwarding(): boolean {
    return this.#forwarding;
  }

  async #waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!cond()) {
      if (this.#gone) throw new Error(`testpmd exited while waiting for ${what}; output:\n${this.tail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`testpmd: no ${what} within ${timeoutMs} ms; output:\n${this.tail()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.#waiter = undefined;
    }
  }

  /** The last few KB of output, for error messages. */
  tail(chars = 3000): string {
    return this.output.slice(-chars);
  }

  /**
   * Sends one command line and resolves with what testpmd printed before its next prompt.
   * Commands are serialized. Rejects if testpmd exits or does not answer within `timeoutMs`.
   */
  cmd(line: string, timeoutMs = 10_000): Promise<string> {
    const run = async (): Promise<string> => {
      if (this.#gone) throw new Error(`testpmd is not running (command '${line}'); output:\n${this.tail()}`);
      const from = this.output.length;
      this.child.stdin?.write(`${line}\n`);
      // testpmd echoes the command line (CR LF), prints its answer, then the next prompt. Link
      // events can print at any time, so look for the first prompt after the echo rather than
      // requiring the output to end with one.
      const echo = `${line}\r\n`;
      let answerAt = -1;
      let promptAt = -1;
      await this.#waitFor(
        () => {
          if (answerAt < 0) {
            const e = this.output.indexOf(echo, from);
            if (e < 0) return false;
            answerAt = e + echo.length;
          }
          promptAt = this.output.indexOf(PROMPT, answerAt);
          return promptAt >= 0;
        },
        timeoutMs,
        `answer to '${line}'`,
      );
      return this.output.slice(answerAt, promptAt);
    };
    const p = this.#queue.then(run, run);
    this.#queue = p.catch(() => undefined);
    return p;
  }

  async setFwd(mode: ForwardMode): Promise<void> {
    const out = await this.cmd(`set fwd ${mode}`);
    if (!/Set .* packet forwarding mode/.test(out))
      throw new Error(`testpmd: 'set fwd ${mode}' failed: ${out}`);
  }

  /** `start`: begins forwarding (the forwarding lcore busy-polls its CPU until `stop`). */
  async startFwd(): Promise<void> {
    const out = await this.cmd('start');
    if (!out.includes('packet forwarding') || /not possible|Fail/.test(out)) {
      throw new Error(`testpmd: 'start' failed: ${out}`);
    }
    this.#forwarding = true;
  }

  /** `stop`: ends forwarding and returns port 0's forward statistics (deltas since `start`). */
  async stopFwd(): Promise<ForwardStats | undefined> {
    const out = await this.cmd('stop', 15_000);
    this.#forwarding = false;
    return parseForwardStats(out, 0);
  }

  async portStats(port = 0): Promise<PortStats> {
    return parsePortStats(await this.cmd(`show port stats ${port}`));
  }

  async portInfo(port = 0): Promise<PortInfo> {
    return parsePortInfo(await this.cmd(`show port info ${port}`));
  }

  /** `port start 0`: a DPDK client connects only when its port starts and never retries by itself. */
  async portStart(port = 0): Promise<string> {
    return await this.cmd(`port start ${port}`);
  }

  /**
   * Waits until port 0's link is up. For a client, also re-issues `port start 0` now and then: if
   * the server was not listening when the port started, DPDK gave up and will not retry.
   */
  async waitLinkUp(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let lastStart = Date.now();
    for (;;) {
      const info = await this.portInfo();
      if (info.linkUp) return;
      if (Date.now() > deadline)
        throw new Error(`testpmd: link not up within ${timeoutMs} ms; output:\n${this.tail()}`);
      if (this.options.role === 'client' && Date.now() - lastStart > 500) {
        lastStart = Date.now();
        // The reply is not checked: "Port 0 is now not stopped" is fine too (started, not connected yet).
        await this.portStart();
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async waitLinkDown(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.portInfo()).linkUp) {
      if (Date.now() > deadline) throw new Error(`testpmd: link still up after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Stops cleanly: `stop` if forwarding (so DPDK never sees its peer vanish mid-forwarding), then
   * `quit`; SIGKILL if that takes more than a few seconds. Removes the socket file. Idempotent.
   */
  async close(): Promise<void> {
    if (!this.#gone) {
      try {
        if (this.#forwarding) await this.stopFwd();
        this.child.stdin?.write('quit\n');
        this.child.stdin?.end();
      } catch {
        // fall through to the kill below
      }
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.exited;
      clearTimeout(timer);
    }
    this.#removeSocket();
  }

  /**
   * CPU time (user + system, ms) used so far by testpmd's forwarding lcores (threads named
   * `rte-worker-N`); with packet counts it gives a CPU cost per packet that does not depend on how
   * busy the machine is. Resolution: the kernel's clock tick (10 ms).
   */
  workerCpuMs(): number {
    const pid = this.child.pid;
    if (pid === undefined || this.#gone) return 0;
    let ticks = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      try {
        if (!readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').startsWith('rte-worker')) continue;
        // Fields after the command's closing parenthesis: state is field 3, utime 14, stime 15.
        const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks += Number(f[11]) + Number(f[12]);
      } catch {
        // the thread ended between listing and reading
      }
    }
    return ticks * 10; // USER_HZ is 100 on Linux
  }

  /** Kills testpmd at once (SIGKILL by default), e.g. to test a peer dying mid-traffic. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.#gone) this.child.kill(signal);
    await this.exited;
    this.#forwarding = false;
    this.#removeSocket();
  }

  #removeSocket(): void {
    // DPDK removes its listener's file only on a clean exit.
    if (this.options.role === 'server' && !this.options.socket.startsWith('@')) {
      rmSync(this.options.socket, { force: true });
    }
  }
}
