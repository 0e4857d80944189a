/** Where a node:http or undici request goes, as a Ferry session URI. */
import { ferryError } from '../errors.js';

/** `tcp://host:port` (or `tls://` when ferryd is to run TLS); IPv6 hosts bracketed once. */
export function targetUri(scheme: 'tcp' | 'tls', host: string | null | undefined, port: number): string {
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `port must be an integer in 1..65535, got '${String(port)}'`);
  }
  let h = host || 'localhost';
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return `${scheme}://${h.includes(':') ? `[${h}]` : h}:${port}`;
}
