/**
 * A tiny Redis stand-in (no Ferry in it) for the driver test: `node fake-redis.js PORT`. Speaks
 * RESP2 requests (arrays of bulk strings) and answers PING, ECHO, SET, GET, INCR, DEL, QUIT and,
 * for anything else, an error. Enough for an unmodified ioredis client to do real work.
 */
import net from 'node:net';

const store = new Map<string, Buffer>();
const bulk = (b: Buffer | undefined) =>
  b === undefined
    ? Buffer.from('$-1\r\n')
    : Buffer.concat([Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n')]);

/** One command from the front of `buf`: its parts and the bytes it took, or null if incomplete. */
function parse(buf: Buffer): { parts: Buffer[]; used: number } | null {
  if (buf.length === 0 || buf[0] !== 0x2a) throw new Error('expected an array');
  let at = buf.indexOf('\r\n');
  if (at < 0) return null;
  const n = Number(buf.subarray(1, at).toString());
  let pos = at + 2;
  const parts: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    at = buf.indexOf('\r\n', pos);
    if (at < 0) return null;
    const len = Number(buf.subarray(pos + 1, at).toString());
    const start = at + 2;
    if (buf.length < start + len + 2) return null;
    parts.push(buf.subarray(start, start + len));
    pos = start + len + 2;
  }
  return { parts, used: pos };
}

function run(parts: Buffer[]): Buffer {
  const cmd = parts[0]?.toString().toUpperCase();
  const key = parts[1]?.toString() ?? '';
  switch (cmd) {
    case 'PING':
      return Buffer.from('+PONG\r\n');
    case 'ECHO':
      return bulk(parts[1]);
    case 'SET':
      store.set(key, Buffer.from(parts[2] ?? Buffer.alloc(0)));
      return Buffer.from('+OK\r\n');
    case 'GET':
      return bulk(store.get(key));
    case 'INCR': {
      const v = Number(store.get(key)?.toString() ?? '0') + 1;
      store.set(key, Buffer.from(String(v)));
      return Buffer.from(`:${v}\r\n`);
    }
    case 'DEL':
      return Buffer.from(`:${store.delete(key) ? 1 : 0}\r\n`);
    case 'QUIT':
      return Buffer.from('+OK\r\n');
    default:
      return Buffer.from(`-ERR unknown command '${cmd}'\r\n`);
  }
}

const server = net.createServer((socket) => {
  let pending: Buffer = Buffer.alloc(0);
  socket.on('error', () => {});
  socket.on('data', (d: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    const out: Buffer[] = [];
    for (;;) {
      const cmd = pending.length ? parse(pending) : null;
      if (!cmd) break;
      pending = pending.subarray(cmd.used);
      out.push(run(cmd.parts));
      if (cmd.parts[0]?.toString().toUpperCase() === 'QUIT') {
        socket.end(Buffer.concat(out));
        return;
      }
    }
    if (out.length) socket.write(Buffer.concat(out));
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1', () => console.log(`listening ${process.argv[2]}`));
