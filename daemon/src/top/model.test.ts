import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildModel, initialView, onKey, type TopSnapshot, type ViewState } from './model.js';
import { formatBytes, renderFrame } from './render.js';

const sess = (id: number, app: number, transport: string, tx: number, rx: number, extra = {}) => ({
  id,
  app,
  transport,
  state: 'established',
  txBytes: tx,
  rxBytes: rx,
  txFill: '0/4096',
  rxFill: '1024/4096',
  idleMs: id * 10,
  stuck: false,
  fifoError: null,
  local: `tcp://127.0.0.1:${5000 + id}`,
  remote: `tcp://10.0.0.${id}:80`,
  ...extra,
});
const snap = (now: number, sessions: Record<string, unknown>[], events = 0): TopSnapshot => ({
  now,
  apps: [
    { id: 1, name: 'web', namespace: 'default', pid: 10, sessions: 2, stalledMs: 0, events },
    { id: 2, name: 'db', namespace: 'data', pid: 11, sessions: 1, stalledMs: 0, events: 0 },
  ],
  sessions,
  bytes: { ct: { tx: sessions.length * 1000, rx: 0 } },
  fifos: { stuck: 0, corrupt: 0, fifos: 4 },
  udpDrops: 3,
});

describe('ferry top model', () => {
  const a = snap(1000, [sess(1, 1, 'ct', 0, 0), sess(2, 1, 'tcp', 0, 0), sess(3, 2, 'ct', 0, 0)], 100);
  const b = snap(
    3000,
    [sess(1, 1, 'ct', 2000, 0), sess(2, 1, 'tcp', 0, 8000), sess(3, 2, 'ct', 100, 100)],
    300,
  );

  test('rates per second between two snapshots, rows sorted by throughput', () => {
    const m = buildModel(a, b, initialView());
    assert.deepEqual(
      m.sessions.map((s) => [s.id, s.txRate, s.rxRate]),
      [
        [2, 0, 4000],
        [1, 1000, 0],
        [3, 50, 50],
      ],
    );
    assert.equal(m.apps[0]?.name, 'web');
    assert.equal(m.apps[0]?.eventRate, 100);
    assert.equal(m.apps[0]?.rxRate, 4000);
    assert.equal(m.sessions[0]?.fill, 0.25);
    // The first frame has no rates yet.
    assert.ok(buildModel(null, b, initialView()).sessions.every((s) => s.txRate === 0 && s.rxRate === 0));
    // A session that is new in this frame has no rate either.
    const withDrops = snap(3000, [sess(5, 1, 'udp', 0, 0, { drops: 7, stuck: true })]);
    assert.equal(buildModel(null, withDrops, initialView()).sessions[0]?.flags, 'STUCK,DROPS=7');
    const c = snap(4000, [...b.sessions, sess(9, 1, 'ct', 5_000_000, 0)]);
    assert.equal(buildModel(b, c, initialView()).sessions.find((s) => s.id === 9)?.txRate, 0);
  });

  test('keys: s cycles the sort, t the transport, / types a filter, c clears, q quits', () => {
    let v: ViewState = initialView();
    const press = (k: string) => {
      const next = onKey(v, k);
      assert.notEqual(next, 'quit');
      v = next as ViewState;
    };
    press('s');
    assert.equal(v.sort, 'id');
    assert.deepEqual(
      buildModel(a, b, v).sessions.map((s) => s.id),
      [1, 2, 3],
    );
    press('s');
    press('s');
    assert.equal(v.sort, 'idle');
    assert.deepEqual(
      buildModel(a, b, v).sessions.map((s) => s.id),
      [3, 2, 1],
    );
    press('t');
    assert.equal(v.transport, 'ct');
    assert.deepEqual(
      buildModel(a, b, v).sessions.map((s) => s.transport),
      ['ct', 'ct'],
    );
    press('c');
    for (const k of '/db') press(k);
    assert.equal(v.editing, 'db');
    press('\x7f');
    press('b');
    press('\r');
    assert.equal(v.text, 'db');
    assert.equal(v.editing, null);
    assert.deepEqual(
      buildModel(a, b, v).sessions.map((s) => s.id),
      [3],
    );
    const m = buildModel(a, b, v);
    assert.equal(m.totalSessions, 3);
    assert.equal(onKey(v, 'q'), 'quit');
    assert.equal(onKey(v, '\x03'), 'quit');
    press('/');
    press('\x1b');
    assert.equal(v.editing, null);
  });

  test('the frame fits the terminal and says what is filtered', () => {
    const v = { ...initialView(), transport: 'ct' as const };
    const lines = renderFrame(
      { socket: '/run/f.sock', model: buildModel(a, b, v), view: v, error: null, clock: new Date(0) },
      60,
      12,
    );
    assert.ok(lines.length <= 12);
    assert.ok(lines.every((l) => l.length <= 60));
    assert.match(lines[0] ?? '', /^ferry top {2}\/run\/f\.sock {2}00:00:00/);
    assert.match(lines.join('\n'), /transport: ct/);
    assert.match(lines.join('\n'), /udp drops 3/);
    const err = renderFrame(
      { socket: 's', model: null, view: initialView(), error: 'cannot reach', clock: new Date(0) },
      80,
      24,
    );
    assert.equal(err[1], 'ferryd: cannot reach');
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1536), '1.50 KiB');
    assert.equal(formatBytes(200 * 1024 ** 2), '200 MiB');
  });
});
