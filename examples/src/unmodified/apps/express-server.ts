/**
 * An ordinary express app (no Ferry in it): `node express-server.js PORT` (or a unix socket PATH). Same routes as
 * fastify-server: GET /hello (JSON), GET /bytes/:n, POST /echo.
 */
import express from 'express';

const where = process.argv[2] ?? '8080';
const app = express();
app.use(express.raw({ type: '*/*', limit: 16 << 20 }));
app.get('/hello', (_req, res) => {
  res.json({ hello: 'world' });
});
app.get('/bytes/:n', (req, res) => {
  const n = Math.min(Number(req.params['n']) || 0, 16 << 20);
  res.type('application/octet-stream').send(Buffer.alloc(n, 'x'));
});
app.post('/echo', (req, res) => {
  res.type('application/octet-stream').send(req.body);
});
const ready = () => console.log(`listening ${where}`);
const server = /^\d+$/.test(where) ? app.listen(Number(where), '127.0.0.1', ready) : app.listen(where, ready);
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
