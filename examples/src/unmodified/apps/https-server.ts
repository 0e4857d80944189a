/** An ordinary node:https server (no Ferry in it): `node https-server.js PORT CERT KEY`. */
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [port, cert, key] = process.argv.slice(2) as [string, string, string];
const server = https.createServer({ cert: readFileSync(cert), key: readFileSync(key) }, (req, res) => {
  const parts: Buffer[] = [];
  req.on('data', (d: Buffer) => parts.push(d));
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(
      `${req.method} ${req.url} ${Buffer.concat(parts).length} bytes, tls ${(req.socket as { getProtocol?: () => string }).getProtocol?.()}`,
    );
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`));
