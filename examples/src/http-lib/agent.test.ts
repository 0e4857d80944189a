/**
 * @ferry/sdk/http with real clients: node:http through FerryAgent, undici through its dispatcher,
 * Node's own fetch through setGlobalDispatcher, and ws (server and client) over Ferry sessions.
 * The server is a plain node:http server served by listenThroughFerry; cut-through is proven from
 * the sockets' transport and from ferryd's session table.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { type DaemonHandle, makeTestCerts, startDaemon } from '@ferry/daemon/testing';
import {
  createFerryDispatcher,
  FerryAgent,
  FerryHttpsAgent,
  ferryListenerOf,
  innerSocket,
  isFerryNetSocket,
  listenThroughFerry,
} from '@ferry/sdk/http';
import { type Dispatcher, getGlobalDispatcher, request, setGlobalDispatcher } from 'undici';
import { WebSocket, WebSocketServer } from 'ws';
import { hasBinary } from '../testing/has-binary.js';

let daemon: DaemonHandle;
let server: http.Server;
let port = 0;
/** Transport of the Ferry session each request arrived on, as the server saw it. */
const seen: string[] = [];

function handler(req: http.IncomingMessage, res: http.ServerResponse): void {
  seen.push(isFerryNetSocket(req.socket) ? String(innerSocket(req.socket)?.transport) : 'kernel');
  if (req.method === 'POST') {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => res.end(Buffer.concat(parts)));
    return;
  }
  res.setHeader('content-type', 'text/plain');
  res.end(`hello ${req.url}`);
}

before(async () => {
  daemon = await startDaemon();
  process.env['FERRY_SOCKET'] = daemon.socket;
  server = http.createServer(handler);
  listenThroughFerry(server, 'tcp://127.0.0.1:0');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});

after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await daemon.stop();
});

async function sessionsSeen(): Promise<{ transport: string; local: string; remote: string }[]> {
  return (await daemon.show('sessions')) as { transport: string; local: string; remote: string }[];
}

/** Sessions the server's Ferry listener accepted so far (ferryd's count). */
async function acceptedCount(): Promise<number> {
  const ls = (await daemon.show('listeners')) as { uri: string; accepted: number }[];
  const l = ls.find((x) => x.uri.endsWith(`:${port}`));
  assert.ok(l, JSON.stringify(ls));
  return l.accepted;
}

test('the server looks like a listening net.Server', () => {
  assert.equal(server.listening, true);
  assert.ok(ferryListenerOf(server));
  assert.ok(port > 0);
});

test('node:http through FerryAgent: keep-alive, bodies, cut-through', async () => {
  const agent = new FerryAgent({ keepAlive: true, maxSockets: 2 });
  const get = (path: string, body?: Buffer) =>
    new Promise<{ status: number; body: Buffer; transport: string | undefined }>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path, method: body ? 'POST' : 'GET', agent },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              body: Buffer.concat(parts),
              transport: innerSocket(req.socket as never)?.transport,
            }),
          );
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  seen.length = 0;
  const acceptedBefore = await acceptedCount();
  const a = await get('/a');
  assert.equal(a.status, 200);
  assert.equal(a.body.toString(), 'hello /a');
  assert.equal(a.transport, 'ct');
  // While the keep-alive socket is open, ferryd lists its cut-through session.
  const live = await sessionsSeen();
  assert.ok(
    live.some((s) => s.transport === 'ct' && s.remote.endsWith(`:${port}`)),
    JSON.stringify(live),
  );
  const big = Buffer.alloc(3_000_001, 7);
  const b = await get('/echo', big);
  assert.equal(b.body.length, big.length);
  assert.ok(b.body.equals(big));
  const many = await Promise.all(Array.from({ length: 20 }, (_, i) => get(`/${i}`)));
  assert.deepEqual(
    many.map((r) => r.body.toString()),
    Array.from({ length: 20 }, (_, i) => `hello /${i}`),
  );
  assert.ok(seen.length === 22 && seen.every((t) => t === 'ct'), seen.join());
  // 22 requests on two sessions at most: the agent kept them alive and reused them.
  const sessions = (await acceptedCount()) - acceptedBefore;
  assert.ok(sessions >= 1 && sessions <= 2, `sessions accepted: ${sessions}`);
  agent.destroy();
});

test('undici.request and Node’s own fetch through the Ferry dispatcher', async () => {
  const dispatcher = createFerryDispatcher() as Dispatcher;
  seen.length = 0;
  const r = await request(`http://127.0.0.1:${port}/undici`, { dispatcher });
  assert.equal(r.statusCode, 200);
  assert.equal(await r.body.text(), 'hello /undici');
  const previous = getGlobalDispatcher();
  setGlobalDispatcher(dispatcher);
  try {
    const res = await fetch(`http://localhost:${port}/fetch`, { method: 'POST', body: 'x'.repeat(100_000) });
    assert.equal(res.status, 200);
    assert.equal((await res.text()).length, 100_000);
    const g = await fetch(`http://127.0.0.1:${port}/fetch2`);
    assert.equal(await g.text(), 'hello /fetch2');
  } finally {
    setGlobalDispatcher(previous);
  }
  assert.deepEqual(seen, ['ct', 'ct', 'ct']);
  await dispatcher.close();
});

test('a plain kernel server is reached through ferryd (tcp), not cut-through', async () => {
  const plain = http.createServer((_req, res) => res.end('kernel side'));
  plain.listen(0, '127.0.0.1');
  await once(plain, 'listening');
  const plainPort = (plain.address() as AddressInfo).port;
  const agent = new FerryAgent();
  const text = await new Promise<{ body: string; transport: string | undefined }>((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: plainPort, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ body, transport: innerSocket(req.socket as never)?.transport }));
    });
    req.on('error', reject);
  });
  assert.equal(text.body, 'kernel side');
  assert.equal(text.transport, 'tcp');
  agent.destroy();
  plain.close();
});

test('ws: a WebSocket server on the Ferry-served http server and a client through FerryAgent', async () => {
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  const agent = new FerryAgent();
  const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`, { agent });
  await once(ws, 'open');
  assert.equal(innerSocket((ws as unknown as { _socket: never })._socket)?.transport, 'ct');
  const replies: string[] = [];
  ws.on('message', (m) => replies.push(m.toString()));
  const big = 'y'.repeat(1 << 20);
  for (let i = 0; i < 50; i++) ws.send(`m${i}`);
  ws.send(big);
  while (replies.length < 51) await once(ws, 'message');
  assert.deepEqual(
    replies.slice(0, 50),
    Array.from({ length: 50 }, (_, i) => `m${i}`),
  );
  assert.equal(replies[50], big);
  ws.close(1000, 'done');
  const [code] = await once(ws, 'close');
  assert.equal(code, 1000);
  wss.close();
  agent.destroy();
});

test('https through ferryd’s TLS: FerryHttpsAgent and the undici dispatcher to a tls:// listener', async (t) => {
  if (!hasBinary('openssl')) {
    if (process.env['CI']) assert.fail('openssl is missing (.ci/run installs it)');
    t.skip('openssl is not installed (needed to make a test certificate)');
    return;
  }
  const certs = makeTestCerts();
  const secure = http.createServer(handler);
  try {
    // A plain node:http server behind a tls:// Ferry listener: ferryd serves the certificate.
    listenThroughFerry(secure, 'tls://127.0.0.1:0', { tls: { cert: certs.cert, key: certs.key } });
    await once(secure, 'listening');
    const tlsPort = (secure.address() as AddressInfo).port;
    seen.length = 0;
    const agent = new FerryHttpsAgent({ ca: certs.ca });
    const body = await new Promise<string>((resolve, reject) => {
      https
        .get({ host: 'localhost', port: tlsPort, path: '/secure', agent }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            text += d;
          });
          res.on('end', () => resolve(text));
        })
        .on('error', reject);
    });
    assert.equal(body, 'hello /secure');
    agent.destroy();
    const dispatcher = createFerryDispatcher({ ca: certs.ca }) as Dispatcher;
    const r = await request(`https://localhost:${tlsPort}/undici-tls`, { dispatcher });
    assert.equal(await r.body.text(), 'hello /undici-tls');
    await dispatcher.close();
    // The certificate verified, so ferryd let the two apps talk cut-through (no TLS on loopback).
    assert.deepEqual(seen, ['ct', 'ct']);
    // Without the CA ferryd refuses the certificate: verification is real.
    const refused = createFerryDispatcher() as Dispatcher;
    await assert.rejects(request(`https://localhost:${tlsPort}/`, { dispatcher: refused }), {
      code: 'ERR_FERRY_TLS_CERT',
    });
    await refused.close();
  } finally {
    secure.close();
    certs.remove();
  }
});
