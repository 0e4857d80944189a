/**
 * What wrapping a handed TCP descriptor costs an app: `new net.Socket({ fd })` (libuv guesses the
 * descriptor's type: fstat, getsockopt, getsockname) against a TCP handle made directly
 * (`wrapTcpFd`, sdk/src/api/tcp-handle.ts). Connected descriptors come from bare connects to a
 * local listener (made outside the timed part); only the wrap is timed, in batches, the two
 * ways interleaved. Bounded: `--batches` x `--batch` descriptors each way.
 *
 *   node examples/dist/bench/handed-wrap.js --batches 20 --batch 100
 */
import * as net from 'node:net';
import { parseArgs } from 'node:util';
import { tcpConnect, tcpConnected, tcpInfo, tcpSocket, wrapTcpFd } from '@ferry/sdk/internal';
import { upperMedian as median } from './median.js';

const { values } = parseArgs({
  options: { batches: { type: 'string', default: '20' }, batch: { type: 'string', default: '100' } },
});
const batches = Number(values.batches);
const batch = Number(values.batch);

// The server side is closed at once: the wrapped descriptors are only wrapped, never read.
const server = net.createServer({ pauseOnConnect: true }, (s) => s.destroy());
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = (server.address() as net.AddressInfo).port;

const opts = { readable: true, writable: true, allowHalfOpen: true, pauseOnCreate: true };
const ways: Record<string, (fd: number) => net.Socket> = {
  'net.Socket({ fd })': (fd) => new net.Socket({ ...opts, fd } as net.SocketConstructorOpts),
  wrapTcpFd: (fd) => wrapTcpFd(fd, opts as net.SocketConstructorOpts),
};
const samples: Record<string, number[]> = {};

for (let b = 0; b < batches; b++) {
  const names = Object.keys(ways);
  for (const name of b % 2 ? names.reverse() : names) {
    const fds: number[] = [];
    for (let i = 0; i < batch; i++) {
      const fd = tcpSocket('127.0.0.1');
      let connected = tcpConnect(fd, '127.0.0.1', port);
      for (let t = 0; !connected && t < 3000; t++) {
        await new Promise((r) => setTimeout(r, 1));
        connected = tcpConnected(fd, '127.0.0.1', port);
      }
      if (!connected)
        throw new Error(`loopback connect did not complete in 3 s (batch ${b}, ${i}, ${tcpInfo(fd).state})`);
      fds.push(fd);
    }
    const wrap = ways[name] as (fd: number) => net.Socket;
    const t0 = process.hrtime.bigint();
    const socks = fds.map((fd) => wrap(fd));
    const ns = Number(process.hrtime.bigint() - t0);
    samples[name] = [...(samples[name] ?? []), ns / batch / 1000];
    for (const s of socks) s.destroy();
    await new Promise((r) => setImmediate(r));
  }
}
server.close();
for (const [name, xs] of Object.entries(samples)) {
  console.log(
    `${name.padEnd(20)} median ${median(xs).toFixed(2)} us per wrap (${xs.length} batches of ${batch})`,
  );
}
