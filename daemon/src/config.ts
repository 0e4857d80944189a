/**
 * ferryd's configuration: every option with its default (config/options.ts), overridden by a file
 * (config/load.ts), FERRY_SOCKET and flags. The object is shared by every layer: a SIGHUP reload
 * changes the live options in place (config/reload.ts).
 */
import { join } from 'node:path';
import { ferryError } from '@ferry/sdk/internal';
import { defaultOptionValues } from './config/options.js';

/** A namespace as ferryd keeps it: never the token itself, only its hash and where it came from. */
export interface NamespaceConfig {
  /** sha256 of the token, or null when attaching to the namespace needs no token. */
  tokenHash: Buffer | null;
  /** Where the token came from, for `ferry show`: 'token', 'tokenEnv:NAME' or 'tokenFile:PATH'. */
  tokenSource: string | null;
  /** When set, only apps whose SO_PEERCRED uid (or gid) is listed may attach. */
  uids?: number[];
  gids?: number[];
}

export type RuleAction = 'allow' | 'deny';

/** A session rule (docs/configuration.md#rules): every field given must match; first match wins. */
export interface Rule {
  action: RuleAction;
  /** Namespace of the connecting app ('*' = any). */
  from?: string;
  /** Namespace of the listener reached; a rule with `to` never matches a remote connect. */
  to?: string;
  /** The URI the app connects to, with '*' allowed for host or port: 'tcp://10.0.0.1:*'. */
  service?: string;
  /** IP address or CIDR block of the host connected to. */
  address?: string;
  /** Port, or inclusive [low, high] range. */
  port?: number | [number, number];
  /** 'local': a listener of an app (cut-through); 'remote': a TCP connect ferryd makes. */
  via?: 'local' | 'remote';
}

export interface DaemonConfig {
  /** Control socket: a filesystem path, or '@name' for the abstract namespace. */
  socket: string;
  /** Mode of the socket file (and of its directory when ferryd creates it). */
  socketMode: number;
  /** Group the socket file is given (name or gid); null keeps ferryd's group. */
  socketGroup: string | number | null;
  /** Size of each shared segment ferryd creates for a pair of apps. */
  segmentSizeBytes: number;
  /** Fifo sizes: a connect's request is rounded up to a power of two and clamped to min..max. */
  minFifoSizeBytes: number;
  /** Fifo size used when a connect asks for 0. */
  defaultFifoSizeBytes: number;
  maxFifoSizeBytes: number;
  /** Entries in each event queue of a pair segment; also the number of session slots in it. */
  queueCapacity: number;
  maxApps: number;
  maxSessionsPerApp: number;
  /** Largest shared memory in the segments one app maps. */
  maxSegmentBytesPerApp: number;
  /** Largest shared memory ferryd hands out in total. */
  maxSegmentBytesTotal: number;
  /**
   * How long an outgoing TCP connect may take before it fails with ETIMEDOUT. Below the SDK's
   * 10 s request timeout, so an app always hears the outcome (a late reply would leak a session).
   */
  tcpConnectTimeoutMs: number;
  /** An app that reads neither its control channel nor its event queues for this long is
   *  disconnected; 0 never disconnects (stalls are still counted). */
  stallTimeoutMs: number;
  /** Control messages ferryd queues for an app that does not read before disconnecting it. */
  maxCtrlBacklog: number;
  /** Namespaces with their tokens. A namespace not listed is open (no token) unless
   *  `unlistedNamespaces` is 'refuse'. */
  namespaces: Record<string, NamespaceConfig>;
  unlistedNamespaces: 'open' | 'refuse';
  /** Session rules, first match wins; `defaultAction` when none matches. */
  rules: Rule[];
  defaultAction: RuleAction;
  /** Whether a `tcp://` listen or connect that asks for handoff gets it ('refuse': relay). */
  tcpHandoff: 'allow' | 'refuse';
  /** TLS: PEM files of the certificate (chain) and key that `tls://` listeners serve when their
   *  listen gives none; null = none (such a listen fails with ERR_FERRY_TLS_CONFIG). */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
  /** The Prometheus endpoint: `listen` is 'HOST:PORT' ('[IPv6]:PORT'), null = off. */
  metrics: MetricsConfig;
}

export interface MetricsConfig {
  listen: string | null;
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['FERRY_SOCKET'];
  if (fromEnv) return fromEnv;
  return builtInSocketPath(env);
}

/** The socket path when neither the file, FERRY_SOCKET nor a flag names one. */
export function builtInSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  return runtime ? join(runtime, 'ferry', 'ferryd.sock') : '/run/ferry/ferryd.sock';
}

/** The embedded configuration (no file): what `npm start` runs with. */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return {
    ...defaultOptionValues(),
    socket: defaultSocketPath(env),
    namespaces: {},
    rules: [],
    metrics: { listen: null },
  };
}

/** Power-of-two fifo size for a request: 0 = default, else rounded up, clamped to the limits. */
export function fifoSizeFor(config: DaemonConfig, requested: number): number {
  if (requested === 0) return config.defaultFifoSizeBytes;
  let size = config.minFifoSizeBytes;
  while (size < requested && size < config.maxFifoSizeBytes) size *= 2;
  return size;
}

/** Checks that relate options to each other (each option alone is checked by config/validate.ts). */
export function crossCheck(c: DaemonConfig): string[] {
  const errors: string[] = [];
  if (c.minFifoSizeBytes > c.defaultFifoSizeBytes || c.defaultFifoSizeBytes > c.maxFifoSizeBytes) {
    errors.push(
      `$.defaultFifoSizeBytes: expected minFifoSizeBytes <= defaultFifoSizeBytes <= maxFifoSizeBytes, got ${c.minFifoSizeBytes} <= ${c.defaultFifoSizeBytes} <= ${c.maxFifoSizeBytes}`,
    );
  }
  if (c.segmentSizeBytes < 2 * c.maxFifoSizeBytes + 1024 * 1024) {
    errors.push(
      `$.segmentSizeBytes: expected room for two of the largest fifos plus 1 MiB (>= ${2 * c.maxFifoSizeBytes + 1024 * 1024}), got ${c.segmentSizeBytes}`,
    );
  }
  if ((c.tlsCertFile === null) !== (c.tlsKeyFile === null)) {
    errors.push('$.tlsCertFile: expected tlsCertFile and tlsKeyFile together');
  }
  if (c.maxSegmentBytesPerApp < c.segmentSizeBytes || c.maxSegmentBytesTotal < c.segmentSizeBytes) {
    errors.push(
      `$.maxSegmentBytesPerApp: expected segment memory limits >= segmentSizeBytes (${c.segmentSizeBytes}), got ${c.maxSegmentBytesPerApp} per app, ${c.maxSegmentBytesTotal} total`,
    );
  }
  return errors;
}

/** Throws ERR_INVALID_ARG_VALUE naming every inconsistency (a config built in code, or merged). */
export function validateConfig(c: DaemonConfig): DaemonConfig {
  const pow2 = (n: number) => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
  const errors: string[] = [];
  if (!c.socket) errors.push('$.socket: expected a path or @name');
  for (const k of [
    'minFifoSizeBytes',
    'defaultFifoSizeBytes',
    'maxFifoSizeBytes',
    'queueCapacity',
  ] as const) {
    if (!pow2(c[k])) errors.push(`$.${k}: expected a power of two, got ${c[k]}`);
  }
  if (c.segmentSizeBytes >= 2 ** 32) errors.push('$.segmentSizeBytes: expected < 4 GiB');
  if (!(Number.isSafeInteger(c.tcpConnectTimeoutMs) && c.tcpConnectTimeoutMs > 0)) {
    errors.push('$.tcpConnectTimeoutMs: expected a positive integer');
  }
  errors.push(...crossCheck(c));
  if (errors.length > 0) throw ferryError('ERR_INVALID_ARG_VALUE', errors.join('; '));
  return c;
}
