/** ref()/unref(): whether a socket or a server keeps its process alive (run in a child process). */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Scenario } from './scenario.js';
import type { Scope } from './scope.js';
import { within } from './trace.js';

const CHILD = fileURLToPath(new URL('./ref-child.js', import.meta.url));

/**
 * Runs the child; `onLine` sees each line it prints. Resolves with every line and how the child
 * ended; a child still running after the bound is killed and 'HUNG' is recorded.
 */
async function runChild(args: string[], onLine: (line: string) => void = () => {}): Promise<string[]> {
  const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout.on('data', (d: Buffer) => {
    rest += d.toString();
    for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
      const line = rest.slice(0, i);
      rest = rest.slice(i + 1);
      lines.push(line);
      onLine(line);
    }
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const code = await within(exited, 8000);
  if (code === 'HUNG') {
    lines.push('HUNG');
    child.kill('SIGKILL');
    await exited;
  } else {
    lines.push(`code=${code}`);
  }
  return lines;
}

/**
 * The parent serves; the child connects. 300 ms after the child says 'connect', the parent ends the
 * connection: a child kept alive by its socket sees 'end' and 'close'; a child whose socket is
 * unref'd has exited long before (nothing else holds its loop).
 */
async function socketMode(sc: Scope, mode: 'socket-ref' | 'socket-unref') {
  const { server, nextConn } = await sc.serve({}, {});
  const opts = sc.t.connectOpts(server);
  let endTimer: NodeJS.Timeout | undefined;
  const lines = await runChild([sc.t.name, mode, JSON.stringify(opts)], (line) => {
    if (line !== 'connect') return;
    endTimer = setTimeout(() => {
      nextConn().then((c) => c.sock.end());
    }, 300);
  });
  clearTimeout(endTimer);
  return { common: { child: lines } };
}

const socketRef: Scenario = {
  name: 'a connected socket keeps its process alive until the connection ends',
  run: (sc) => socketMode(sc, 'socket-ref'),
  check(ref) {
    assert.deepEqual(ref.common['child'], ['connect', 'end', 'close', 'exit', 'code=0']);
  },
};

const socketUnref: Scenario = {
  name: 'socket.unref() lets its process exit while connected',
  run: (sc) => socketMode(sc, 'socket-unref'),
  check(ref) {
    assert.deepEqual(ref.common['child'], ['connect', 'exit', 'code=0']);
  },
};

const serverUnref: Scenario = {
  name: 'server.unref() lets its process exit while listening',
  run: async (sc) => ({ common: { child: await runChild([sc.t.name, 'server-unref']) } }),
  check(ref) {
    assert.deepEqual(ref.common['child'], ['listening', 'exit', 'code=0']);
  },
};

export const PROCESS_SCENARIOS: readonly Scenario[] = [socketRef, socketUnref, serverUnref];
