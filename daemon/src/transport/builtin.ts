/** The transports ferryd starts with: one line each. A new transport is added here. */
import { readFileSync } from 'node:fs';
import { ferryError } from '@ferry/sdk/internal';
import type { DaemonConfig } from '../config.js';
import { TopicTransport } from '../topics/topic-transport.js';
import type { CutThrough } from './cut-through.js';
import { TcpTransport } from './tcp-transport.js';
import type { CertKey } from './tls-handshake.js';
import { TlsTransport } from './tls-transport.js';
import type { Transport, TransportHost } from './transport.js';
import { UdpTransport } from './udp-transport.js';

/** Builds the transports of a session layer; `cutThrough` is its local joiner. */
export type TransportFactory = (host: TransportHost, cutThrough: CutThrough) => Transport[];

export const builtinTransports: TransportFactory = (host, cutThrough) => [
  new TcpTransport(host),
  new TlsTransport(host, defaultCert(host.config)),
  new UdpTransport(host, cutThrough),
  new TopicTransport(host),
];

/** ferryd's own certificate for `tls://` listens that give none (configuration), read now. */
function defaultCert(config: DaemonConfig): CertKey | null {
  if (config.tlsCertFile === null || config.tlsKeyFile === null) return null;
  try {
    return { cert: readFileSync(config.tlsCertFile, 'utf8'), key: readFileSync(config.tlsKeyFile, 'utf8') };
  } catch (err) {
    throw ferryError(
      'ERR_FERRY_TLS_CONFIG',
      `cannot read the TLS certificate or key: ${(err as Error).message}`,
    );
  }
}
