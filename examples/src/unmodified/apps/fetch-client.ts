/**
 * An ordinary fetch client (no Ferry in it): `node fetch-client.js BASE_URL`. Runs a fixed set of
 * requests and prints, as JSON, what a user would compare: status, content type, length and hash
 * of every body. Then it waits for stdin to close, so a test can look at the open connections.
 */
import { createHash } from 'node:crypto';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const sha = (b: ArrayBuffer) => createHash('sha256').update(Buffer.from(b)).digest('hex').slice(0, 16);

async function one(path: string, init?: RequestInit) {
  const res = await fetch(`${base}${path}`, init);
  const body = await res.arrayBuffer();
  return {
    path,
    status: res.status,
    type: res.headers.get('content-type'),
    length: body.byteLength,
    sha: sha(body),
  };
}

const upload = Buffer.alloc(1_000_000);
for (let i = 0; i < upload.length; i++) upload[i] = i % 253;
const results = [
  await one('/hello'),
  await one('/bytes/100000'),
  await one('/echo', {
    method: 'POST',
    body: upload,
    headers: { 'content-type': 'application/octet-stream' },
  }),
  await one('/missing'),
  ...(await Promise.all(Array.from({ length: 20 }, () => one('/hello')))),
];
console.log(JSON.stringify(results));
console.log('done');
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
