/**
 * http.Agent and https.Agent whose connections are Ferry sessions: cut-through to a Ferry listener
 * on the same host, through ferryd (a kernel TCP connection it makes) to anything else. The
 * sockets are real net.Sockets (FerryNetSocket), so keep-alive, timeouts and upgrades (ws) work
 * as with the default agent.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import type { Duplex } from 'node:stream';
import type { AttachmentOptions, TlsConnectOptions } from '../api/options.js';
import { connectThroughFerry, FerryNetSocket } from './net-socket.js';
import { targetUri } from './target.js';

export interface FerryAgentOptions extends http.AgentOptions {
  /** How this process reaches ferryd (socket, namespace, token, mode). */
  ferry?: AttachmentOptions;
}

/** What http hands createConnection: host, port, or a unix socket path (never through Ferry). */
type ConnectionArgs = {
  host?: string | null;
  hostname?: string | null;
  port?: number | string | null;
  path?: string | null;
  socketPath?: string;
};

function portOf(o: ConnectionArgs, fallback: number): number {
  return o.port === undefined || o.port === null || o.port === '' ? fallback : Number(o.port);
}

export class FerryAgent extends http.Agent {
  readonly #ferry: AttachmentOptions;

  constructor(options: FerryAgentOptions = {}) {
    const { ferry, ...agentOptions } = options;
    super(agentOptions);
    this.#ferry = ferry ?? {};
  }

  override createConnection(
    options: http.ClientRequestArgs,
    _cb?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    const o = options as ConnectionArgs;
    // A unix socket path names no address ferryd could reach: node's own connection.
    if (o.socketPath) return net.createConnection({ path: o.socketPath });
    const uri = targetUri('tcp', o.host ?? o.hostname, portOf(o, 80));
    return connectThroughFerry(new FerryNetSocket(), uri, this.#ferry);
  }
}

export interface FerryHttpsAgentOptions extends https.AgentOptions {
  ferry?: AttachmentOptions;
}

/**
 * An https.Agent whose TLS ferryd runs (a `tls://` session): the app speaks plain HTTP over the
 * session, ferryd verifies the server with `ca`, `servername` and `rejectUnauthorized` as given
 * to the agent or the request. A local Ferry `tls://` listener is reached by cut-through when its
 * certificate would verify.
 */
export class FerryHttpsAgent extends https.Agent {
  readonly #ferry: AttachmentOptions;

  constructor(options: FerryHttpsAgentOptions = {}) {
    const { ferry, ...agentOptions } = options;
    super(agentOptions);
    this.#ferry = ferry ?? {};
  }

  override createConnection(
    options: http.ClientRequestArgs,
    _cb?: (err: Error | null, stream: Duplex) => void,
  ): Duplex {
    const o = options as ConnectionArgs & https.RequestOptions;
    const host = o.host ?? o.hostname;
    const tls: TlsConnectOptions = {};
    if (o.ca !== undefined) tls.ca = pem(o.ca);
    if (o.cert !== undefined) tls.cert = pem(o.cert);
    if (o.key !== undefined) tls.key = pem(o.key);
    if (o.servername) tls.servername = o.servername;
    if (o.rejectUnauthorized !== undefined) tls.rejectUnauthorized = o.rejectUnauthorized;
    const uri = targetUri('tls', host, portOf(o, 443));
    return connectThroughFerry(new FerryNetSocket(), uri, { ...this.#ferry, tls });
  }
}

/** PEM text from what node:tls accepts (one or several; KeyObject-style values are not PEM). */
function pem(v: unknown): string {
  const one = (x: unknown) =>
    Buffer.isBuffer(x)
      ? x.toString('utf8')
      : typeof x === 'string'
        ? x
        : String((x as { pem?: unknown })?.pem ?? '');
  return Array.isArray(v) ? v.map(one).join('\n') : one(v);
}
