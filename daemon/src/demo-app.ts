/** The demo app: an echo server and a client in one process, talking cut-through via ferryd. */
import { createHash, randomBytes } from 'node:crypto';
import { connect, createServer } from '@ferry/sdk';

const server = createServer((sock) => sock.pipe(sock));
server.listen('tcp://127.0.0.1:0', () => {
  const addr = server.address();
  if (!addr) throw new Error('server has no address');
  console.log(`echo server listening on ${addr.uri} (cut-through listener)`);
  const payload = randomBytes(4 * 1024 * 1024);
  const started = process.hrtime.bigint();
  const client = connect(addr.uri, () => {
    console.log(
      `client connected ${client.localAddress}:${client.localPort} -> ${addr.uri} via '${client.transport}'`,
    );
    client.end(payload);
  });
  const got: Buffer[] = [];
  client.on('data', (d: Buffer) => got.push(d));
  client.on('end', () => {
    const back = Buffer.concat(got);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const same =
      createHash('sha256').update(back).digest('hex') === createHash('sha256').update(payload).digest('hex');
    console.log(
      `echoed ${back.length} bytes in ${ms.toFixed(1)} ms, checksum ${same ? 'matches' : 'DIFFERS'}`,
    );
    server.close();
    process.exitCode = same ? 0 : 1;
  });
  client.on('error', (err) => {
    console.error(`client error: ${err.message}`);
    process.exitCode = 1;
    server.close();
  });
});
server.on('error', (err) => {
  console.error(`server error: ${err.message}`);
  process.exitCode = 1;
});
