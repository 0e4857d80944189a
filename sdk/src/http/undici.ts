/**
 * undici through Ferry: `ferryConnector()` is an undici `connect` function (any undici version
 * that takes a connector: 5, 6, 7), and `createFerryDispatcher()` an undici Agent built on it, for
 * `setGlobalDispatcher()` (which also steers Node's own fetch) or a request's `dispatcher`.
 * undici itself is an optional peer dependency: only createFerryDispatcher loads it.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import type { AttachmentOptions } from '../api/options.js';
import { ferryError } from '../errors.js';
import { connectThroughFerry, FerryNetSocket } from './net-socket.js';
import { targetUri } from './target.js';

/** What undici passes a connector (its `buildConnector.Options`, the fields used here). */
export interface ConnectorOptions {
  hostname: string;
  host?: string;
  protocol: string;
  port: string | number;
  servername?: string | null;
}

export type Connector = (
  options: ConnectorOptions,
  callback: (err: Error | null, socket: Socket | null) => void,
) => void;

export interface FerryConnectorOptions {
  /** How this process reaches ferryd. */
  ferry?: AttachmentOptions;
  /** For https: origins, how ferryd verifies the server (it runs the TLS). */
  ca?: string | Buffer;
  rejectUnauthorized?: boolean;
}

/** An undici connector: http: origins as `tcp://` sessions, https: ones as `tls://` (TLS in ferryd). */
export function ferryConnector(options: FerryConnectorOptions = {}): Connector {
  const ferry = options.ferry ?? {};
  return (o, callback) => {
    const secure = o.protocol === 'https:';
    let uri: string;
    try {
      uri = targetUri(
        secure ? 'tls' : 'tcp',
        o.hostname,
        o.port === '' || o.port === undefined ? (secure ? 443 : 80) : Number(o.port),
      );
    } catch (err) {
      callback(err as Error, null);
      return;
    }
    const tls = secure
      ? {
          ...(options.ca !== undefined ? { ca: options.ca } : {}),
          ...(options.rejectUnauthorized !== undefined
            ? { rejectUnauthorized: options.rejectUnauthorized }
            : {}),
          ...(o.servername ? { servername: o.servername } : {}),
        }
      : undefined;
    const sock = connectThroughFerry(new FerryNetSocket(), uri, { ...ferry, ...(tls ? { tls } : {}) });
    let settled = false;
    const onError = (err: Error) => {
      if (settled) return;
      settled = true;
      callback(err, null);
    };
    sock.once('error', onError);
    sock.once('connect', () => {
      sock.off('error', onError);
      if (settled) return;
      settled = true;
      callback(null, sock);
    });
  };
}

/** The subset of undici's Agent options passed through (connections per origin, timeouts, ...). */
export type FerryDispatcherOptions = FerryConnectorOptions & Record<string, unknown>;

/**
 * An undici Agent whose connections go through Ferry. Needs the `undici` package (an optional
 * peer dependency); throws ERR_FERRY_NOT_SUPPORTED with the reason when it cannot be loaded.
 */
export function createFerryDispatcher(options: FerryDispatcherOptions = {}): unknown {
  const { ferry, ca, rejectUnauthorized, ...agentOptions } = options;
  let undici: { Agent: new (opts: Record<string, unknown>) => unknown };
  try {
    undici = createRequire(import.meta.url)('undici');
  } catch (err) {
    throw ferryError(
      'ERR_FERRY_NOT_SUPPORTED',
      'createFerryDispatcher needs the undici package (npm install undici)',
      {
        cause: err,
      },
    );
  }
  const connector: FerryConnectorOptions = {
    ...(ferry ? { ferry } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(rejectUnauthorized !== undefined ? { rejectUnauthorized } : {}),
  };
  return new undici.Agent({ ...agentOptions, connect: ferryConnector(connector) });
}
