/**
 * A test app for datagrams, driven over IPC like scriptable-app.ts: binds a DatagramSocket, sends
 * seeded datagrams, optionally echoes, and reports every datagram it received (size, sha256 and
 * sender), so tests can check boundaries, content and addresses across processes.
 */
import { createDatagramSocket, type DatagramSocket } from '@ferry/sdk';
import { attachmentStats } from '@ferry/sdk/internal';
import { datagramPayload, sha256 } from './datagrams.js';

type Cmd =
  | { op: 'bind'; uri: string; rxFifoSize?: number; txFifoSize?: number; echo?: boolean }
  | {
      op: 'send';
      port: number;
      address?: string;
      sizes: number[];
      seed: number;
      paceEvery?: number;
      burst?: boolean;
    }
  | { op: 'send-uri'; uri: string; sizes: number[]; seed: number }
  | { op: 'connect'; port: number; address?: string }
  | { op: 'send-connected'; sizes: number[]; seed: number }
  | { op: 'disconnect' }
  | { op: 'received' }
  | { op: 'attachments' }
  | { op: 'close' }
  | { op: 'exit' };

interface Got {
  size: number;
  sha256: string;
  address: string;
  port: number;
  text: string;
}

let sock: DatagramSocket | null = null;
const received: Got[] = [];

function report(msg: Record<string, unknown>): void {
  process.send?.(msg);
}

function must(): DatagramSocket {
  if (!sock) throw new Error('not bound');
  return sock;
}

/** Sends each datagram and waits for its callback; returns the error codes (null = sent). */
async function sendAll(
  sizes: number[],
  seed: number,
  send: (payload: Buffer, cb: (err: Error | null) => void) => void,
  paceEvery = 0,
  burst = false,
): Promise<(string | null)[]> {
  const code = (err: Error | null) => (err ? ((err as Error & { code?: string }).code ?? 'error') : null);
  if (burst) {
    // All at once, in one turn: more than a fifo holds, so later ones wait for space.
    return Promise.all(
      sizes.map(
        (size, i) =>
          new Promise<string | null>((resolve) =>
            send(datagramPayload(seed, i, size), (err) => resolve(code(err))),
          ),
      ),
    );
  }
  const results: (string | null)[] = [];
  for (let i = 0; i < sizes.length; i++) {
    const payload = datagramPayload(seed, i, sizes[i] as number);
    results.push(await new Promise<string | null>((resolve) => send(payload, (err) => resolve(code(err)))));
    // A little pacing for the kernel path: UDP through a kernel drops what a full buffer cannot take.
    if (paceEvery > 0 && (i + 1) % paceEvery === 0) await new Promise((r) => setTimeout(r, 2));
  }
  return results;
}

async function handle(cmd: Cmd): Promise<Record<string, unknown>> {
  switch (cmd.op) {
    case 'bind': {
      const opts: { rxFifoSize?: number; txFifoSize?: number } = {};
      if (cmd.rxFifoSize) opts.rxFifoSize = cmd.rxFifoSize;
      if (cmd.txFifoSize) opts.txFifoSize = cmd.txFifoSize;
      const s = createDatagramSocket(opts);
      sock = s;
      s.on('message', (msg: Buffer, rinfo) => {
        received.push({
          size: msg.length,
          sha256: sha256(msg),
          address: rinfo.address,
          port: rinfo.port,
          text: msg.subarray(0, 64).toString('latin1'),
        });
        if (cmd.echo) s.send(msg, rinfo.port, rinfo.address);
      });
      s.on('ferryd-lost', () => report({ event: 'udp-lost' }));
      s.on('reattached', () => report({ event: 'udp-reattached', ...s.address() }));
      s.on('error', (err: Error & { code?: string }) =>
        report({ event: 'error', code: err.code ?? 'unknown', message: err.message }),
      );
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(cmd.uri, () => {
          s.off('error', reject);
          resolve();
        });
      });
      return { ...s.address() };
    }
    case 'send': {
      const s = must();
      const codes = await sendAll(
        cmd.sizes,
        cmd.seed,
        (p, cb) => s.send(p, cmd.port, cmd.address ?? '127.0.0.1', cb),
        cmd.paceEvery,
        cmd.burst,
      );
      return { codes };
    }
    case 'send-uri': {
      const s = must();
      return { codes: await sendAll(cmd.sizes, cmd.seed, (p, cb) => s.send(p, cmd.uri, cb)) };
    }
    case 'connect': {
      const s = must();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.connect(cmd.port, cmd.address ?? '127.0.0.1', () => {
          s.off('error', reject);
          resolve();
        });
      });
      return { remote: s.remoteAddress() };
    }
    case 'send-connected': {
      const s = must();
      return { codes: await sendAll(cmd.sizes, cmd.seed, (p, cb) => s.send(p, cb)) };
    }
    case 'disconnect':
      must().disconnect();
      return {};
    case 'received':
      return { received };
    case 'attachments':
      return { attachments: await attachmentStats() };
    case 'close': {
      const s = must();
      await new Promise<void>((resolve) => s.close(resolve));
      sock = null;
      return {};
    }
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (m: { seq: number; cmd: Cmd }) => {
  handle(m.cmd).then(
    (r) => report({ reply: m.seq, ok: true, ...r }),
    (err: Error & { code?: string }) =>
      report({ reply: m.seq, ok: false, code: err.code ?? 'unknown', message: err.message }),
  );
});
report({ event: 'ready', pid: process.pid });
