/**
 * An ordinary node:http server (no Ferry in it, no dependencies): `node http-server.js PORT
 * [HOST]`. Same routes as fastify-server: GET /hello (JSON), GET /bytes/N, POST /echo, else 404.
 */
import http from 'node:http';

const port = Number(process.argv[2] ?? 8080);
const host = process.argv[3] ?? '127.0.0.1';
const server = http.createServer((req, res) => {
  const bytes = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
  if (req.method === 'GET' && req.url === '/hello') {
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end('{"hello":"world"}');
  } else if (req.method === 'GET' && bytes) {
    const n = Math.min(Number(bytes[1]), 16 << 20);
    res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(Buffer.alloc(n, 'x'));
  } else if (req.method === 'POST' && req.url === '/echo') {
    res.writeHead(200, { 'content-type': 'application/octet-stream' });
    req.pipe(res);
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  }
});
server.listen(port, host, () => console.log(`listening ${host}:${port}`));
