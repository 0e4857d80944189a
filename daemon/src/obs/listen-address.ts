/** The address of the metrics endpoint, as the flag and the configuration file spell it. */
import { isIP } from 'node:net';
import { ferryError } from '@ferry/sdk/internal';

export interface ListenAddress {
  host: string;
  port: number;
}

/** 'HOST:PORT' with an IPv4 address or a name, or '[IPv6]:PORT'; port 0 takes a free one. */
export function parseListenAddress(text: string): ListenAddress {
  const bad = (why: string) =>
    ferryError('ERR_INVALID_ARG_VALUE', `metrics address ${JSON.stringify(text)}: ${why} (HOST:PORT)`);
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  if (!m) throw bad('expected HOST:PORT or [IPv6]:PORT');
  const host = m[1] ?? m[2] ?? '';
  if (m[1] !== undefined && isIP(host) !== 6) throw bad('not an IPv6 address');
  const port = Number(m[3]);
  if (port > 65535) throw bad('port above 65535');
  return { host, port };
}
