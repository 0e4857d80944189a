/**
 * Whether a connect's host names this machine, so that a listener bound to the wildcard address
 * may answer it. A kernel listener on 0.0.0.0 accepts only connections to the machine's own
 * addresses; a connect to another host's IP must leave the machine even when a local app listens
 * on the same port (two nodes running the same service is the usual case).
 */
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';

/** Interface addresses change rarely; connects are frequent. Re-read at most once a second. */
const REFRESH_MS = 1000;
let cached: Set<string> = new Set();
let readAt = -Infinity;

function interfaceAddresses(now: number): Set<string> {
  if (now - readAt < REFRESH_MS) return cached;
  const next = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) next.add(a.address.toLowerCase());
  }
  cached = next;
  readAt = now;
  return cached;
}

/**
 * True unless `host` is an IP literal of another machine. Names are not resolved here (a connect
 * must not wait for DNS to find a local listener), so a name keeps reaching a wildcard listener on
 * its port, as before; the exact-host listener always wins.
 */
export function mayBeLocalHost(host: string, now = performance.now()): boolean {
  const h = host.toLowerCase();
  const family = isIP(h);
  if (family === 0) return true;
  if (family === 4 && (h.startsWith('127.') || h === '0.0.0.0')) return true;
  if (family === 6 && (h === '::1' || h === '::' || h.startsWith('::ffff:127.'))) return true;
  return interfaceAddresses(now).has(h);
}
