/**
 * The implementations a conformance scenario runs against. A scenario is written once against a
 * `net`-shaped module (createServer, connect, listen) and a Target says which module serves each
 * side and how to name addresses: node:net over a unix socket and over TCP loopback (the
 * reference), Ferry to Ferry (cut-through), the two mixed pairs where ferryd carries a kernel
 * TCP connection to or from a node:net peer, and the same two pairs in handoff mode (ferryd hands
 * the kernel socket to the Ferry app, which then reads and writes it itself).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ferry from '@ferry/sdk';
import { HandedSocket } from '@ferry/sdk/internal';

// The smallest common surface of node:net and @ferry/sdk that scenarios use. Loosely typed on
// purpose: the point is to call both through one shape and observe what they do.
// biome-ignore lint/suspicious/noExplicitAny: sockets of two libraries behind one shape
export type SocketLike = any;
// biome-ignore lint/suspicious/noExplicitAny: servers of two libraries behind one shape
export type ServerLike = any;

export interface NetModule {
  createServer(options?: object, onConnection?: (s: SocketLike) => void): ServerLike;
  connect(...args: unknown[]): SocketLike;
  /** `new Socket(options)`, not connected yet. */
  newSocket(options?: object): SocketLike;
}

export type TargetName =
  | 'net-unix'
  | 'net-tcp'
  | 'ferry-ct'
  | 'ferry-server-net-client'
  | 'net-server-ferry-client'
  | 'ferry-handoff-server-net-client'
  | 'net-server-ferry-handoff-client';

export interface Target {
  name: TargetName;
  /** 'unix': addresses are paths; 'inet': 127.0.0.1 and ports (every Ferry target). */
  kind: 'unix' | 'inet';
  /** True when either side is Ferry (those are the targets compared against the reference). */
  ferry: boolean;
  server: NetModule;
  client: NetModule;
  /** A fresh address to listen on, in the server module's own form. */
  listenArg(): unknown;
  /** The address `server` listens on, as a listen argument (to listen there twice). */
  listenArgAt(server: ServerLike): unknown;
  /** Connect options (path, or host and port) reaching `server`, which is listening. */
  connectOpts(server: ServerLike): Record<string, unknown>;
  /** Where nothing listens: a stale unix socket file, or a loopback port just closed. */
  refusedOpts(): Promise<Record<string, unknown>>;
}

const nodeNet: NetModule = {
  createServer: (options, onConnection) => net.createServer(options ?? {}, onConnection),
  connect: (...args) => (net.connect as (...a: unknown[]) => net.Socket)(...args),
  newSocket: (options) => new net.Socket(options),
};

const ferryNet: NetModule = {
  createServer: (options, onConnection) =>
    ferry.createServer((options ?? {}) as ferry.ServerOptions, onConnection as (s: ferry.Socket) => void),
  connect: (...args) => (ferry.connect as (...a: unknown[]) => ferry.Socket)(...args),
  newSocket: (options) => new ferry.Socket(options as ferry.SocketOptions),
};

/** connect()'s arguments with `handoff: true` added (every form net.connect takes). */
function withHandoff(args: unknown[]): unknown[] {
  const [a, b, c] = args;
  if (typeof a === 'number') {
    const cb = [b, c].filter((x) => typeof x === 'function');
    return [{ port: a, ...(typeof b === 'string' ? { host: b } : {}), handoff: true }, ...cb];
  }
  if (typeof a === 'string') return [{ uri: a, handoff: true }, ...args.slice(1)];
  if (a !== null && typeof a === 'object') return [{ ...a, handoff: true }, ...args.slice(1)];
  return args;
}

/** Ferry asking for handoff on every listen and connect (tcp://: ferryd hands the kernel socket). */
const ferryHandoff: NetModule = {
  createServer: (options, onConnection) =>
    ferry.createServer(
      { ...((options ?? {}) as ferry.ServerOptions), handoff: true },
      onConnection as (s: ferry.Socket) => void,
    ),
  connect: (...args) => (ferry.connect as (...a: unknown[]) => ferry.Socket)(...withHandoff(args)),
  // A HandedSocket's connect() asks for handoff, as connect() with `handoff: true` does.
  newSocket: (options) => new HandedSocket(options as ferry.SocketOptions),
};

let dir = '';
let seq = 0;
function freshPath(): string {
  if (!dir) dir = mkdtempSync(join(tmpdir(), 'ferry-conf-'));
  return join(dir, `s${++seq}.sock`);
}

function inetOpts(server: ServerLike): Record<string, unknown> {
  return { host: '127.0.0.1', port: (server.address() as { port: number }).port };
}

/** A loopback port that was just free: bound by a kernel listener and closed again. */
async function closedPort(): Promise<Record<string, unknown>> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return { host: '127.0.0.1', port };
}

/** A unix socket file nobody listens on (ECONNREFUSED, as a closed TCP port): a node process
 *  listens and exits without closing, which leaves the file behind. */
async function stalePath(): Promise<Record<string, unknown>> {
  const path = freshPath();
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`],
    { stdio: 'ignore' },
  );
  await once(child, 'exit');
  return { path };
}

export const TARGETS: readonly Target[] = [
  {
    name: 'net-unix',
    kind: 'unix',
    ferry: false,
    server: nodeNet,
    client: nodeNet,
    listenArg: () => freshPath(),
    listenArgAt: (server) => server.address(),
    connectOpts: (server) => ({ path: server.address() as string }),
    refusedOpts: stalePath,
  },
  {
    name: 'net-tcp',
    kind: 'inet',
    ferry: false,
    server: nodeNet,
    client: nodeNet,
    listenArg: () => ({ port: 0, host: '127.0.0.1' }),
    listenArgAt: (server) => ({ port: server.address().port, host: '127.0.0.1' }),
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
  {
    name: 'ferry-ct',
    kind: 'inet',
    ferry: true,
    server: ferryNet,
    client: ferryNet,
    listenArg: () => 'tcp://127.0.0.1:0',
    listenArgAt: (server) => `tcp://127.0.0.1:${server.address().port}`,
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
  {
    // ferryd's kernel listener accepts the node:net client and carries the session to the app.
    name: 'ferry-server-net-client',
    kind: 'inet',
    ferry: true,
    server: ferryNet,
    client: nodeNet,
    listenArg: () => 'tcp://127.0.0.1:0',
    listenArgAt: (server) => `tcp://127.0.0.1:${server.address().port}`,
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
  {
    // ferryd opens the kernel TCP connection to the node:net server for the Ferry client.
    name: 'net-server-ferry-client',
    kind: 'inet',
    ferry: true,
    server: nodeNet,
    client: ferryNet,
    listenArg: () => ({ port: 0, host: '127.0.0.1' }),
    listenArgAt: (server) => ({ port: server.address().port, host: '127.0.0.1' }),
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
  {
    // As ferry-server-net-client, with the listen in handoff mode: ferryd accepts and hands the
    // accepted kernel socket to the app.
    name: 'ferry-handoff-server-net-client',
    kind: 'inet',
    ferry: true,
    server: ferryHandoff,
    client: nodeNet,
    listenArg: () => 'tcp://127.0.0.1:0',
    listenArgAt: (server) => `tcp://127.0.0.1:${server.address().port}`,
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
  {
    // As net-server-ferry-client, with the connect in handoff mode: ferryd connects and hands the
    // kernel socket to the app.
    name: 'net-server-ferry-handoff-client',
    kind: 'inet',
    ferry: true,
    server: nodeNet,
    client: ferryHandoff,
    listenArg: () => ({ port: 0, host: '127.0.0.1' }),
    listenArgAt: (server) => ({ port: server.address().port, host: '127.0.0.1' }),
    connectOpts: inetOpts,
    refusedOpts: closedPort,
  },
];

export function target(name: TargetName): Target {
  const t = TARGETS.find((x) => x.name === name);
  if (!t) throw new Error(`no target ${name}`);
  return t;
}
