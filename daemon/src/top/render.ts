/** `ferry top`'s screen: the model as lines of at most `width` columns, no escape codes. */
import type { TopModel, ViewState } from './model.js';

export function formatRate(bytesPerSec: number): string {
  return `${formatBytes(bytesPerSec)}/s`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${Math.round(v)} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0)} ${units[i]}`;
}

function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.round(ms / 60_000)}m`;
}

function table(header: string[], rows: string[][], right: Set<number>): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

export interface Frame {
  socket: string;
  model: TopModel | null;
  view: ViewState;
  /** Why the last poll failed, if it did. */
  error: string | null;
  clock: Date;
}

/** The screen as lines, cut to `width` x `height`. */
export function renderFrame(f: Frame, width: number, height: number): string[] {
  const out: string[] = [];
  const m = f.model;
  const time = f.clock.toISOString().slice(11, 19);
  out.push(`ferry top  ${f.socket}  ${time}  (q quit, s sort, t transport, / filter, c clear)`);
  if (f.error) out.push(`ferryd: ${f.error}`);
  if (m) {
    const totals = Object.entries(m.totals)
      .filter(([, t]) => t.txRate > 0 || t.rxRate > 0)
      .map(([k, t]) => `${k} tx ${formatRate(t.txRate)} rx ${formatRate(t.rxRate)}`);
    out.push(
      `apps ${m.apps.length}  sessions ${m.totalSessions}  ${totals.join('  ') || 'idle'}  stuck ${m.stuck}  corrupt ${m.corrupt}  udp drops ${m.udpDrops}`,
    );
  }
  const filter =
    f.view.editing !== null
      ? `filter: /${f.view.editing}_`
      : `sort: ${f.view.sort}  transport: ${f.view.transport}${f.view.text ? `  filter: ${f.view.text}` : ''}`;
  out.push(filter);
  if (m) {
    out.push('');
    const appRows = m.apps.map((a) => [
      String(a.id),
      a.name,
      a.namespace,
      String(a.pid),
      String(a.sessions),
      formatRate(a.txRate),
      formatRate(a.rxRate),
      `${Math.round(a.eventRate)}`,
      a.stalledMs > 0 ? formatMs(a.stalledMs) : '-',
    ]);
    const appsMax = Math.max(1, Math.min(appRows.length, Math.floor((height - out.length) / 3)));
    out.push(
      ...table(
        ['APP', 'NAME', 'NAMESPACE', 'PID', 'SESS', 'TX/S', 'RX/S', 'EVT/S', 'STALLED'],
        appRows.slice(0, appsMax),
        new Set([0, 3, 4, 5, 6, 7]),
      ),
    );
    if (appRows.length > appsMax) out.push(`... ${appRows.length - appsMax} more apps`);
    out.push('');
    const rows = m.sessions.map((s) => [
      String(s.id),
      String(s.app),
      s.transport,
      s.state,
      formatRate(s.txRate),
      formatRate(s.rxRate),
      formatBytes(s.txBytes),
      formatBytes(s.rxBytes),
      s.txFill,
      s.rxFill,
      formatMs(s.idleMs),
      s.flags || '-',
      s.remote,
    ]);
    const room = Math.max(1, height - out.length - 2);
    out.push(
      ...table(
        [
          'SESSION',
          'APP',
          'TRANSPORT',
          'STATE',
          'TX/S',
          'RX/S',
          'TX',
          'RX',
          'TXFILL',
          'RXFILL',
          'IDLE',
          'FLAGS',
          'REMOTE',
        ],
        rows.slice(0, room),
        new Set([0, 1, 4, 5, 6, 7, 8, 9, 10]),
      ),
    );
    if (rows.length > room) out.push(`... ${rows.length - room} more sessions`);
    else if (rows.length === 0) out.push('(no sessions match)');
  }
  return out.slice(0, height).map((l) => (l.length > width ? l.slice(0, width) : l));
}
