/**
 * Session URIs, VPP style: `tcp://host:port`, `udp://host:port`, `tls://host:port`; and
 * `topic://name:role` for publish/subscribe (@ferry/sdk/messages; role 1 publish, 2 subscribe).
 */
import { ferryError } from '../errors.js';

export const URI_SCHEMES = ['tcp', 'udp', 'tls', 'topic'] as const;
export type UriScheme = (typeof URI_SCHEMES)[number];

export interface SessionUri {
  scheme: UriScheme;
  /** Host as written, without IPv6 brackets. */
  host: string;
  port: number;
}

const MAX_URI_LENGTH = 1024;

/** Parses a session URI; throws ERR_FERRY_BAD_URI with the reason. Port 0 means "any" (listen). */
export function parseUri(uri: string): SessionUri {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > MAX_URI_LENGTH) {
    throw ferryError('ERR_FERRY_BAD_URI', 'expected a non-empty string of at most 1024 characters');
  }
  const m = /^([a-z]+):\/\/(\[[0-9a-fA-F:.]+\]|[^/:[\]\s@]+):(\d{1,5})$/.exec(uri);
  if (!m) throw ferryError('ERR_FERRY_BAD_URI', `'${uri}' is not scheme://host:port`);
  const [, scheme = '', rawHost = '', rawPort = ''] = m;
  if (!(URI_SCHEMES as readonly string[]).includes(scheme)) {
    throw ferryError('ERR_FERRY_BAD_URI', `unknown scheme '${scheme}' (expected ${URI_SCHEMES.join(', ')})`);
  }
  const port = Number(rawPort);
  if (port > 65535) throw ferryError('ERR_FERRY_BAD_URI', `port ${port} is out of range`);
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  return { scheme: scheme as UriScheme, host, port };
}

export function formatUri(u: SessionUri): string {
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  return `${u.scheme}://${host}:${u.port}`;
}

/**
 * The key under which a listener is registered. Wildcard hosts (0.0.0.0, ::, *) match any host a
 * local connect names; `localhost` and 127.0.0.1 are the same place.
 */
export function endpointKey(u: SessionUri): string {
  return `${u.scheme}|${canonicalHost(u.host)}|${u.port}`;
}

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '*';
}

export function canonicalHost(host: string): string {
  const h = host.toLowerCase();
  if (h === 'localhost' || h === '::1') return '127.0.0.1';
  if (isWildcardHost(h)) return '*';
  return h;
}
