/** `ferry perf server`: sinks or echoes per connection, as the header asks. */
import type { Duplex } from 'node:stream';
import { PERF_HEADER_BYTES, PERF_MODE, parsePerfHeader } from './protocol.js';
import type { Stack } from './stack.js';

export function servePerf(sock: Duplex): void {
  let head: Buffer | null = Buffer.alloc(0);
  let remaining = 0;
  sock.on('error', () => sock.destroy());
  const onBody = (mode: number, d: Buffer) => {
    if (mode === PERF_MODE.ECHO) {
      if (d.length > 0 && !sock.write(d)) {
        sock.pause();
        sock.once('drain', () => sock.resume());
      }
      return;
    }
    remaining -= d.length;
    if (remaining <= 0) {
      const ack = Buffer.alloc(8);
      ack.writeBigUInt64LE(BigInt(-remaining));
      sock.end(ack);
    }
  };
  let mode = 0;
  sock.on('data', (d: Buffer) => {
    if (head) {
      head = Buffer.concat([head, d]);
      if (head.length < PERF_HEADER_BYTES) return;
      const h = parsePerfHeader(head);
      if (!h) {
        sock.destroy();
        return;
      }
      mode = h.mode;
      remaining = h.count;
      const rest = head.subarray(PERF_HEADER_BYTES);
      head = null;
      onBody(mode, rest);
      return;
    }
    onBody(mode, d);
  });
  sock.on('end', () => {
    if (mode === PERF_MODE.ECHO) sock.end();
  });
}

export async function startPerfServer(stack: Stack, target: string): Promise<{ close(): void; uri: string }> {
  return stack.listen(target, servePerf);
}
