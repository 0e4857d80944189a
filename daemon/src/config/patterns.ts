/** The patterns session rules use: service URIs with wildcards, and IP addresses or CIDR blocks. */
import { isIP } from 'node:net';
import { canonicalHost } from '@ferry/sdk/internal';

export interface ServicePattern {
  /** null: any scheme. */
  scheme: string | null;
  /** Canonical host, or null for any. */
  host: string | null;
  /** null: any port. */
  port: number | null;
}

export function parseServicePattern(text: string): ServicePattern | null {
  const m = /^([a-z]+|\*):\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]\s@]+):(\d{1,5}|\*)$/.exec(text);
  if (!m) return null;
  const [, scheme = '', rawHost = '', rawPort = ''] = m;
  const port = rawPort === '*' ? null : Number(rawPort);
  if (port !== null && port > 65535) return null;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  return { scheme: scheme === '*' ? null : scheme, host: host === '*' ? null : canonicalHost(host), port };
}

/** An address block: the address as bytes and how many leading bits must match. */
export interface AddressBlock {
  bytes: Uint8Array;
  prefix: number;
}

export function parseAddress(text: string): AddressBlock | null {
  const [addr = '', prefixText, extra] = text.split('/');
  if (extra !== undefined) return null;
  const bytes = ipBytes(addr);
  if (!bytes) return null;
  const max = bytes.length * 8;
  if (prefixText === undefined) return { bytes, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText)) return null;
  const prefix = Number(prefixText);
  return prefix <= max ? { bytes, prefix } : null;
}

/** An IP literal as 4 or 16 bytes; IPv4-mapped IPv6 (::ffff:a.b.c.d) as its IPv4 bytes. */
export function ipBytes(text: string): Uint8Array | null {
  const v = isIP(text);
  if (v === 4) return Uint8Array.from(text.split('.').map(Number));
  if (v !== 6) return null;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(text);
  if (mapped?.[1]) return ipBytes(mapped[1]);
  const [head = '', tail = ''] = text.split('::');
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  let h = groups(head);
  let t = text.includes('::') ? groups(tail) : [];
  // An embedded IPv4 tail (::1.2.3.4) counts as two groups.
  const expand = (g: string[]) =>
    g.flatMap((x) => {
      if (!x.includes('.')) return [x];
      const b = x.split('.').map(Number);
      return [
        (((b[0] ?? 0) << 8) | (b[1] ?? 0)).toString(16),
        (((b[2] ?? 0) << 8) | (b[3] ?? 0)).toString(16),
      ];
    });
  h = expand(h);
  t = expand(t);
  const all = text.includes('::') ? [...h, ...new Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    const n = Number.parseInt(g, 16);
    out[i * 2] = n >> 8;
    out[i * 2 + 1] = n & 0xff;
  });
  return out;
}

export function inBlock(block: AddressBlock, addr: Uint8Array): boolean {
  if (block.bytes.length !== addr.length) return false;
  let bits = block.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((block.bytes[i] ?? 0) & mask) !== ((addr[i] ?? 0) & mask)) return false;
  }
  return true;
}
