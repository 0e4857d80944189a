/**
 * ICMP / ARP responder on a memif interface in ethernet mode (what libmemif's icmp responder does):
 * answers ARP requests for its IPv4 address and ICMP echo requests to it.
 *   node examples/dist/memif/icmp-responder.js --role server --socket @ferry-icmp --ip 198.18.0.1
 * Options: --role client|server (default server), --socket (default @ferry-icmp), --id (0),
 * --ip (198.18.0.1), --mac (02:fe:00:00:00:01), --rx-mode interrupt|poll|adaptive (interrupt),
 * --secret. Prints one line per link change; counters on SIGINT / SIGTERM.
 */

import { parseArgs } from 'node:util';
import { createMemif } from '@ferry/sdk/memif';
import { formatIpv4, formatMac, parseIpv4, parseMac } from './frames.js';
import { respond } from './respond.js';

const { values: opt } = parseArgs({
  options: {
    role: { type: 'string', default: 'server' },
    socket: { type: 'string', default: '@ferry-icmp' },
    id: { type: 'string', default: '0' },
    ip: { type: 'string', default: '198.18.0.1' },
    mac: { type: 'string', default: '02:fe:00:00:00:01' },
    'rx-mode': { type: 'string', default: 'interrupt' },
    secret: { type: 'string' },
  },
});

const role = opt.role === 'client' ? 'client' : 'server';
const rxMode = opt['rx-mode'] === 'poll' ? 'poll' : opt['rx-mode'] === 'adaptive' ? 'adaptive' : 'interrupt';
const me = { mac: parseMac(opt.mac), ip: parseIpv4(opt.ip) };
const counts = { arp: 0, icmp: 0, ignored: 0, txDropped: 0 };

// snippet:memif-icmp-responder {
const m = createMemif({
  role,
  socket: opt.socket,
  id: Number(opt.id),
  mode: 'ethernet',
  rxMode,
  ...(opt.secret === undefined ? {} : { secret: opt.secret }),
});
const replies: Uint8Array[] = [];
m.onPackets((burst, queue) => {
  replies.length = 0;
  for (let i = 0; i < burst.count; i++) {
    // Copy out first: the peer can rewrite its buffer while we parse it.
    const r = respond(burst.packet(i).slice(), me);
    counts[r.verdict]++;
    if (r.reply) replies.push(r.reply);
  }
  if (replies.length > 0) counts.txDropped += replies.length - m.send(queue, replies);
});
// }

m.on('up', (info) => {
  console.log(
    `icmp responder up: ${role} ${opt.socket} id ${info.id}, ${formatIpv4(me.ip)} at ${formatMac(me.mac)}, peer '${info.peerName}'`,
  );
});
m.on('down', (reason) => console.log(`icmp responder down: ${reason.code} ${reason.message}`));
console.log(`icmp responder ${role === 'server' ? 'listening on' : 'connecting to'} ${opt.socket}`);

async function stop(): Promise<void> {
  console.log(`icmp responder counters: ${JSON.stringify(counts)}`);
  await m.close();
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
