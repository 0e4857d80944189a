/**
 * `notices` (NOTICE_BATCH): each notice of a batch is handled as the message of its name, in order;
 * one that fails does not stop the others, and the first failure is the answer.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type ConnectReply,
  type CtrlChannel,
  type CtrlMessage,
  FEATURE,
  NOTICE_OP,
  POOL_FREE,
  POOL_TAKEN,
  type PoolGrant,
  poolSwap,
  statusOf,
} from '@ferry/sdk/internal';
import { App } from '../app/app.js';
import { defaultConfig } from '../config.js';
import { silentLogger } from '../log/logger.js';
import { SessionLayer } from '../session/session-layer.js';
import { handleRequest } from './handlers.js';

function setup() {
  const apps = new Map<number, App>();
  const sent = new Map<number, CtrlMessage[]>();
  const mk = (id: number) => {
    const out: CtrlMessage[] = [];
    sent.set(id, out);
    const channel = { send: (m: CtrlMessage) => out.push(m), drain: () => {} } as unknown as CtrlChannel;
    const app = new App(id, `app${id}`, 'default', { pid: id, uid: 0, gid: 0 }, channel, -1);
    app.features = FEATURE.FAST_CONNECT | FEATURE.NOTICE_BATCH;
    apps.set(id, app);
    return app;
  };
  const client = mk(1);
  const server = mk(2);
  const layer = new SessionLayer({ ...defaultConfig({}), fastConnectPool: 4 }, apps, silentLogger);
  const l = layer.listeners.add(server.id, 'default', { scheme: 'tcp', host: '127.0.0.1', port: 8080 });
  assert.ok(l);
  server.listeners.add(l.id);
  return { layer, client, server, sent };
}

/** The client's connect to setup()'s listener (served from a fresh pool grant). */
function connectToListener(layer: SessionLayer, client: App): ConnectReply {
  return layer.connect(client, {
    t: 'connect',
    id: 1,
    uri: 'tcp://127.0.0.1:8080',
    rxFifoSize: 0,
    txFifoSize: 0,
  }) as ConnectReply;
}

test('notices: fast-open and close of several sessions in one message, in order', () => {
  const { layer, client, sent } = setup();
  const r = connectToListener(layer, client);
  assert.equal(r.st, 0);
  const grant = (sent.get(client.id) ?? []).find((m) => m.t === 'pool-grant') as PoolGrant | undefined;
  const [a, b] = grant?.pairs ?? [];
  assert.ok(a && b);
  const seg = [...layer.segments.values()][0];
  assert.ok(seg);
  for (const p of [a, b]) assert.equal(poolSwap(seg.segment.buffer, p.fifos.txOffset, POOL_TAKEN), POOL_FREE);
  const ops = [
    NOTICE_OP['fast-open'],
    a.session,
    NOTICE_OP['fast-open'],
    b.session,
    NOTICE_OP.shutdown,
    a.session,
    NOTICE_OP.close,
    a.session,
    NOTICE_OP.reset,
    b.session,
  ];
  const reply = handleRequest(layer, client, { t: 'notices', id: 0, ops });
  assert.deepEqual(reply, { t: 'status', id: 0, st: 0, err: '' });
  assert.equal(layer.sessions.get(a.session)?.state, 'closed');
  assert.equal(layer.sessions.get(b.session)?.state, 'reset');
  assert.equal(layer.counters.fastConnects, 2);
  assert.equal(layer.counters.resets, 1);
});

test('notices: a failed one does not stop the rest; the first failure is the answer', () => {
  const { layer, client } = setup();
  const r = connectToListener(layer, client);
  // Unknown session, then an unknown op, then a real close.
  const reply = handleRequest(layer, client, {
    t: 'notices',
    id: 0,
    ops: [NOTICE_OP.close, 999_999, 77, r.session, NOTICE_OP.close, r.session],
  });
  assert.ok(reply && 'st' in reply);
  assert.equal(reply.st, statusOf('ERR_FERRY_SESSION_NOT_FOUND'));
  assert.equal(layer.sessions.get(r.session)?.state, 'closed');
  const odd = handleRequest(layer, client, { t: 'notices', id: 0, ops: [NOTICE_OP.close] });
  assert.ok(odd && 'st' in odd);
  assert.equal(odd.st, statusOf('ERR_FERRY_PROTO_MALFORMED'));
});
