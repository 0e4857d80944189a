/**
 * A test app driven over IPC: listens, connects, sends seeded bytes and reports what it received
 * (counts and sha256), so integration tests can run real app processes against a real ferryd.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  connect,
  createServer,
  ferrydEvents,
  type Server,
  type Socket,
  type TlsConnectOptions,
  type TlsServerOptions,
} from '@ferry/sdk';
import { attachmentStats } from '@ferry/sdk/internal';
import { seededBytes } from './seeded.js';

type Behavior = 'echo' | 'sink' | 'hold' | 'slow' | 'reply-on-end';
type Cmd =
  | { op: 'listen'; uri: string; behavior: Behavior; allowHalfOpen?: boolean; tls?: TlsServerOptions }
  | {
      op: 'connect';
      tag: string;
      uri: string;
      allowHalfOpen?: boolean;
      fifoSize?: number;
      timeout?: number;
      tls?: TlsConnectOptions;
      /** How the client treats what it receives; by default it reads everything at once. */
      behavior?: Behavior;
    }
  | { op: 'send'; tag: string; bytes: number; seed: number; chunk: number; end?: boolean }
  | { op: 'end'; tag: string; data?: string }
  | { op: 'destroy'; tag: string }
  | { op: 'reset'; tag: string }
  /** A 'hold' socket starts reading (and counting what it reads). */
  | { op: 'resume'; tag: string }
  | { op: 'stat'; tag: string }
  | { op: 'pingpong'; uri: string; rounds: number; size: number }
  | { op: 'connect-many'; uri: string; count: number; fifoSize?: number }
  | { op: 'many-stat' }
  | { op: 'memory' }
  | { op: 'attachment' }
  | { op: 'unlisten' }
  | { op: 'exit' };

interface Tracked {
  sock: Socket;
  rxBytes: number;
  rxHash: Hash;
  text: string;
}

const sockets = new Map<string, Tracked>();
/** Sessions opened by connect-many: held open, only their errors counted (by code). */
const many: Socket[] = [];
const manyErrors = new Map<string, number>();
let server: Server | null = null;
let accepted = 0;

function report(msg: Record<string, unknown>): void {
  process.send?.(msg);
}

function track(tag: string, sock: Socket, behavior: Behavior | 'client'): void {
  const t: Tracked = { sock, rxBytes: 0, rxHash: createHash('sha256'), text: '' };
  sockets.set(tag, t);
  const onData = (d: Buffer) => {
    t.rxBytes += d.length;
    t.rxHash.update(d);
    if (t.text.length < 256) t.text += d.toString('latin1');
  };
  if (behavior === 'echo') {
    sock.on('data', (d: Buffer) => {
      onData(d);
      if (!sock.write(d)) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
    });
    sock.on('end', () => sock.end());
  } else if (behavior === 'slow') {
    sock.on('data', (d: Buffer) => {
      onData(d);
      sock.pause();
      setTimeout(() => sock.resume(), 2);
    });
  } else if (behavior === 'hold') {
    sock.pause();
    // Counted once 'resume' lets it flow: a listener does not restart a stream paused on purpose.
    sock.on('data', onData);
  } else {
    sock.on('data', onData);
  }
  if (behavior === 'reply-on-end') {
    sock.on('end', () => sock.end(`got ${t.rxBytes}`));
  }
  sock.on('end', () =>
    report({ event: 'end', tag, rxBytes: t.rxBytes, sha256: t.rxHash.copy().digest('hex') }),
  );
  sock.on('error', (err: Error & { code?: string }) =>
    report({ event: 'error', tag, code: err.code ?? 'unknown', message: err.message }),
  );
  sock.on('close', () => report({ event: 'close', tag, rxBytes: t.rxBytes }));
}

async function handle(cmd: Cmd): Promise<Record<string, unknown>> {
  switch (cmd.op) {
    case 'listen': {
      // 'hold' never reads at all (net's pauseOnConnect): a paused socket would still read up to
      // its highWaterMark, as net.Socket does.
      const s = createServer(
        { allowHalfOpen: cmd.allowHalfOpen ?? false, pauseOnConnect: cmd.behavior === 'hold' },
        (sock) => {
          const tag = `acc-${++accepted}`;
          track(tag, sock, cmd.behavior);
          report({
            event: 'accepted',
            tag,
            remote: `${sock.remoteAddress}:${sock.remotePort}`,
            transport: sock.transport,
          });
        },
      );
      server = s;
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ uri: cmd.uri, ...(cmd.tls ? { tls: cmd.tls } : {}) }, () => {
          s.off('error', reject);
          resolve();
        });
      });
      s.on('error', (err: Error & { code?: string }) =>
        report({ event: 'server-error', code: err.code ?? 'unknown', message: err.message }),
      );
      s.on('ferryd-lost', () => report({ event: 'server-ferryd-lost' }));
      s.on('reattached', () => report({ event: 'server-reattached', uri: s.address()?.uri }));
      return { uri: s.address()?.uri };
    }
    case 'connect': {
      const sock = connect({
        uri: cmd.uri,
        allowHalfOpen: cmd.allowHalfOpen ?? false,
        ...(cmd.fifoSize ? { rxFifoSize: cmd.fifoSize, txFifoSize: cmd.fifoSize } : {}),
        ...(cmd.timeout ? { connectTimeout: cmd.timeout } : {}),
        ...(cmd.tls ? { tls: cmd.tls } : {}),
      });
      track(cmd.tag, sock, cmd.behavior ?? 'client');
      await new Promise<void>((resolve, reject) => {
        sock.once('connect', resolve);
        sock.once('error', reject);
      });
      return { transport: sock.transport, local: `${sock.localAddress}:${sock.localPort}` };
    }
    case 'send': {
      const t = must(cmd.tag);
      const data = seededBytes(cmd.seed, cmd.bytes);
      let falseReturns = 0;
      let maxWritableLength = 0;
      for (let off = 0; off < data.length; off += cmd.chunk) {
        const ok = t.sock.write(data.subarray(off, off + cmd.chunk));
        maxWritableLength = Math.max(maxWritableLength, t.sock.writableLength);
        if (!ok) {
          falseReturns++;
          await waitDrain(t.sock);
        }
      }
      if (cmd.end) t.sock.end();
      return { sha256: createHash('sha256').update(data).digest('hex'), falseReturns, maxWritableLength };
    }
    case 'end':
      must(cmd.tag).sock.end(cmd.data);
      return {};
    case 'destroy':
      must(cmd.tag).sock.destroy();
      return {};
    case 'reset':
      // An abort: the peer sees ECONNRESET (destroy() closes with a FIN, as net.Socket's).
      must(cmd.tag).sock.resetAndDestroy();
      return {};
    case 'resume':
      must(cmd.tag).sock.resume();
      return {};
    case 'stat': {
      const t = must(cmd.tag);
      return {
        rxBytes: t.rxBytes,
        text: t.text,
        bytesWritten: t.sock.bytesWritten,
        bytesRead: t.sock.bytesRead,
      };
    }
    case 'pingpong': {
      // Strict ping-pong: each side waits for the other's message, the pattern that exposes a
      // lost wakeup at once (both ends asleep, bytes in a fifo).
      const sock = connect({ uri: cmd.uri });
      const msg = Buffer.alloc(cmd.size, 7);
      let done = 0;
      let got = 0;
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject);
        sock.on('data', (d: Buffer) => {
          got += d.length;
          while (got >= cmd.size) {
            got -= cmd.size;
            if (++done >= cmd.rounds) {
              resolve();
              return;
            }
            sock.write(msg);
          }
        });
        sock.once('connect', () => sock.write(msg));
      });
      sock.end();
      return { rounds: done };
    }
    case 'connect-many': {
      // 64 at a time: thousands of sessions without thousands of IPC round trips.
      for (let done = 0; done < cmd.count; ) {
        const batch = Math.min(64, cmd.count - done);
        await Promise.all(
          Array.from({ length: batch }, () => {
            const sock = connect({
              uri: cmd.uri,
              ...(cmd.fifoSize ? { rxFifoSize: cmd.fifoSize, txFifoSize: cmd.fifoSize } : {}),
            });
            many.push(sock);
            sock.on('error', (err: Error & { code?: string }) => {
              const code = err.code ?? 'unknown';
              manyErrors.set(code, (manyErrors.get(code) ?? 0) + 1);
            });
            return new Promise<void>((resolve, reject) => {
              sock.once('connect', resolve);
              sock.once('error', reject);
            });
          }),
        );
        done += batch;
      }
      return { open: many.length };
    }
    case 'many-stat':
      return { open: many.filter((s) => !s.destroyed).length, errors: Object.fromEntries(manyErrors) };
    case 'memory':
      return { ...process.memoryUsage() };
    case 'attachment':
      return { attachments: await attachmentStats() };
    case 'unlisten':
      server?.close();
      return {};
    case 'exit':
      setImmediate(() => process.exit(0));
      return {};
  }
}

function waitDrain(sock: Socket): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onDrain = () => {
      sock.off('close', onClose);
      resolve();
    };
    const onClose = () => {
      sock.off('drain', onDrain);
      // The session's own error says why (ECONNRESET...): pass its code on.
      const cause = sock.errored as (Error & { code?: string }) | null;
      reject(
        Object.assign(new Error(`closed while waiting for drain: ${cause?.message}`), {
          code: cause?.code ?? 'ERR_FERRY_SOCKET_CLOSED',
        }),
      );
    };
    sock.once('drain', onDrain);
    sock.once('close', onClose);
  });
}

function must(tag: string): Tracked {
  const t = sockets.get(tag);
  if (!t) throw new Error(`no socket '${tag}'`);
  return t;
}

process.on('message', (m: { seq: number; cmd: Cmd }) => {
  handle(m.cmd).then(
    (r) => report({ reply: m.seq, ok: true, ...r }),
    (err: Error & { code?: string }) =>
      report({ reply: m.seq, ok: false, code: err.code ?? 'unknown', message: err.message }),
  );
});
ferrydEvents.on('lost', (e: { error: Error & { code?: string } }) =>
  report({ event: 'ferryd-lost', code: e.error.code ?? 'unknown' }),
);
ferrydEvents.on('reattached', (e: { appId: number; awayMs: number }) =>
  report({ event: 'reattached', appId: e.appId, awayMs: e.awayMs }),
);
ferrydEvents.on('closed', (e: { error: Error & { code?: string } }) =>
  report({ event: 'ferryd-closed', code: e.error.code ?? 'unknown' }),
);
report({ event: 'ready', pid: process.pid });
