/**
 * An app process for the scale run: as a server it echoes every session; as a client it opens
 * thousands of sessions, echoes a distinct message through each and checks every byte that comes
 * back. Driven over IPC by scale-run.ts.
 */
import { connect, createServer, type Socket } from '@ferry/sdk';

type Cmd =
  | { op: 'listen'; uri: string }
  | { op: 'open'; uri: string; sessions: number; concurrency: number; fifoSize: number }
  | { op: 'echo'; bytes: number }
  | { op: 'close' }
  | { op: 'memory' };

interface Client {
  sock: Socket;
  got: Buffer[];
  gotBytes: number;
}

const clients: Client[] = [];
let accepted = 0;

function message(i: number, bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let k = 0; k < bytes; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[k] = x & 0xff;
  }
  return b;
}

async function openOne(uri: string, fifoSize: number): Promise<void> {
  const sock = connect({ uri, ...(fifoSize ? { rxFifoSize: fifoSize, txFifoSize: fifoSize } : {}) });
  const c: Client = { sock, got: [], gotBytes: 0 };
  sock.on('data', (d: Buffer) => {
    c.got.push(d);
    c.gotBytes += d.length;
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  sock.on('error', () => {});
  clients.push(c);
}

async function handle(cmd: Cmd): Promise<Record<string, unknown>> {
  switch (cmd.op) {
    case 'listen': {
      const server = createServer((sock) => {
        accepted++;
        sock.on('error', () => {});
        sock.on('data', (d: Buffer) => {
          if (!sock.write(d)) {
            sock.pause();
            sock.once('drain', () => sock.resume());
          }
        });
        sock.on('end', () => sock.end());
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(cmd.uri, () => resolve());
      });
      return { uri: server.address()?.uri };
    }
    case 'open': {
      const t0 = performance.now();
      let next = 0;
      const codes: Record<string, number> = {};
      const worker = async () => {
        while (next < cmd.sessions) {
          next++;
          try {
            await openOne(cmd.uri, cmd.fifoSize);
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'unknown';
            codes[code] = (codes[code] ?? 0) + 1;
          }
        }
      };
      await Promise.all(Array.from({ length: cmd.concurrency }, worker));
      return { opened: clients.length, codes, ms: Math.round(performance.now() - t0) };
    }
    case 'echo': {
      const t0 = performance.now();
      const expected = clients.map((_, i) => message(i, cmd.bytes));
      for (const [i, c] of clients.entries()) {
        c.got = [];
        c.gotBytes = 0;
        c.sock.write(expected[i] as Buffer);
      }
      const deadline = Date.now() + 120_000;
      while (Date.now() < deadline && clients.some((c) => c.gotBytes < cmd.bytes)) {
        await new Promise((r) => setTimeout(r, 10));
      }
      let intact = 0;
      for (const [i, c] of clients.entries()) {
        if (Buffer.concat(c.got).equals(expected[i] as Buffer)) intact++;
      }
      return { intact, sessions: clients.length, ms: Math.round(performance.now() - t0) };
    }
    case 'close': {
      await Promise.all(
        clients.map(
          (c) =>
            new Promise<void>((resolve) => {
              if (c.sock.destroyed) return resolve();
              c.sock.once('close', () => resolve());
              c.sock.resume();
              c.sock.end();
            }),
        ),
      );
      const n = clients.length;
      clients.length = 0;
      return { closed: n };
    }
    case 'memory':
      return { ...process.memoryUsage(), accepted };
  }
}

process.on('message', (m: { seq: number; cmd: Cmd }) => {
  handle(m.cmd).then(
    (r) => process.send?.({ reply: m.seq, ok: true, ...r }),
    (err: Error & { code?: string }) =>
      process.send?.({ reply: m.seq, ok: false, code: err.code ?? 'unknown', message: err.message }),
  );
});
process.send?.({ event: 'ready', pid: process.pid });
