/**
 * The admin socket beside the control socket (`<socket>.admin`): one JSON request line in, one
 * JSON reply line out. Read-only; it serves `ferry show`. Input is bounded and checked.
 */
import { chmodSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { SHOW_TOPICS, type ShowTopic } from './snapshot.js';

const MAX_REQUEST_BYTES = 4096;

export function adminPath(socket: string): string {
  return `${socket}.admin`;
}

/** node:net spells an abstract socket with a leading NUL where Ferry writes '@'. */
export function netPath(path: string): string {
  return path.startsWith('@') ? `\0${path.slice(1)}` : path;
}

export function startAdminServer(socket: string, mode: number, show: (topic: ShowTopic) => unknown): Server {
  const path = adminPath(socket);
  if (!path.startsWith('@')) {
    try {
      unlinkSync(path);
    } catch {}
  }
  const server = createServer((conn) => {
    let buf = '';
    conn.setEncoding('utf8');
    conn.on('error', () => conn.destroy());
    conn.on('data', (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        conn.end(`${JSON.stringify({ ok: false, error: 'request too large' })}\n`);
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      conn.end(`${JSON.stringify(answer(buf.slice(0, nl), show))}\n`);
    });
  });
  server.listen(netPath(path), () => {
    if (!path.startsWith('@')) chmodSync(path, mode);
  });
  server.unref();
  return server;
}

function answer(line: string, show: (topic: ShowTopic) => unknown): unknown {
  let req: unknown;
  try {
    req = JSON.parse(line);
  } catch {
    return { ok: false, error: 'request is not JSON' };
  }
  if (typeof req !== 'object' || req === null) return { ok: false, error: 'request must be an object' };
  const { cmd, what } = req as { cmd?: unknown; what?: unknown };
  if (cmd !== 'show') return { ok: false, error: `unknown command ${JSON.stringify(cmd)}` };
  if (typeof what !== 'string' || !(SHOW_TOPICS as readonly string[]).includes(what)) {
    return { ok: false, error: `show what? one of ${SHOW_TOPICS.join(', ')}` };
  }
  return { ok: true, data: show(what as ShowTopic) };
}
