/** Small helpers over testcontainers for the suites: init, exec with checks, `ferry show`. */
import { setTimeout as sleep } from 'node:timers/promises';
import { GenericContainer, getContainerRuntimeClient, type StartedTestContainer } from 'testcontainers';

/** GenericContainer with Docker's `--init` (tini as PID 1: signals forwarded, zombies reaped). */
export class InitContainer extends GenericContainer {
  withInit(): this {
    this.hostConfig.Init = true;
    return this;
  }
}

/** Runs a command in a container; returns stdout, throws with its output if it exits non-zero. */
export async function execOk(
  c: StartedTestContainer,
  cmd: string[],
  opts: { user?: string; env?: Record<string, string> } = {},
): Promise<string> {
  const r = await c.exec(cmd, {
    ...(opts.user ? { user: opts.user } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  if (r.exitCode !== 0) {
    throw new Error(`'${cmd.join(' ')}' exited ${r.exitCode}: ${r.stdout}${r.stderr}`);
  }
  return r.stdout;
}

/** Starts a command in the background inside a container (it outlives the exec). */
export async function execDetached(c: StartedTestContainer, cmd: string, logFile: string): Promise<void> {
  await execOk(c, ['sh', '-c', `nohup ${cmd} >${logFile} 2>&1 &`]);
}

/** `ferry show <topic> --json` inside ferryd's container. */
export async function show<T>(ferryd: StartedTestContainer, topic: string): Promise<T> {
  return JSON.parse(await execOk(ferryd, ['ferry', 'show', topic, '--json'])) as T;
}

export interface ShowSession {
  id: number;
  app: number;
  transport: string;
  state: string;
  local: string;
  remote: string;
  peer: number | null;
  daemonBytes: number;
}
export interface ShowApp {
  id: number;
  name: string;
  uid: number;
  gid: number;
  sessions: number;
  segments: number;
}
export interface ShowStats {
  apps: number;
  sessions: number;
  segments: number;
  segmentBytes: number;
  listeners: number;
  daemonSegments: number;
}

/** The JSON lines a command printed (the verify client prints one per event). */
export function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Polls `check` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await sleep(100);
  }
}

/** SIGKILL to a container's main process tree (docker kill), no grace period. */
export async function killContainer(c: StartedTestContainer): Promise<void> {
  const client = await getContainerRuntimeClient();
  await client.container.getById(c.getId()).kill({ signal: 'SIGKILL' });
}

/** A container's log (stdout and stderr) up to the first line containing `marker`. */
export async function logUntil(c: StartedTestContainer, marker: string, timeoutMs = 30_000): Promise<string> {
  const stream = await c.logs();
  return new Promise((resolve, reject) => {
    let text = '';
    const finish = (err: Error | null) => {
      clearTimeout(timer);
      stream.removeAllListeners('data');
      stream.destroy();
      if (err) reject(err);
      else resolve(text);
    };
    const timer = setTimeout(
      () => finish(new Error(`no '${marker}' in ${c.getName()}'s log within ${timeoutMs} ms: ${text}`)),
      timeoutMs,
    );
    stream.on('data', (d: string | Buffer) => {
      text += String(d);
      const at = text.indexOf(marker);
      if (at >= 0 && text.indexOf('\n', at) >= 0) finish(null);
    });
    stream.on('error', (err) => finish(err));
    stream.on('end', () => finish(new Error(`${c.getName()}'s log ended without '${marker}': ${text}`)));
  });
}

/** Calls `poll` over and over while `work` runs, then returns (or throws) what `work` gave. */
export async function pollWhile<T>(work: Promise<T>, poll: () => Promise<void>): Promise<T> {
  let done = false;
  work.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  while (!done) await poll();
  return work;
}
