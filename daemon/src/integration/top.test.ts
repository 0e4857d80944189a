/**
 * `ferry top` in a real terminal: tmux runs it against a ferryd with a busy session and an idle
 * one; the test reads the screen, presses keys and checks that q leaves the terminal as it was.
 * Skipped without tmux (fails in CI, which installs it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { connect, createServer, type Server, type Socket } from '@ferry/sdk';
import { type DaemonHandle, eventually, startDaemon } from '../testing/harness.js';
import { hasBinary } from '../testing/net-peer.js';

const FERRY = fileURLToPath(new URL('../../bin/ferry.js', import.meta.url));
const TMUX = ['-L', `ferry-top-test-${process.pid}`];
const haveTmux = hasBinary('tmux');
if (!haveTmux && process.env['CI'] === 'true') throw new Error('tmux is missing in CI (.ci/run installs it)');

const tmux = (...args: string[]) => execFileSync('tmux', [...TMUX, ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', 'top');
const pane = (format: string) => tmux('display-message', '-p', '-t', 'top', format).trim();

/** Session rows: [id, tx/s, rx/s, rest of the line]. */
function rows(text: string): { id: number; txRate: string; line: string }[] {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('SESSION'));
  const out: { id: number; txRate: string; line: string }[] = [];
  for (const l of lines.slice(start + 1)) {
    const m = /^\s*(\d+)\s+\d+\s+\S+\s+\S+\s+([\d.]+ \S+\/s)/.exec(l);
    if (!m) break;
    out.push({ id: Number(m[1]), txRate: m[2] as string, line: l });
  }
  return out;
}

describe('ferry top in a terminal', { skip: !haveTmux && 'tmux is not installed' }, () => {
  let d: DaemonHandle;
  let server: Server;
  let busy: Socket;
  let idle: Socket;
  let stopWriting = false;

  before(async () => {
    d = await startDaemon();
    server = createServer({ socket: d.socket }, (s: Socket) => {
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((resolve) => server.listen('tcp://127.0.0.1:0', resolve));
    const uri = String(server.address()?.uri);
    idle = connect({ uri, socket: d.socket });
    busy = connect({ uri, socket: d.socket });
    await Promise.all([idle, busy].map((s) => new Promise((r) => s.once('connect', r))));
    busy.on('data', () => {});
    // Bounded: at most 40,000 writes of 64 KiB (2.5 GiB), stopped when the test ends.
    const chunk = Buffer.alloc(65536, 7);
    let writes = 0;
    const pump = () => {
      while (!stopWriting && writes < 40_000 && busy.write(chunk)) writes++;
      if (!stopWriting && writes < 40_000) busy.once('drain', pump);
    };
    pump();
  });

  after(async () => {
    stopWriting = true;
    try {
      tmux('kill-server');
    } catch {}
    busy?.destroy();
    idle?.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await d?.stop();
  });

  test('shows apps and sessions by throughput, takes keys, and q restores the terminal', async () => {
    // Under a shell that stays: after top exits, the pane shows what top left of the terminal.
    const cmd = `${process.execPath} ${FERRY} top --socket ${d.socket} --interval-ms 300`;
    tmux(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '180',
      '-y',
      '40',
      `sh -c '${cmd}; echo "top exited $?"; sleep 60'`,
    );
    // The busy session's two ends come first, moving bytes; the idle one's two ends after, at 0.
    let text = '';
    await eventually(
      async () => {
        text = screen();
        const r = rows(text);
        return r.length === 4 && r[0]?.txRate !== '0 B/s' && r[1]?.txRate !== '0 B/s';
      },
      15_000,
      `a frame with the busy session first:\n${text}`,
    );
    assert.equal(pane('#{alternate_on}'), '1', 'top draws on the alternate screen');
    assert.match(text, /^ferry top {2}/);
    assert.match(text, /apps 1 {2}sessions 4 {2}ct tx [\d.]+ \S+\/s/);
    assert.match(text, /^APP\s+NAME\s+NAMESPACE/m);
    const busyPort = `:${busy.localPort}`;
    const idlePort = `:${idle.localPort}`;
    let r = rows(text);
    // The server's end of each session has the client's port as its remote address.
    assert.ok(
      r.slice(0, 2).some((x) => x.line.endsWith(busyPort)),
      text,
    );
    assert.ok(
      r.slice(2).some((x) => x.line.endsWith(idlePort)),
      text,
    );
    assert.deepEqual(
      r.slice(2).map((x) => x.txRate),
      ['0 B/s', '0 B/s'],
    );
    const busyIds = r
      .slice(0, 2)
      .map((x) => x.id)
      .sort((x, y) => x - y);

    tmux('send-keys', '-t', 'top', 's');
    await eventually(async () => screen().includes('sort: id'), 5000, 'sort by id');
    await eventually(async () => {
      const ids = rows(screen()).map((x) => x.id);
      return ids.length === 4 && ids.every((id, i) => i === 0 || (ids[i - 1] ?? 0) < id);
    });

    tmux('send-keys', '-t', 'top', 't', 't');
    await eventually(async () => screen().includes('transport: tcp'), 5000, 'transport filter');
    await eventually(async () => screen().includes('(no sessions match)'));

    tmux('send-keys', '-t', 'top', 'c', '/', ...busyPort.slice(1).split(''), 'Enter');
    await eventually(async () => screen().includes(`filter: ${busyPort.slice(1)}`), 5000, 'text filter');
    // The filter matches addresses: the busy session's client end (its local port) and server
    // end (its remote address).
    await eventually(async () => {
      r = rows(screen());
      const ids = r.map((x) => x.id).sort((x, y) => x - y);
      return ids.length === 2 && ids[0] === busyIds[0] && ids[1] === busyIds[1];
    });

    tmux('send-keys', '-t', 'top', 'q');
    await eventually(async () => screen().includes('top exited'), 5000, 'top to exit on q');
    assert.match(screen(), /^top exited 0$/m);
    assert.doesNotMatch(screen(), /SESSION|ferry top/, 'the frame went with the alternate screen');
    assert.equal(pane('#{alternate_on}'), '0', 'the alternate screen is left');
    assert.equal(pane('#{cursor_flag}'), '1', 'the cursor is shown again');
  });

  test('--once prints one frame without a terminal and exits', () => {
    const out = execFileSync(
      process.execPath,
      [FERRY, 'top', '--socket', d.socket, '--once', '--interval-ms', '200'],
      {
        encoding: 'utf8',
      },
    );
    assert.match(out, /^ferry top {2}/);
    assert.ok(!out.includes('\u001b'), 'no escape codes');
    assert.equal(rows(out).length, 4);
  });
});
