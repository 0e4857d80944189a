/**
 * `ferry top`'s model: two successive `show top` snapshots make rates; the view's sort key and
 * filters pick and order the rows. Pure (no terminal, no I/O): render.ts draws it.
 */

export interface TopSnapshot {
  now: number;
  apps: Record<string, unknown>[];
  sessions: Record<string, unknown>[];
  bytes: Record<string, { tx: number; rx: number }>;
  fifos: { stuck: number; corrupt: number; fifos: number } | null;
  udpDrops: number;
}

export const SORT_KEYS = ['rate', 'id', 'fill', 'idle'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export const TRANSPORT_FILTERS = ['all', 'ct', 'tcp', 'tls', 'udp'] as const;
export type TransportFilter = (typeof TRANSPORT_FILTERS)[number];

export interface ViewState {
  sort: SortKey;
  transport: TransportFilter;
  /** Substring matched against a row's app name, namespace, local and remote addresses. */
  text: string;
  /** Text being typed after '/', or null. */
  editing: string | null;
}

export interface SessionRow {
  id: number;
  app: number;
  transport: string;
  state: string;
  txRate: number;
  rxRate: number;
  txBytes: number;
  rxBytes: number;
  txFill: string;
  rxFill: string;
  /** Fill of the fuller fifo, 0..1. */
  fill: number;
  idleMs: number;
  flags: string;
  local: string;
  remote: string;
}

export interface AppRow {
  id: number;
  name: string;
  namespace: string;
  pid: number;
  sessions: number;
  txRate: number;
  rxRate: number;
  eventRate: number;
  stalledMs: number;
}

export interface TopModel {
  apps: AppRow[];
  sessions: SessionRow[];
  /** Sessions before filtering. */
  totalSessions: number;
  totals: Record<string, { txRate: number; rxRate: number }>;
  stuck: number;
  corrupt: number;
  udpDrops: number;
}

export function initialView(): ViewState {
  return { sort: 'rate', transport: 'all', text: '', editing: null };
}

const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0);
const str = (v: unknown): string => (v === null || v === undefined ? '' : String(v));

function fillRatio(text: string): number {
  const [a, b] = text.split('/').map(Number);
  return a !== undefined && b ? a / b : 0;
}

/** Rates per second between `prev` and `cur` (none when `prev` is null: the first frame). */
export function buildModel(prev: TopSnapshot | null, cur: TopSnapshot, view: ViewState): TopModel {
  const dt = prev ? Math.max(1, cur.now - prev.now) / 1000 : 0;
  const rate = (a: number, b: number | undefined) =>
    dt > 0 && b !== undefined ? Math.max(0, a - b) / dt : 0;
  const before = new Map<number, Record<string, unknown>>();
  for (const s of prev?.sessions ?? []) before.set(num(s['id']), s);
  const appInfo = new Map<number, Record<string, unknown>>();
  for (const a of cur.apps) appInfo.set(num(a['id']), a);

  const all: SessionRow[] = cur.sessions.map((s) => {
    const id = num(s['id']);
    const p = before.get(id);
    const txFill = str(s['txFill']);
    const rxFill = str(s['rxFill']);
    const drops = num(s['drops']);
    const flags = [
      s['stuck'] ? 'STUCK' : '',
      s['fifoError'] ? 'CORRUPT' : '',
      drops > 0 ? `DROPS=${drops}` : '',
    ]
      .filter(Boolean)
      .join(',');
    return {
      id,
      app: num(s['app']),
      transport: str(s['transport']),
      state: str(s['state']),
      txRate: rate(num(s['txBytes']), p ? num(p['txBytes']) : undefined),
      rxRate: rate(num(s['rxBytes']), p ? num(p['rxBytes']) : undefined),
      txBytes: num(s['txBytes']),
      rxBytes: num(s['rxBytes']),
      txFill,
      rxFill,
      fill: Math.max(fillRatio(txFill), fillRatio(rxFill)),
      idleMs: num(s['idleMs']),
      flags,
      local: str(s['local']),
      remote: str(s['remote']),
    };
  });

  const text = view.text.toLowerCase();
  const matches = (r: SessionRow) => {
    if (view.transport !== 'all' && r.transport !== view.transport) return false;
    if (!text) return true;
    const a = appInfo.get(r.app);
    const hay = [r.local, r.remote, str(a?.['name']), str(a?.['namespace']), r.state].join(' ').toLowerCase();
    return hay.includes(text);
  };
  const sessions = all.filter(matches).sort(comparator(view.sort));

  const prevApps = new Map<number, Record<string, unknown>>();
  for (const a of prev?.apps ?? []) prevApps.set(num(a['id']), a);
  const perApp = new Map<number, { tx: number; rx: number }>();
  for (const r of all) {
    const t = perApp.get(r.app) ?? { tx: 0, rx: 0 };
    t.tx += r.txRate;
    t.rx += r.rxRate;
    perApp.set(r.app, t);
  }
  const apps: AppRow[] = cur.apps
    .map((a) => {
      const id = num(a['id']);
      const p = prevApps.get(id);
      return {
        id,
        name: str(a['name']),
        namespace: str(a['namespace']),
        pid: num(a['pid']),
        sessions: num(a['sessions']),
        txRate: perApp.get(id)?.tx ?? 0,
        rxRate: perApp.get(id)?.rx ?? 0,
        eventRate: rate(num(a['events']), p ? num(p['events']) : undefined),
        stalledMs: num(a['stalledMs']),
      };
    })
    .sort((x, y) => y.txRate + y.rxRate - (x.txRate + x.rxRate) || x.id - y.id);

  const totals: Record<string, { txRate: number; rxRate: number }> = {};
  for (const [t, b] of Object.entries(cur.bytes)) {
    const pb = prev?.bytes[t];
    totals[t] = { txRate: rate(b.tx, pb?.tx), rxRate: rate(b.rx, pb?.rx) };
  }
  return {
    apps,
    sessions,
    totalSessions: all.length,
    totals,
    stuck: cur.fifos?.stuck ?? 0,
    corrupt: cur.fifos?.corrupt ?? 0,
    udpDrops: cur.udpDrops,
  };
}

function comparator(key: SortKey): (a: SessionRow, b: SessionRow) => number {
  switch (key) {
    case 'rate':
      return (a, b) => b.txRate + b.rxRate - (a.txRate + a.rxRate) || a.id - b.id;
    case 'id':
      return (a, b) => a.id - b.id;
    case 'fill':
      return (a, b) => b.fill - a.fill || a.id - b.id;
    case 'idle':
      return (a, b) => b.idleMs - a.idleMs || a.id - b.id;
  }
}

/** Applies a key press to the view; returns 'quit' for q / Ctrl-C. */
export function onKey(view: ViewState, key: string): ViewState | 'quit' {
  if (view.editing !== null) {
    if (key === '\r' || key === '\n') return { ...view, text: view.editing, editing: null };
    if (key === '\x1b') return { ...view, editing: null };
    if (key === '\x7f' || key === '\b') return { ...view, editing: view.editing.slice(0, -1) };
    if (key === '\x03') return 'quit';
    const printable = [...key].filter((c) => c >= ' ' && c <= '~').join('');
    return { ...view, editing: (view.editing + printable).slice(0, 64) };
  }
  switch (key) {
    case 'q':
    case '\x03':
      return 'quit';
    case 's':
      return { ...view, sort: SORT_KEYS[(SORT_KEYS.indexOf(view.sort) + 1) % SORT_KEYS.length] ?? 'rate' };
    case 't':
      return {
        ...view,
        transport:
          TRANSPORT_FILTERS[(TRANSPORT_FILTERS.indexOf(view.transport) + 1) % TRANSPORT_FILTERS.length] ??
          'all',
      };
    case '/':
      return { ...view, editing: '' };
    case '\x1b':
    case 'c':
      return { ...view, text: '', transport: 'all' };
    default:
      return view;
  }
}
