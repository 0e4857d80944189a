/**
 * A small HTTP/1.1 server on the Ferry SDK: node:http's parser and keep-alive over Ferry sockets.
 * Local SDK clients reach it through cut-through, curl and browsers through ferryd's TCP listener.
 *   node examples/dist/http/server.js [uri]        (default tcp://127.0.0.1:8080)
 *   node examples/dist/http/server.js tls://127.0.0.1:8443 --cert cert.pem --key key.pem
 * With a tls:// URI ferryd terminates TLS (HTTPS for curl); without --cert/--key it serves the
 * certificate ferryd was started with (--tls-cert/--tls-key).
 * Routes: GET / (a greeting), GET /bytes/N (N bytes), POST /echo (the body back), else 404.
 */
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { createServer } from '@ferry/sdk';

const MAX_BYTES = 64 * 1024 * 1024;

function handle(req: IncomingMessage, res: ServerResponse): void {
  const url = req.url ?? '/';
  if (req.method === 'GET' && url === '/') {
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello from ferry\n');
    return;
  }
  const bytes = /^\/bytes\/(\d+)$/.exec(url);
  if (req.method === 'GET' && bytes) {
    const n = Math.min(Number(bytes[1]), MAX_BYTES);
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
    res.end(Buffer.alloc(n, 'x'));
    return;
  }
  if (req.method === 'POST' && url === '/echo') {
    res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
    req.pipe(res);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { cert: { type: 'string' }, key: { type: 'string' } },
});
const uri = positionals[0] ?? 'tcp://127.0.0.1:8080';
const tls =
  values.cert && values.key
    ? { cert: readFileSync(values.cert, 'utf8'), key: readFileSync(values.key, 'utf8') }
    : undefined;
// snippet:http-server {
// node:http speaks HTTP over any net.Socket-shaped stream: hand it each Ferry socket.
const http = createHttpServer(handle);
const server = createServer((socket) => {
  socket.on('error', () => {});
  http.emit('connection', socket);
});
server.listen({ uri, ...(tls ? { tls } : {}) }, () =>
  console.log(`http server listening on ${server.address()?.uri}`),
);
// }
server.on('error', (err) => {
  console.error(`http server: ${err.message}`);
  process.exitCode = 1;
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
