/**
 * An ordinary STARTTLS client (no Ferry in it): `node starttls-client.js PORT CA`. Connects in
 * plain text, asks for TLS, upgrades with tls.connect({ socket }), sends 200 kB and prints what
 * came back (length, hash, whether the certificate verified) as JSON.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const [port, ca] = process.argv.slice(2) as [string, string];
const plain = net.connect(Number(port), '127.0.0.1', () => plain.write('STARTTLS\n'));
plain.once('data', (answer: Buffer) => {
  if (answer.toString() !== 'OK\n') throw new Error(`server said ${answer}`);
  const secure = tls.connect({ socket: plain, ca: readFileSync(ca), servername: 'localhost' }, () => {
    secure.end(Buffer.alloc(200_000, 9));
  });
  const hash = createHash('sha256');
  let length = 0;
  secure.on('data', (d: Buffer) => {
    length += d.length;
    hash.update(d);
  });
  secure.on('end', () => {
    console.log(
      JSON.stringify({ length, sha: hash.digest('hex').slice(0, 16), authorized: secure.authorized }),
    );
    secure.destroy();
  });
});
