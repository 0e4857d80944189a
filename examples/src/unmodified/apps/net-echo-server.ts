/**
 * An ordinary node:net echo server (no Ferry in it): `node net-echo-server.js PORT`.
 * Transparent mode tests run it as is and under `--import @ferry/sdk/register`.
 */
import net from 'node:net';

const port = Number(process.argv[2]);
const server = net.createServer((socket) => socket.pipe(socket));
server.listen(port, '127.0.0.1', () => {
  const a = server.address() as net.AddressInfo;
  console.log(`listening ${a.address}:${a.port}`);
});
