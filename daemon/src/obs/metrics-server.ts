/**
 * The Prometheus endpoint: `GET /metrics` on the address given (`ferry daemon --metrics
 * HOST:PORT`, or `metrics.listen` in the configuration file), nothing else. Off unless asked for;
 * it binds exactly the host given (no wildcard default), because the metrics describe the apps
 * (their namespaces, their traffic) to whoever can reach it.
 */
import { createServer, type Server } from 'node:http';
import type { Registry } from 'prom-client';
import type { ListenAddress } from './listen-address.js';

export function startMetricsServer(
  addr: ListenAddress,
  registry: Registry,
  log: (line: string) => void,
): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET only\n');
      return;
    }
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: Error) => {
        log(`metrics: ${err.message}`);
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n');
      },
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 10_000;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(addr.port, addr.host, () => {
      server.off('error', reject);
      server.on('error', (err) => log(`metrics endpoint: ${err.message}`));
      // The endpoint does not keep ferryd alive on its own.
      server.unref();
      resolve(server);
    });
  });
}
