/** `ferry show`: asks a running ferryd's admin socket and prints text or JSON. */
import { connect } from 'node:net';
import { adminPath, netPath } from './admin-server.js';

export async function queryAdmin(socket: string, what: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const conn = connect(netPath(adminPath(socket)));
    let buf = '';
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new Error(`ferryd at ${socket} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.setEncoding('utf8');
    conn.on('connect', () => conn.write(`${JSON.stringify({ cmd: 'show', what })}\n`));
    conn.on('data', (d: string) => {
      buf += d;
    });
    conn.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot reach ferryd at ${socket}: ${err.message}`));
    });
    conn.on('end', () => {
      clearTimeout(timer);
      try {
        const reply = JSON.parse(buf) as { ok: boolean; data?: unknown; error?: string };
        if (reply.ok) resolve(reply.data);
        else reject(new Error(reply.error ?? 'ferryd refused the request'));
      } catch {
        reject(new Error('ferryd sent an unreadable reply'));
      }
    });
  });
}

/** Renders rows as aligned columns, VPP `show session verbose` style. */
export function formatTable(rows: readonly Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)\n';
  const first = rows[0] ?? {};
  const cols = Object.keys(first);
  const cell = (v: unknown) => (Array.isArray(v) ? v.join(',') : v === null ? '-' : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return `${[line(cols.map((c) => c.toUpperCase())), ...rows.map((r) => line(cols.map((c) => cell(r[c]))))].join('\n')}\n`;
}

export function formatShow(data: unknown): string {
  if (Array.isArray(data)) return formatTable(data as Record<string, unknown>[]);
  return `${JSON.stringify(data, null, 2)}\n`;
}
