/**
 * Echo server on the Ferry SDK: the node:net echo server with one import changed.
 *   node examples/dist/echo/server.js [uri]        (default tcp://127.0.0.1:7000)
 */
import { createServer } from '@ferry/sdk';

const uri = process.argv[2] ?? 'tcp://127.0.0.1:7000';

// snippet:echo-server {
const server = createServer((socket) => {
  socket.pipe(socket);
  socket.on('error', (err) => console.error(`connection error: ${err.message}`));
});
server.listen(uri, () => console.log(`echo server listening on ${server.address()?.uri}`));
// }
server.on('error', (err) => {
  console.error(`echo server: ${err.message}`);
  process.exitCode = 1;
});
process.on('SIGINT', () => server.close(() => process.exit(0)));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
