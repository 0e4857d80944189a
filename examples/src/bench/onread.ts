// Receiving with `onread` against 'data' events: a server process streams 1 GiB in 256 KiB writes,
// the client process receives it either through 'data' (a fresh Buffer per read), through
// `onread` into one reused 256 KiB buffer, or (Ferry only) through zero-copy views (`onView`). node:net over a unix socket and Ferry cut-through in the
// same run, interleaved, medians over rounds, ratios to node:net 'data'. The client side is used
// because node:net offers onread only on sockets it connects.
//
//   node examples/dist/bench/onread.js [--rounds 5] [--mib 1024] [--json]   (FERRY_SOCKET: a ferryd)

import { fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import * as ferry from '@ferry/sdk';
import { median as medianOf } from './median.js';

type Stack = 'net' | 'ferry';
type Reader = 'data' | 'onread' | 'view';
const CHUNK = 256 * 1024;

async function serve(stack: Stack, target: string, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  const onConn = async (s: net.Socket | ferry.Socket) => {
    s.on('error', () => {});
    for (let sent = 0; sent < bytes; sent += CHUNK) {
      if (!s.write(chunk)) await once(s, 'drain');
    }
    s.end();
  };
  const srv = stack === 'net' ? net.createServer(onConn) : ferry.createServer(onConn);
  await new Promise<void>((resolve) => srv.listen(target, resolve));
  process.send?.('listening');
}

async function receive(stack: Stack, target: string, reader: Reader, bytes: number): Promise<number> {
  const mine = Buffer.allocUnsafe(CHUNK);
  let got = 0;
  const onread = {
    buffer: mine,
    callback: (n: number) => {
      got += n;
      return true;
    },
  };
  const start = process.hrtime.bigint();
  const s =
    stack === 'net'
      ? net.connect(reader === 'onread' ? { path: target, onread } : { path: target })
      : ferry.connect(reader === 'onread' ? { uri: target, onread } : { uri: target });
  if (reader === 'data') {
    s.on('data', (b: Buffer) => {
      got += b.length;
    });
  } else if (reader === 'view' && s instanceof ferry.Socket) {
    // Zero-copy: the bytes are looked at in place in the fifo, then released.
    s.onView((v) => {
      got += v.length;
      v.release();
    });
  }
  await new Promise<void>((resolve, reject) => {
    s.once('end', () => resolve());
    s.once('error', reject);
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  s.destroy();
  if (got !== bytes) throw new Error(`received ${got} of ${bytes} bytes`);
  return bytes / secs / 1e9;
}

/** No samples read as 0, as this bench always reported them. */
const median = (xs: number[]): number => medianOf(xs, 0);

async function main(): Promise<void> {
  const role = process.argv[2];
  if (role === 'server') {
    await serve(process.argv[3] as Stack, process.argv[4] ?? '', Number(process.argv[5]));
    return;
  }
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '5' },
      mib: { type: 'string', default: '1024' },
      json: { type: 'boolean', default: false },
    },
  });
  const bytes = Number(values.mib) * 1024 * 1024;
  const variants: [Stack, Reader][] = [
    ['net', 'data'],
    ['net', 'onread'],
    ['ferry', 'data'],
    ['ferry', 'onread'],
    ['ferry', 'view'],
  ];
  const dir = mkdtempSync(join(tmpdir(), 'ferry-onread-'));
  const results = new Map<string, number[]>();
  let port = 22000;
  try {
    for (let r = 0; r < Number(values.rounds); r++) {
      for (const [stack, reader] of r % 2 ? [...variants].reverse() : variants) {
        const target = stack === 'net' ? join(dir, `s-${port}.sock`) : `tcp://127.0.0.1:${port}`;
        port++;
        const server = fork(process.argv[1] ?? '', ['server', stack, target, String(bytes)], {
          stdio: 'inherit',
        });
        try {
          await once(server, 'message');
          const gbps = await receive(stack, target, reader, bytes);
          const key = `${stack} ${reader}`;
          results.set(key, [...(results.get(key) ?? []), gbps]);
          if (!values.json) process.stderr.write('.');
        } finally {
          server.kill('SIGKILL');
        }
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const base = median(results.get('net data') ?? []);
  const rows = variants.map(([stack, reader]) => {
    const m = median(results.get(`${stack} ${reader}`) ?? []);
    return { stack, reader, gbps: m, vsNetData: m / base };
  });
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ rounds: Number(values.rounds), mib: Number(values.mib), rows })}\n`,
    );
  } else {
    process.stdout.write(
      `\nreceive ${values.mib} MiB (256 KiB writes), medians of ${values.rounds} rounds\n`,
    );
    for (const row of rows) {
      process.stdout.write(
        `${`${row.stack === 'net' ? 'node:net unix' : 'ferry ct'} ${row.reader}`.padEnd(24)} ${row.gbps.toFixed(2).padStart(6)} GB/s ${row.vsNetData.toFixed(2).padStart(6)}x\n`,
      );
    }
  }
  process.exit(0);
}

await main();
