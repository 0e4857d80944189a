/**
 * Which addresses transparent mode takes over: FERRY_INTERCEPT's list, e.g.
 * `127.0.0.1:8080,localhost:*,*:5432,[::1]:9000`. A host is a name, an IPv4 or bracketed IPv6
 * address, or `*`; a port is a number or `*`. `localhost`, 127.0.0.1 and ::1 are one place, as
 * they are to ferryd. A listen on the wildcard address (no host, 0.0.0.0, ::) serves every
 * address, so it matches any rule with its port.
 */
import { ferryError } from '../errors.js';

export interface InterceptRule {
  /** Lower-cased host, loopback names folded to 127.0.0.1, or '*'. */
  host: string;
  /** A port, or -1 for any. */
  port: number;
}

function foldHost(h: string): string {
  let host = h.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  if (host === 'localhost' || host === '::1' || host === '::ffff:127.0.0.1') return '127.0.0.1';
  return host;
}

function isWildcard(h: string | undefined | null): boolean {
  return h === undefined || h === null || h === '' || h === '0.0.0.0' || h === '::' || h === '*';
}

/** Parses a FERRY_INTERCEPT list (commas or whitespace between entries); throws on a bad entry. */
export function parseRules(text: string): InterceptRule[] {
  const rules: InterceptRule[] = [];
  for (const raw of text.split(/[\s,]+/)) {
    if (raw === '') continue;
    const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]\s]+):(\*|\d{1,5})$/.exec(raw);
    const port = m ? (m[2] === '*' ? -1 : Number(m[2])) : Number.NaN;
    if (!m || !(port === -1 || (port >= 1 && port <= 65535))) {
      throw ferryError(
        'ERR_INVALID_ARG_VALUE',
        `FERRY_INTERCEPT entry '${raw}' is not host:port (host a name, an address, [v6] or *; port 1-65535 or *)`,
      );
    }
    rules.push({ host: m[1] === '*' ? '*' : foldHost(m[1] as string), port });
  }
  return rules;
}

export class InterceptRules {
  readonly rules: readonly InterceptRule[];

  constructor(rules: readonly InterceptRule[]) {
    this.rules = rules;
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  /** A connect to host:port (host as the app named it; node's default is localhost). */
  matchConnect(host: string | undefined | null, port: number): boolean {
    const h = foldHost(host || 'localhost');
    return this.rules.some((r) => (r.port === -1 || r.port === port) && (r.host === '*' || r.host === h));
  }

  /** A listen on host:port; port 0 (the kernel picks) matches only rules with any port. */
  matchListen(host: string | undefined | null, port: number): boolean {
    const wild = isWildcard(host);
    const h = wild ? '*' : foldHost(host as string);
    return this.rules.some(
      (r) => (r.port === -1 || (port !== 0 && r.port === port)) && (wild || r.host === '*' || r.host === h),
    );
  }
}
