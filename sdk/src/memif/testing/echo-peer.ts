// Child process for the two-process memif tests: one interface from the JSON options in argv[2]
// that echoes every packet back on the queue it came in on. Reports on stdout, one line each:
// `up <info json>`, `down <code> <peerMessage>`, `handshake-failed <code>`.

import type { MemifRxBurst } from '../bursts.js';
import { createMemif } from '../memif.js';
import type { MemifOptions } from '../options.js';

const options = JSON.parse(process.argv[2] ?? '{}') as MemifOptions;
const m = createMemif(options);
const backlog: Uint8Array[][] = [];
let flushing = false;

function flush(): void {
  flushing = false;
  for (let q = 0; q < backlog.length; q++) {
    const pending = backlog[q];
    if (pending === undefined || pending.length === 0) continue;
    const n = m.send(q, pending);
    pending.splice(0, n);
    if (pending.length > 0 && !flushing) {
      flushing = true;
      setImmediate(flush);
    }
  }
}

m.onPackets((burst: MemifRxBurst, q: number) => {
  let pending = backlog[q];
  if (pending === undefined) {
    pending = [];
    backlog[q] = pending;
  }
  for (let i = 0; i < burst.count; i++) {
    const p = new Uint8Array(burst.lengths[i] ?? 0);
    burst.copy(i, p, 0);
    pending.push(p);
  }
  flush();
});
m.on('up', (info) => process.stdout.write(`up ${JSON.stringify(info)}\n`));
m.on('down', (r) => {
  for (const b of backlog) b?.splice(0);
  process.stdout.write(`down ${r.code} ${r.peerMessage ?? ''}\n`);
});
m.on('handshake-failed', (r) => process.stdout.write(`handshake-failed ${r.code}\n`));
process.on('SIGTERM', () => {
  void m.close().then(() => process.exit(0));
});
