/**
 * An ordinary node:http client (no Ferry in it): `node http-client.js BASE_URL`. GETs and POSTs
 * with node's global agent (keep-alive) and prints status, length and hash of each answer as JSON.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

const base = process.argv[2] ?? 'http://127.0.0.1:8080';
const one = (path: string, body?: Buffer) =>
  new Promise<{ path: string; status: number; length: number; sha: string }>((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: body ? 'POST' : 'GET' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => {
        const all = Buffer.concat(parts);
        const sha = createHash('sha256').update(all).digest('hex').slice(0, 16);
        resolve({ path, status: res.statusCode ?? 0, length: all.length, sha });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
const results = [
  await one('/hello'),
  await one('/bytes/500000'),
  await one('/echo', Buffer.alloc(700_000, 3)),
  ...(await Promise.all(Array.from({ length: 8 }, () => one('/hello')))),
];
console.log(JSON.stringify(results));
http.globalAgent.destroy();
