/**
 * A Socket server in its own process that hashes what each connection sends: for tests of the
 * data path between two processes, where a reader that sleeps is woken only by what its peer tells
 * it. Reports to the parent over IPC: { uri } once listening, { got } (bytes so far) after each
 * read, { bytes, sha256 } per connection at its end (the socket then ends too). Takes FERRY_MODE
 * from its environment.
 */
import { createHash } from 'node:crypto';
import { createServer } from '@ferry/sdk';

const send = (m: Record<string, unknown>) => process.send?.(m);

const server = createServer((s) => {
  const hash = createHash('sha256');
  let bytes = 0;
  s.on('error', (err) => send({ error: String(err) }));
  s.on('data', (b: Buffer) => {
    hash.update(b);
    bytes += b.length;
    send({ got: bytes });
  });
  s.on('end', () => {
    send({ bytes, sha256: hash.digest('hex') });
    s.end();
  });
});
server.listen('tcp://127.0.0.1:0', () => send({ uri: server.address()?.uri ?? '' }));
// The parent's end is this process's end.
process.on('disconnect', () => process.exit(0));
