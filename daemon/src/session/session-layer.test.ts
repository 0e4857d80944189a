/**
 * The session layer against a transport it does not know: one registered through the factory,
 * carrying sessions without a fifo pair and handing the app an fd with the reply. This is how a
 * new transport plugs in (transport/transport.ts); nothing here is specific to TCP or UDP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConnectReply, CtrlChannel, CtrlMessage, FerryError } from '@ferry/sdk/internal';
import { App } from '../app/app.js';
import { defaultConfig } from '../config.js';
import { silentLogger } from '../log/logger.js';
import type {
  ConnectRequest,
  EndEvents,
  Opened,
  Transport,
  TransportHost,
  TransportListener,
} from '../transport/transport.js';
import type { SessionEnd } from './session.js';
import { SessionLayer } from './session-layer.js';
import { fdsOf } from './wire.js';

class FakeEnd implements SessionEnd {
  done = false;
  bytesIn = 0;
  bytesOut = 0;
  calls: string[] = [];
  readonly events: EndEvents;
  constructor(events: EndEvents) {
    this.events = events;
  }
  close(): void {
    this.calls.push('close');
  }
  reset(): void {
    this.calls.push('reset');
  }
  abort(): void {
    this.calls.push('abort');
    this.done = true;
    this.events.done();
  }
  finish(): void {
    this.done = true;
    this.events.done();
  }
}

class FakeTransport implements Transport {
  readonly scheme = 'tcp';
  readonly kind = 'stream';
  readonly tlsOptions = false;
  readonly ends: FakeEnd[] = [];
  readonly host: TransportHost;
  constructor(host: TransportHost) {
    this.host = host;
  }
  listen(): Promise<TransportListener> {
    return Promise.reject(new Error('not used'));
  }
  async connect(c: ConnectRequest): Promise<Opened> {
    const { session, events, daemon } = this.host.place({
      app: c.app,
      local: 'tcp://10.9.9.9:40000',
      remote: `tcp://${c.target.host}:${c.target.port}`,
      listenerId: 0,
      transport: 'fake',
      fifos: null,
    });
    assert.equal(daemon, null);
    const end = new FakeEnd(events);
    session.end = end;
    this.ends.push(end);
    return { session, fds: { roles: ['doorbell'], fds: [1234] } };
  }
}

function setup(): { layer: SessionLayer; app: App; sent: CtrlMessage[]; fake: () => FakeTransport } {
  const config = defaultConfig({});
  const apps = new Map<number, App>();
  const sent: CtrlMessage[] = [];
  const channel = { send: (m: CtrlMessage) => sent.push(m), drain: () => {} } as unknown as CtrlChannel;
  const app = new App(1, 'a', 'default', { pid: 1, uid: 0, gid: 0 }, channel, -1);
  apps.set(app.id, app);
  let fake: FakeTransport | null = null;
  const layer = new SessionLayer(config, apps, silentLogger, undefined, (host) => {
    fake = new FakeTransport(host);
    return [fake];
  });
  return {
    layer,
    app,
    sent,
    fake: () => {
      if (!fake) throw new Error('no transport built');
      return fake;
    },
  };
}

const connect = (id: number) => ({
  t: 'connect' as const,
  id,
  uri: 'tcp://10.1.2.3:80',
  rxFifoSize: 0,
  txFifoSize: 0,
});

test('a registered transport carries a session without fifos; its fds ride with the reply', async () => {
  const { layer, app, fake } = setup();
  try {
    const reply = (await layer.connect(app, connect(7))) as ConnectReply;
    assert.equal(reply.st, 0);
    assert.equal(reply.fifos, null);
    assert.equal(reply.transport, 'fake');
    assert.deepEqual(reply.fds, ['doorbell']);
    assert.deepEqual(fdsOf(reply), [1234]);
    const s = layer.sessions.get(reply.session);
    assert.ok(s);
    assert.equal(s.hasFifos, false);
    assert.equal(s.state, 'established');

    // shutdown is the end's business (applied when its FIN goes out), close waits for the end.
    layer.shutdown(app, s.id);
    assert.equal(s.state, 'local-fin');
    layer.close(app, s.id);
    assert.deepEqual(fake().ends[0]?.calls, ['close']);
    assert.ok(layer.sessions.has(s.id), 'freed only once the end is done');
    fake().ends[0]?.finish();
    assert.ok(!layer.sessions.has(s.id));
    assert.equal(app.sessions.size, 0);
  } finally {
    layer.stop();
  }
});

test('one teardown: reset tells the end to reset, a vanished app aborts it', async () => {
  const { layer, app, sent, fake } = setup();
  try {
    const r1 = (await layer.connect(app, connect(1))) as ConnectReply;
    const r2 = (await layer.connect(app, connect(2))) as ConnectReply;
    layer.reset(app, r1.session);
    assert.deepEqual(fake().ends[0]?.calls, ['reset']);
    assert.equal(layer.sessions.get(r1.session)?.state, 'reset');
    // The remote resets the other: the app hears session-reset once.
    fake().ends[1]?.events.remoteReset({ code: 'ECONNRESET', message: 'gone' } as FerryError);
    fake().ends[1]?.events.remoteReset({ code: 'ECONNRESET', message: 'gone' } as FerryError);
    assert.equal(sent.filter((m) => m.t === 'session-reset').length, 1);
    layer.appGone(app);
    assert.deepEqual(fake().ends[0]?.calls, ['reset', 'abort']);
    assert.deepEqual(fake().ends[1]?.calls, ['abort']);
    assert.equal(layer.sessions.size, 0);
    assert.ok(r2.session > r1.session);
  } finally {
    layer.stop();
  }
});

test('a scheme no transport serves is refused with ERR_FERRY_NOT_SUPPORTED', async () => {
  const { layer, app } = setup();
  try {
    await assert.rejects(
      Promise.resolve().then(() => layer.listen(app, 1, 'udp://127.0.0.1:0')),
      (e: FerryError) => e.code === 'ERR_FERRY_NOT_SUPPORTED',
    );
    assert.throws(
      () => layer.connect(app, { ...connect(3), uri: 'tls://127.0.0.1:1' }),
      (e: FerryError) => e.code === 'ERR_FERRY_NOT_SUPPORTED',
    );
  } finally {
    layer.stop();
  }
});
