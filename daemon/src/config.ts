/** ferryd's configuration: defaults embedded here, overridden by flags and FERRY_* variables. */
import { join } from 'node:path';
import { ferryError } from '@ferry/sdk/internal';

export interface DaemonConfig {
  /** Control socket: a filesystem path, or '@name' for the abstract namespace. */
  socket: string;
  /** Mode of the socket file (and of its directory when ferryd creates it). */
  socketMode: number;
  /** Size of each shared segment ferryd creates for a pair of apps. */
  segmentSizeBytes: number;
  /** Fifo size used when a connect asks for 0. */
  defaultFifoSizeBytes: number;
  maxFifoSizeBytes: number;
  /** Entries in each event queue of a pair segment; also the number of session slots in it. */
  queueCapacity: number;
  maxApps: number;
  maxSessionsPerApp: number;
  /** Largest shared memory ferryd hands out in total. */
  maxSegmentBytesTotal: number;
  /**
   * How long an outgoing TCP connect may take before it fails with ETIMEDOUT. Below the SDK's
   * 10 s request timeout, so an app always hears the outcome (a late reply would leak a session).
   */
  tcpConnectTimeoutMs: number;
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['FERRY_SOCKET'];
  if (fromEnv) return fromEnv;
  const runtime = env['XDG_RUNTIME_DIR'];
  return runtime ? join(runtime, 'ferry', 'ferryd.sock') : '/run/ferry/ferryd.sock';
}

export function defaultConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return {
    socket: defaultSocketPath(env),
    socketMode: 0o660,
    segmentSizeBytes: 64 * 1024 * 1024,
    defaultFifoSizeBytes: 1024 * 1024,
    maxFifoSizeBytes: 16 * 1024 * 1024,
    queueCapacity: 4096,
    maxApps: 1024,
    maxSessionsPerApp: 65536,
    maxSegmentBytesTotal: 64 * 1024 * 1024 * 1024,
    tcpConnectTimeoutMs: 8000,
  };
}

/** Power-of-two fifo size for a request: 0 = default, else rounded up, clamped to the limits. */
export function fifoSizeFor(config: DaemonConfig, requested: number): number {
  if (requested === 0) return config.defaultFifoSizeBytes;
  const min = 4096;
  let size = min;
  while (size < requested && size < config.maxFifoSizeBytes) size *= 2;
  return size;
}

export function validateConfig(c: DaemonConfig): DaemonConfig {
  const pow2 = (n: number) => Number.isSafeInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!c.socket) throw ferryError('ERR_INVALID_ARG_VALUE', 'socket must be a path or @name');
  if (!pow2(c.defaultFifoSizeBytes) || !pow2(c.maxFifoSizeBytes)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', 'fifo sizes must be powers of two');
  }
  if (!pow2(c.queueCapacity))
    throw ferryError('ERR_INVALID_ARG_VALUE', 'queueCapacity must be a power of two');
  if (c.segmentSizeBytes < 2 * c.maxFifoSizeBytes + 1024 * 1024 || c.segmentSizeBytes >= 2 ** 32) {
    throw ferryError(
      'ERR_INVALID_ARG_VALUE',
      'segmentSizeBytes must hold two of the largest fifos and be < 4 GiB',
    );
  }
  if (!(Number.isSafeInteger(c.tcpConnectTimeoutMs) && c.tcpConnectTimeoutMs > 0)) {
    throw ferryError('ERR_INVALID_ARG_VALUE', 'tcpConnectTimeoutMs must be a positive integer');
  }
  return c;
}
