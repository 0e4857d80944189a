/**
 * An ordinary ws client (no Ferry in it): `node ws-client.js URL`. Sends text and binary messages
 * of several sizes, then prints what came back (sizes, kinds, a hash) and the close code as JSON.
 */
import { createHash } from 'node:crypto';
import WebSocket from 'ws';

const ws = new WebSocket(process.argv[2] ?? 'ws://127.0.0.1:8080');
const sizes = [0, 1, 125, 126, 65535, 65536, 1 << 20];
const got: { binary: boolean; length: number }[] = [];
const hash = createHash('sha256');
ws.on('open', () => {
  for (const n of sizes) {
    ws.send('t'.repeat(n));
    ws.send(Buffer.alloc(n, n % 256), { binary: true });
  }
});
ws.on('message', (data: Buffer, isBinary: boolean) => {
  got.push({ binary: isBinary, length: data.length });
  hash.update(data);
  if (got.length === sizes.length * 2) ws.close(1000, 'bye');
});
ws.on('close', (code: number) => {
  console.log(JSON.stringify({ got, sha: hash.digest('hex').slice(0, 16), code }));
});
ws.on('error', (err) => console.log(JSON.stringify({ error: String(err) })));
