/**
 * The `tls://` transport: the TCP transport with ferryd terminating TLS on the kernel socket
 * (tls-handshake.ts), so the app's fifos carry plaintext. A local connect skips TLS (cut-through)
 * only when both ends allow it and the client would have accepted the listener's certificate.
 */
import type { Socket } from 'node:net';
import type { SessionUri, TlsOptions } from '@ferry/sdk/internal';
import { listenTcp } from './tcp-kernel.js';
import { acceptStream, connectStream, KernelListener } from './tcp-transport.js';
import {
  acceptTls,
  type CertKey,
  clientWouldAccept,
  connectTls,
  type ServerTls,
  serverTls,
} from './tls-handshake.js';
import type {
  ConnectRequest,
  ListenRequest,
  Opened,
  Transport,
  TransportHost,
  TransportListener,
} from './transport.js';

export class TlsTransport implements Transport {
  readonly scheme = 'tls';
  readonly kind = 'stream';
  readonly tlsOptions = true;
  readonly #host: TransportHost;
  /** ferryd's own certificate for listens that give none (configuration). */
  readonly #defaultCert: CertKey | null;

  constructor(host: TransportHost, defaultCert: CertKey | null) {
    this.#host = host;
    this.#defaultCert = defaultCert;
    // Fail at start, not at the first listen, when the pair is unusable.
    if (defaultCert) serverTls(undefined, defaultCert);
  }

  async listen(req: ListenRequest): Promise<TransportListener> {
    const tls = serverTls(req.tls, this.#defaultCert);
    let kl: KernelListener | null = null;
    const server = await listenTcp(req.uri, (raw) => this.#accept(kl?.listenerId ?? 0, tls, raw));
    kl = new KernelListener(
      server,
      req.uri,
      tls.cutThrough ? ['ct', 'tls'] : ['tls'],
      (named: SessionUri, opts: TlsOptions | undefined) =>
        tls.cutThrough && opts?.cutThrough !== false && clientWouldAccept(tls.chain, named, opts),
    );
    return kl;
  }

  connect(c: ConnectRequest): Promise<Opened> {
    const host = this.#host;
    return connectStream(host, c, async (raw: Socket, started: number) => {
      // One deadline for connect and handshake: the app must hear before its own request times out.
      const left = Math.max(1, host.config.tcpConnectTimeoutMs - (Date.now() - started));
      try {
        return await connectTls(raw, c.named, c.req.tls, left);
      } catch (err) {
        host.counters.tlsFailures++;
        throw err;
      }
    });
  }

  /**
   * A kernel connection to a `tls://` listener: the app hears of it only once the handshake is
   * done (a client that fails it costs the app nothing).
   */
  #accept(listenerId: number, tls: ServerTls, raw: Socket): void {
    const host = this.#host;
    if (raw.remoteAddress === undefined || !host.listeners.get(listenerId)) {
      raw.resetAndDestroy();
      return;
    }
    acceptTls(raw, tls, host.config.tcpConnectTimeoutMs).then(
      (socket) => acceptStream(host, listenerId, raw, socket),
      (err: Error) => {
        host.counters.tlsFailures++;
        host.log.warn(`tls accept on listener ${listenerId} failed: ${err.message}`);
      },
    );
  }
}
