/**
 * `ferry top`: a live view of a running ferryd, refreshed from its admin socket (`show top`).
 * In a terminal it takes the alternate screen, hides the cursor and reads keys raw; every way out
 * (q, Ctrl-C, SIGTERM, an error) restores the terminal. Without a terminal, or with --once, it
 * prints one frame (rates over one interval) and exits.
 */
import { parseArgs } from 'node:util';
import { socketOf } from '../config/socket-path.js';
import { queryAdmin } from '../inspect/show-client.js';
import { buildModel, initialView, onKey, type TopModel, type TopSnapshot, type ViewState } from './model.js';
import { renderFrame } from './render.js';

const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l';
const LEAVE_SCREEN = '\x1b[?25h\x1b[?1049l';

export async function topMain(args: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...args],
    options: {
      socket: { type: 'string' },
      config: { type: 'string' },
      'interval-ms': { type: 'string', default: '1000' },
      once: { type: 'boolean', default: false },
    },
  });
  const interval = Number(values['interval-ms']);
  if (!Number.isInteger(interval) || interval < 100 || interval > 60_000) {
    process.stderr.write('ferry top: --interval-ms takes 100..60000\n');
    return 2;
  }
  const socket = values.socket ?? socketOf({ file: values.config });
  const poll = async () => (await queryAdmin(socket, 'top', Math.max(2000, interval))) as TopSnapshot;
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  if (values.once || !tty) return printOnce(socket, poll, interval);
  return runLive(socket, poll, interval);
}

async function printOnce(
  socket: string,
  poll: () => Promise<TopSnapshot>,
  interval: number,
): Promise<number> {
  try {
    const first = await poll();
    await new Promise((r) => setTimeout(r, interval));
    const second = await poll();
    const model = buildModel(first, second, initialView());
    const lines = renderFrame(
      { socket, model, view: initialView(), error: null, clock: new Date(second.now) },
      process.stdout.columns || 200,
      10_000,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ferry top: ${(err as Error).message}\n`);
    return 1;
  }
}

function runLive(socket: string, poll: () => Promise<TopSnapshot>, interval: number): Promise<number> {
  const out = process.stdout;
  const stdin = process.stdin;
  let view: ViewState = initialView();
  let prev: TopSnapshot | null = null;
  let cur: TopSnapshot | null = null;
  let model: TopModel | null = null;
  let error: string | null = null;
  let timer: NodeJS.Timeout | null = null;
  let restored = false;

  const restore = () => {
    if (restored) return;
    restored = true;
    if (timer) clearTimeout(timer);
    try {
      stdin.setRawMode(false);
    } catch {}
    stdin.pause();
    out.write(LEAVE_SCREEN);
  };
  const draw = () => {
    if (restored) return;
    if (cur) model = buildModel(prev, cur, view);
    const lines = renderFrame(
      { socket, model, view, error, clock: new Date() },
      out.columns || 80,
      out.rows || 24,
    );
    // Home, each line then clear to its end, then clear below: no flicker, no scrolling.
    out.write(`\x1b[H${lines.join('\x1b[K\r\n')}\x1b[K\x1b[J`);
  };
  const tick = async () => {
    try {
      const snap = await poll();
      prev = cur;
      cur = snap;
      error = null;
    } catch (err) {
      error = (err as Error).message;
    }
    draw();
    if (!restored) timer = setTimeout(tick, interval);
  };

  return new Promise<number>((resolve) => {
    const quit = (code: number) => {
      restore();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('exit', restore);
      resolve(code);
    };
    const onSignal = () => quit(0);
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('exit', restore);
    out.write(ENTER_SCREEN);
    stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', (chunk: string) => {
      // An escape sequence (arrow keys, ...) is one chunk: ignored, except a lone Esc.
      if (chunk.startsWith('\x1b') && chunk.length > 1) return;
      for (const key of view.editing !== null ? [chunk] : [...chunk]) {
        const next = onKey(view, key);
        if (next === 'quit') {
          quit(0);
          return;
        }
        view = next;
      }
      draw();
    });
    stdin.resume();
    out.on('resize', draw);
    void tick();
  });
}
