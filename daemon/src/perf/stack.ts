/** The two stacks perf can drive through one code path: Ferry's SDK, and node:net as the baseline. */
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import * as ferry from '@ferry/sdk';

export type StackName = 'ferry' | 'net';

export interface Stack {
  name: StackName;
  connect(target: string): Duplex;
  listen(target: string, onConn: (s: Duplex) => void): Promise<{ close(): void; uri: string }>;
}

/** node:net targets: `unix:/path` or `tcp://host:port`. */
function netAddress(target: string): { path?: string; host?: string; port?: number } {
  if (target.startsWith('unix:')) return { path: target.slice(5) };
  const m = /^tcp:\/\/(.+):(\d+)$/.exec(target);
  if (!m) throw new Error(`net target must be unix:/path or tcp://host:port, got ${target}`);
  return { host: (m[1] ?? '').replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

function bracketed(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export function stackFor(name: StackName, opts: ferry.ConnectOptions = {}): Stack {
  if (name === 'net') {
    return {
      name,
      connect: (target) => {
        const s = net.connect(netAddress(target) as net.NetConnectOpts);
        s.setNoDelay(true);
        return s;
      },
      listen: (target, onConn) =>
        new Promise((resolve, reject) => {
          const srv = net.createServer((s) => {
            s.setNoDelay(true);
            onConn(s);
          });
          srv.once('error', reject);
          const a = netAddress(target);
          const done = () => {
            const bound = srv.address();
            // Port 0 asks the kernel for one: report the port it gave, as the SDK's listen does.
            const uri =
              a.path || bound === null || typeof bound === 'string'
                ? target
                : `tcp://${bracketed(a.host ?? bound.address)}:${bound.port}`;
            resolve({ close: () => srv.close(), uri });
          };
          if (a.path) srv.listen(a.path, done);
          else srv.listen(a.port ?? 0, a.host, done);
        }),
    };
  }
  return {
    name,
    connect: (target) => ferry.connect({ ...opts, uri: target }),
    listen: (target, onConn) =>
      new Promise((resolve, reject) => {
        const srv = ferry.createServer(opts, onConn);
        srv.once('error', reject);
        srv.listen(target, () => resolve({ close: () => srv.close(), uri: srv.address()?.uri ?? target }));
      }),
  };
}
