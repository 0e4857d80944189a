/**
 * Every scalar option of ferryd's configuration file: its type, limits, default, whether a SIGHUP
 * reload applies it, and one line of documentation. docs/configuration.md has a section per option
 * with the same default (a test checks). `namespaces` and `rules` are structured and are checked by
 * config/validate.ts.
 */

export type OptionSpec =
  | { kind: 'int'; min: number; max: number; pow2?: boolean }
  | { kind: 'mode' }
  | { kind: 'string'; nullable?: boolean }
  | { kind: 'group' }
  | { kind: 'enum'; values: readonly string[] };

export interface OptionInfo {
  spec: OptionSpec;
  default: unknown;
  /** True when a SIGHUP reload applies a new value; false: it takes a restart. */
  live: boolean;
  doc: string;
}

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export const SCALAR_OPTIONS = {
  socket: {
    spec: { kind: 'string' },
    default: null,
    live: false,
    doc: 'control socket path, or @name for an abstract socket',
  },
  socketMode: {
    spec: { kind: 'mode' },
    default: 0o660,
    live: false,
    doc: 'mode of the socket file',
  },
  socketGroup: {
    spec: { kind: 'group' },
    default: null,
    live: false,
    doc: 'group (name or gid) given to the socket file',
  },
  segmentSizeBytes: {
    spec: { kind: 'int', min: 2 * MiB, max: 4 * GiB - 1 },
    default: 64 * MiB,
    live: false,
    doc: 'size of each pair segment',
  },
  queueCapacity: {
    spec: { kind: 'int', min: 16, max: 65536, pow2: true },
    default: 4096,
    live: false,
    doc: 'entries in each event queue (session slots per segment)',
  },
  minFifoSizeBytes: {
    spec: { kind: 'int', min: 4096, max: GiB, pow2: true },
    default: 4096,
    live: true,
    doc: 'smallest fifo a connect gets',
  },
  defaultFifoSizeBytes: {
    spec: { kind: 'int', min: 4096, max: GiB, pow2: true },
    default: MiB,
    live: true,
    doc: 'fifo size when a connect asks for none',
  },
  maxFifoSizeBytes: {
    spec: { kind: 'int', min: 4096, max: GiB, pow2: true },
    default: 16 * MiB,
    live: true,
    doc: 'largest fifo a connect gets',
  },
  maxApps: {
    spec: { kind: 'int', min: 1, max: 1_000_000 },
    default: 1024,
    live: true,
    doc: 'apps attached at once',
  },
  maxSessionsPerApp: {
    spec: { kind: 'int', min: 1, max: 10_000_000 },
    default: 65536,
    live: true,
    doc: 'sessions one app holds at once',
  },
  maxSegmentBytesPerApp: {
    spec: { kind: 'int', min: 2 * MiB, max: 2 ** 53 - 1 },
    default: 16 * GiB,
    live: true,
    doc: 'shared memory in the segments one app maps',
  },
  maxSegmentBytesTotal: {
    spec: { kind: 'int', min: 2 * MiB, max: 2 ** 53 - 1 },
    default: 64 * GiB,
    live: true,
    doc: 'shared memory ferryd hands out in total',
  },
  tcpConnectTimeoutMs: {
    spec: { kind: 'int', min: 1, max: 9500 },
    default: 8000,
    live: true,
    doc: 'outgoing TCP connects fail with ETIMEDOUT after this',
  },
  stallTimeoutMs: {
    spec: { kind: 'int', min: 0, max: 3_600_000 },
    default: 10_000,
    live: true,
    doc: 'an app that reads nothing ferryd sends for this long is disconnected (0: never)',
  },
  maxCtrlBacklog: {
    spec: { kind: 'int', min: 16, max: 1_000_000 },
    default: 1024,
    live: true,
    doc: 'control messages queued for an app that does not read before it is disconnected',
  },
  tlsCertFile: {
    spec: { kind: 'string', nullable: true },
    default: null,
    live: false,
    doc: 'PEM certificate (chain) that tls:// listens giving none serve',
  },
  tlsKeyFile: {
    spec: { kind: 'string', nullable: true },
    default: null,
    live: false,
    doc: 'PEM private key of tlsCertFile',
  },
  unlistedNamespaces: {
    spec: { kind: 'enum', values: ['open', 'refuse'] },
    default: 'open',
    live: true,
    doc: "whether an app may attach to a namespace the file does not list ('open': without a token)",
  },
  defaultAction: {
    spec: { kind: 'enum', values: ['allow', 'deny'] },
    default: 'allow',
    live: true,
    doc: 'what happens to a connect no rule matches',
  },
  tcpHandoff: {
    spec: { kind: 'enum', values: ['allow', 'refuse'] },
    default: 'allow',
    live: true,
    doc: "whether apps asking for it get tcp:// kernel sockets handed over ('refuse': relay instead)",
  },
} as const satisfies Record<string, OptionInfo>;

export type ScalarOption = keyof typeof SCALAR_OPTIONS;

/** Structured options, checked by hand in config/validate.ts. */
export const STRUCTURED_OPTIONS = {
  namespaces: { default: {}, live: true, doc: 'namespaces and their tokens' },
  rules: { default: [], live: true, doc: 'session rules, first match wins' },
  metrics: {
    default: { listen: null },
    live: false,
    doc: 'the Prometheus endpoint: { "listen": "HOST:PORT" } serves /metrics (off by default)',
  },
} as const;

export const ALL_OPTIONS: readonly string[] = [
  ...Object.keys(SCALAR_OPTIONS),
  ...Object.keys(STRUCTURED_OPTIONS),
];

/** Defaults of the scalar options other than `socket` (which depends on the environment). */
export function defaultOptionValues() {
  const o = SCALAR_OPTIONS;
  return {
    socketMode: o.socketMode.default,
    socketGroup: o.socketGroup.default as string | number | null,
    segmentSizeBytes: o.segmentSizeBytes.default,
    queueCapacity: o.queueCapacity.default,
    minFifoSizeBytes: o.minFifoSizeBytes.default,
    defaultFifoSizeBytes: o.defaultFifoSizeBytes.default,
    maxFifoSizeBytes: o.maxFifoSizeBytes.default,
    maxApps: o.maxApps.default,
    maxSessionsPerApp: o.maxSessionsPerApp.default,
    maxSegmentBytesPerApp: o.maxSegmentBytesPerApp.default,
    maxSegmentBytesTotal: o.maxSegmentBytesTotal.default,
    tcpConnectTimeoutMs: o.tcpConnectTimeoutMs.default,
    stallTimeoutMs: o.stallTimeoutMs.default,
    maxCtrlBacklog: o.maxCtrlBacklog.default,
    tlsCertFile: o.tlsCertFile.default as string | null,
    tlsKeyFile: o.tlsKeyFile.default as string | null,
    unlistedNamespaces: o.unlistedNamespaces.default as 'open' | 'refuse',
    defaultAction: o.defaultAction.default as 'allow' | 'deny',
    tcpHandoff: o.tcpHandoff.default as 'allow' | 'refuse',
  };
}
