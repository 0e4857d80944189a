/**
 * An ordinary express app (no Ferry in it): `node express-server.js PORT`. Same routes as
 * fastify-server: GET /hello (JSON), GET /bytes/:n, POST /echo.
 */
import express from 'express';

const port = Number(process.argv[2]);
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
const server = app.listen(port, '127.0.0.1', () => console.log(`listening ${port}`));
server.on('error', (err) => {
  console.error(err);
  process.exit(1);
});
