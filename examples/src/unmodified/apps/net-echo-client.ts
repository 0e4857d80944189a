/**
 * An ordinary node:net client (no Ferry in it): `node net-echo-client.js PORT BYTES`. Connects with
 * `new net.Socket().connect()`, sends BYTES deterministic bytes in 64 KiB writes, half-closes, and
 * prints what it observed as JSON: the events in order, the byte count and hash of the echo.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';

const port = Number(process.argv[2]);
const total = Number(process.argv[3] ?? 1_000_000);
const events: string[] = [];
const hash = createHash('sha256');
const sent = createHash('sha256');
let received = 0;
const socket = new net.Socket();
let remoteAtConnect = '';
socket.connect(port, '127.0.0.1', () => {
  events.push('connect');
  remoteAtConnect = `${socket.remoteAddress}:${socket.remotePort} ${socket.remoteFamily}`;
  for (let off = 0; off < total; off += 65536) {
    const chunk = Buffer.alloc(Math.min(65536, total - off));
    for (let i = 0; i < chunk.length; i++) chunk[i] = (off + i) % 251;
    sent.update(chunk);
    socket.write(chunk);
  }
  socket.end();
});
socket.on('data', (d: Buffer) => {
  received += d.length;
  hash.update(d);
});
socket.on('end', () => events.push('end'));
socket.on('finish', () => events.push('finish'));
socket.on('error', (err: Error & { code?: string }) => events.push(`error ${err.code}`));
socket.on('close', (hadError: boolean) => {
  events.push(`close ${hadError}`);
  // 'finish' and 'end' race (both sides are busy); their order is not part of the contract.
  const ordered = [
    ...events.filter((e) => e === 'connect'),
    ...events.filter((e) => e === 'end' || e === 'finish').sort(),
    ...events.filter((e) => e.startsWith('close') || e.startsWith('error')),
  ];
  console.log(
    JSON.stringify({
      events: ordered,
      received,
      intact: hash.digest('hex') === sent.digest('hex'),
      isNetSocket: socket instanceof net.Socket,
      remoteAtConnect,
      // Still known after close only because it was read while connected (net caches it).
      remoteAtClose: `${socket.remoteAddress}:${socket.remotePort}`,
      local: socket.localAddress ?? 'gone',
    }),
  );
});
