/**
 * An ordinary STARTTLS server (no Ferry in it), the way database protocols upgrade a plain
 * connection: `node starttls-server.js PORT CERT KEY`. A client sends "STARTTLS\n", gets "OK\n",
 * then both run TLS over the same socket (new tls.TLSSocket on the accepted one); it echoes.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, cert, key] = process.argv.slice(2) as [string, string, string];
const secureContext = tls.createSecureContext({ cert: readFileSync(cert), key: readFileSync(key) });
const server = net.createServer((socket) => {
  socket.once('data', (line: Buffer) => {
    if (line.toString() !== 'STARTTLS\n') {
      socket.end('NO\n');
      return;
    }
    socket.write('OK\n');
    const secure = new tls.TLSSocket(socket, { isServer: true, secureContext });
    secure.on('error', () => {});
    secure.pipe(secure);
  });
});
server.listen(Number(port), '127.0.0.1', () => console.log(`listening ${port}`));
