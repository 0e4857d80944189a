/**
 * An ordinary fastify app (no Ferry in it): `node fastify-server.js PORT` (or a unix socket PATH).
 * GET /hello (JSON), GET /bytes/:n (n bytes), POST /echo (the body back).
 */
import Fastify from 'fastify';

const where = process.argv[2] ?? '8080';
const listenOn = /^\d+$/.test(where) ? { port: Number(where), host: '127.0.0.1' } : { path: where };
const app = Fastify({ logger: false });
app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 16 << 20 }, (_req, body, done) =>
  done(null, body),
);
app.get('/hello', async () => ({ hello: 'world' }));
app.get<{ Params: { n: string } }>('/bytes/:n', async (req, reply) => {
  const n = Math.min(Number(req.params.n) || 0, 16 << 20);
  return reply.type('application/octet-stream').send(Buffer.alloc(n, 'x'));
});
app.post('/echo', async (req, reply) => reply.type('application/octet-stream').send(req.body));
app.listen(listenOn).then(
  (address) => console.log(`listening ${address}`),
  (err: Error) => {
    console.error(err);
    process.exit(1);
  },
);
