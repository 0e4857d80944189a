/**
 * Every option of ferryd's configuration, declared once: how a file spells it and how it is
 * checked (a zod schema, config/option-types.ts), its default, whether a SIGHUP reload applies it,
 * and its documentation. Derived from this table: the `DaemonConfig` type (config.ts), the file
 * checker (config/validate.ts), the defaults, the JSON Schema (`ferry config schema`,
 * docs/ferryd.schema.json) and the option reference of docs/configuration.md (config/docs.ts;
 * tests keep both files equal to what this table generates).
 */
import type { z } from 'zod';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../log/logger.js';
import {
  group,
  int,
  metrics,
  mode,
  namespaces,
  oneOf,
  rules,
  type TopicsConfig,
  text,
  textOrNull,
  topics,
  type ValidateContext,
} from './option-types.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface OptionInfo {
  schema: (ctx: ValidateContext) => z.ZodType;
  default: unknown;
  /** True when a SIGHUP reload applies a new value; false: it takes a restart. */
  live: boolean;
  /** How the reference spells the default, when not as JSON of `default`. */
  docDefault?: string;
  /** The option's section of docs/configuration.md (markdown). */
  doc: string;
}

export const OPTIONS = {
  socket: {
    schema: (_ctx: ValidateContext) => text(),
    default: null,
    live: false,
    docDefault: '`$XDG_RUNTIME_DIR/ferry/ferryd.sock`, else `/run/ferry/ferryd.sock`',
    doc: `
The control socket: a filesystem path, or \`@name\` for an abstract socket (Linux; no file, so no
mode or group: any process in the network namespace may connect, which only suits tests and
single-user machines). The admin socket of \`ferry show\` is \`<socket>.admin\` with the same mode and
group. \`FERRY_SOCKET\` and \`--socket\` override it.
`,
  },
  socketMode: {
    schema: (_ctx: ValidateContext) => mode(),
    default: 0o660,
    live: false,
    docDefault: '`"0660"`',
    doc: `
Mode of the socket file (and of its directory when ferryd creates it): an octal string, or an
integer. Others must get no permission (last digit 0): whoever can connect can attach and, in an
open namespace, use the host's network through ferryd. \`"0660"\` lets ferryd's user and group in;
\`"0600"\` only ferryd's user.
`,
  },
  socketGroup: {
    schema: (_ctx: ValidateContext) => group(),
    default: null as string | number | null,
    live: false,
    doc: `
Group given to the socket files (a name from /etc/group, or a gid): add the users that run apps to
it. \`null\` keeps ferryd's own group.
`,
  },
  segmentSizeBytes: {
    schema: (_ctx: ValidateContext) => int(2 * MiB, 4 * GiB - 1),
    default: 64 * MiB,
    live: false,
    doc: `
Size of each shared segment ferryd creates for a pair of apps (and for an app and ferryd, for TCP
sessions). Must hold two of the largest fifos plus 1 MiB, and be below 4 GiB.
`,
  },
  queueCapacity: {
    schema: (_ctx: ValidateContext) => int(16, 65536, { pow2: true }),
    default: 4096,
    live: false,
    doc: `
Entries in each event queue of a pair segment (a power of two, 16..65536); also the most session
slots one segment has.
`,
  },
  minFifoSizeBytes: {
    schema: (_ctx: ValidateContext) => int(4096, GiB, { pow2: true }),
    default: 4096,
    live: true,
    doc: `
Smallest fifo a connect gets. A connect's requested size is rounded up to a power of two and
clamped to \`minFifoSizeBytes\`..\`maxFifoSizeBytes\` (not refused: like \`SO_RCVBUF\`, the request is a
hint).
`,
  },
  defaultFifoSizeBytes: {
    schema: (_ctx: ValidateContext) => int(4096, GiB, { pow2: true }),
    default: MiB,
    live: true,
    doc: `
Fifo size when a connect asks for none (and for sessions of connections ferryd accepts over TCP).
Between the minimum and the maximum.
`,
  },
  maxFifoSizeBytes: {
    schema: (_ctx: ValidateContext) => int(4096, GiB, { pow2: true }),
    default: 16 * MiB,
    live: true,
    doc: `
Largest fifo a connect gets.
`,
  },
  fastConnectPool: {
    schema: (_ctx: ValidateContext) => int(0, 32),
    default: 8,
    live: true,
    doc: `
Fifo pairs ferryd lends a client for each listener it has connected to by cut-through, so that its
next connects there need no round trip through ferryd (fast connects, docs/control-protocol.md). The
pairs have the default fifo size, sit in the segment the two apps already share, are reused in place
by the two apps connection after connection, and each counts as a session of both apps against
\`maxSessionsPerApp\` while the pool lives. A pool whose pairs are all in use (the client had to ask
ferryd) doubles, up to 4x this (32 pairs at most). 0 turns fast connects off. A reload revokes every
pool.
`,
  },
  maxApps: {
    schema: (_ctx: ValidateContext) => int(1, 1_000_000),
    default: 1024,
    live: true,
    doc: `
Apps attached at once. One more is refused at \`hello\` with \`ERR_FERRY_LIMIT\`
(\`policy.limitHits.maxApps\`). Connections that have not sent \`hello\` yet are bounded by the same
number (beyond it a new connection is closed at once, also counted) and are closed if \`hello\`
does not come within 5 s (\`ctrl.helloTimeouts\`), so idle connections cannot exhaust ferryd.
`,
  },
  maxSessionsPerApp: {
    schema: (_ctx: ValidateContext) => int(1, 10_000_000),
    default: 65536,
    live: true,
    doc: `
Sessions one app holds at once (both ends of its cut-through sessions and its TCP sessions). A
connect beyond it fails with \`ERR_FERRY_LIMIT\`; a connect to a listener whose app is at the limit
fails with \`ECONNREFUSED\`; a TCP connection accepted for it is reset.
`,
  },
  maxSegmentBytesPerApp: {
    schema: (_ctx: ValidateContext) => int(2 * MiB, 2 ** 53 - 1),
    default: 16 * GiB,
    live: true,
    doc: `
Shared memory in the segments one app maps. A connect that would need a new segment beyond it
fails with \`ERR_FERRY_LIMIT\` (either app of the pair may be the one at its limit). At least
\`segmentSizeBytes\`.
`,
  },
  maxSegmentBytesTotal: {
    schema: (_ctx: ValidateContext) => int(2 * MiB, 2 ** 53 - 1),
    default: 64 * GiB,
    live: true,
    doc: `
Shared memory ferryd hands out in total; beyond it, \`ERR_FERRY_LIMIT\`. Segments are memfds: memory
is used as fifos fill, so this bounds the worst case, not the usual.
`,
  },
  tcpConnectTimeoutMs: {
    schema: (_ctx: ValidateContext) => int(1, 9500),
    default: 8000,
    live: true,
    doc: `
An outgoing TCP connect that gets no answer fails with \`ETIMEDOUT\` after this. At most 9500, below
the SDK's 10 s request timeout, so an app always hears the outcome.
`,
  },
  stallTimeoutMs: {
    schema: (_ctx: ValidateContext) => int(0, 3_600_000),
    default: 10_000,
    live: true,
    doc: `
ferryd never waits on an app: control messages to an app whose socket is full are queued (bounded
by \`maxCtrlBacklog\`), and an event queue that is full is flagged for a rescan instead of blocking.
Every 100 ms ferryd looks at each app: control messages queued and none sent since the last look,
or an event queue the app consumes that is full and not draining, mean the app is not reading.
After a second of that (or \`stallTimeoutMs\`, if shorter) the app is **stalled**: it is counted
(\`policy.stalledApps\`), logged, and \`ferry show apps\` shows \`stalledMs\`. An app stalled for
\`stallTimeoutMs\` is disconnected like an app that died (its sessions reset, its peers see
\`ECONNRESET\`) and counted in \`policy.stalledDisconnected\`. \`0\` never disconnects for time (the
backlog bound still applies).
`,
  },
  maxCtrlBacklog: {
    schema: (_ctx: ValidateContext) => int(16, 1_000_000),
    default: 1024,
    live: true,
    doc: `
Control messages ferryd queues for an app that does not read, 16..1000000. More than this queued,
with none sent for half a second, disconnects the app without waiting for \`stallTimeoutMs\`
(counted as a stall). An app that reads is never disconnected for a burst (its peer died and
ferryd tells it of each of its sessions at once: as many notices as sessions); such a burst is
not bounded by this option, only by the number of sessions.
`,
  },
  tlsCertFile: {
    schema: (_ctx: ValidateContext) => textOrNull(),
    default: null as string | null,
    live: false,
    doc: `
A PEM certificate (chain, leaf first) that \`tls://\` listeners serve when their listen gives no
\`cert\`/\`key\` of its own. Read once when ferryd starts, with ferryd's permissions (an app never
names a file ferryd opens: apps pass PEM text in the listen). A file that cannot be read, or a key
that does not match, stops ferryd from starting (\`ERR_FERRY_TLS_CONFIG\`). Goes with
\`tlsKeyFile\`; also \`--tls-cert\`.
`,
  },
  tlsKeyFile: {
    schema: (_ctx: ValidateContext) => textOrNull(),
    default: null as string | null,
    live: false,
    doc: `
The PEM private key of \`tlsCertFile\`; also \`--tls-key\`.
`,
  },
  unlistedNamespaces: {
    schema: (_ctx: ValidateContext) => oneOf(['open', 'refuse']),
    default: 'open' as 'open' | 'refuse',
    live: true,
    doc: `
An app attaching to a namespace not listed under \`namespaces\`: \`"open"\` lets it in without a token
(the built-in behaviour: every namespace is open, \`default\` included); \`"refuse"\` refuses it with
\`EACCES\`, so only listed namespaces exist.
`,
  },
  defaultAction: {
    schema: (_ctx: ValidateContext) => oneOf(['allow', 'deny']),
    default: 'allow' as 'allow' | 'deny',
    live: true,
    doc: `
What happens to a connect no rule matches: \`"allow"\` or \`"deny"\`. It decides connects within the
app's own namespace and connects ferryd makes to the network; it never opens another namespace
(that takes a rule with \`to\`).
`,
  },
  tcpHandoff: {
    schema: (_ctx: ValidateContext) => oneOf(['allow', 'refuse']),
    default: 'allow' as 'allow' | 'refuse',
    live: true,
    doc: `
Whether a \`tcp://\` listen or connect that asks for handoff (the SDK's \`handoff\` option or
\`FERRY_TCP_MODE=handoff\`) gets the kernel socket handed over (\`"allow"\`), or is relayed through
fifos as if it had not asked (\`"refuse"\`: the app works the same, ferryd keeps every byte on its
path). An app holding a handed socket holds a socket of ferryd's network namespace: it could
disconnect it and connect it elsewhere, past the rules. Refuse handoff where apps are not trusted
with that (docs/internals.md, TCP handoff). A listener keeps the mode it got at listen time.
`,
  },
  tcpHandoffSockets: {
    schema: (_ctx: ValidateContext) => int(0, 32),
    default: 0,
    live: true,
    doc: `
Unconnected sockets ferryd lends a client for each address it has made a handoff connect to (a
numeric address the rules allowed), so that its next connects there need no round trip through
ferryd: the app connects one itself and tells ferryd afterwards, which then checks where it is
connected (elsewhere: reset) and shows it as any handed session. They count against
\`maxSessionsPerApp\` until used. 0 (the default) lends none: measured on 2 vCPUs, the app's own
connect cost it more CPU than the round trip saved ferryd (BENCHMARKS.md, "Remote path in handoff
mode"). A reload revokes every pool (docs/internals.md, TCP handoff).
`,
  },
  tcpHandoffListeners: {
    schema: (_ctx: ValidateContext) => oneOf(['lend', 'accept']),
    default: 'lend' as 'lend' | 'accept',
    live: true,
    doc: `
What ferryd does with a \`tcp://\` listener in handoff mode. \`"lend"\`: it binds the listener,
then lends the listening kernel socket to the app, which accepts connections itself (kernel speed,
no message per connection) and reports them afterwards; \`maxSessionsPerApp\` still holds exactly
(the app accepts within a window ferryd counts against it), and \`ferry show listeners\` lists
the listener's figures (open, accepted, refused) instead of each connection. \`"accept"\`: ferryd
accepts each connection and hands it over (\`ferry show sessions\` lists each, with the kernel's
figures). Taken at listen time (docs/internals.md, TCP handoff).
`,
  },
  logLevel: {
    schema: (_ctx: ValidateContext) => oneOf(LOG_LEVELS),
    default: 'info' as LogLevel,
    live: true,
    doc: `
The least severe log lines ferryd writes: \`"fatal"\`, \`"error"\`, \`"warn"\`, \`"info"\`, \`"debug"\`,
\`"trace"\` or \`"silent"\`. \`--log-level\` and \`FERRY_LOG_LEVEL\` win over the file.
`,
  },
  logFormat: {
    schema: (_ctx: ValidateContext) => oneOf(LOG_FORMATS),
    default: 'text' as LogFormat,
    live: false,
    doc: `
\`"text"\`: one line per event on stdout, \`ferryd: <message>\` (warnings and errors say so after the
prefix), as people and container healthchecks read it. \`"json"\`: one JSON object per line (pino's:
\`level\` as a number, \`time\`, \`name\`, \`pid\`, \`msg\`) for a log pipeline. \`--log-format\` and
\`FERRY_LOG_FORMAT\` win over the file.
`,
  },
  namespaces: {
    schema: (ctx: ValidateContext) => namespaces(ctx),
    default: {},
    live: true,
    doc: `
Namespace name -> entry. Names are letters, digits, \`.\`, \`_\`, \`-\` (at most 64). An entry has at
most one token source:

- \`{}\`: no token needed.
- \`{ "token": "..." }\`: the token in the file (at least 8 characters; keep the file private).
- \`{ "tokenEnv": "NAME" }\`: the token is ferryd's environment variable \`NAME\`.
- \`{ "tokenFile": "PATH" }\`: the token is the file's content, without a final newline; a relative
  path starts from the configuration file's directory.

An entry may also list \`"uids": [1000, ...]\` and/or \`"gids": [...]\`: then only apps whose
credentials (read by ferryd from the socket with \`SO_PEERCRED\`, never taken from the message)
have one of those uids, or one of those gids as their primary group, may attach, and the token
(if any) is needed as well. Refused with \`EACCES\`, naming the uid and gid.

Apps give the namespace and token with the SDK options \`namespace\` and \`token\`, or \`FERRY_NAMESPACE\`
and \`FERRY_TOKEN\`. ferryd keeps only the token's sha256 and compares hashes in constant time
(\`crypto.timingSafeEqual\`); a wrong or missing token is refused with \`EACCES\`, and so is a token
sent to a namespace that needs none. Tokens never appear in ferryd's output, logs, \`ferry show\` or
\`ferry config check\`: those show a fingerprint (\`sha256:\` and 8 hex digits of a hash of the
token's hash), enough to tell which token is loaded. Use long random tokens
(\`openssl rand -hex 32\`): a short one could be guessed from its fingerprint.

An app sees and reaches only the listeners of its own namespace, unless a rule allows more.
Two namespaces may listen on the same address; each app reaches its own.
`,
  },
  metrics: {
    schema: (_ctx: ValidateContext) => metrics(),
    default: { listen: null as string | null },
    live: false,
    doc: `
The Prometheus endpoint: \`{ "listen": "127.0.0.1:9464" }\` (or \`"[::1]:9464"\`) makes ferryd serve
\`GET /metrics\` there; \`ferry daemon --metrics HOST:PORT\` does the same and wins over the file. Off
by default, and bound only to the address given. The metrics and their labels are in
docs/observability.md.
`,
  },
  topics: {
    schema: (_ctx: ValidateContext) => topics(),
    default: { relayListen: null, export: [], import: [], policies: [] } as TopicsConfig,
    live: false,
    doc: `
Publish/subscribe topics (docs/messages.md): what a slow subscriber gets, and the relay that
carries topics between hosts, one TCP stream per topic and host.

- \`policies\`: \`[{ "topic": "prices", "slow": "disconnect", "maxLagBytes": 4194304 }]\`, the first
  entry whose \`topic\` matches (a name, or \`"*"\`) decides. \`slow\`: \`"lose-oldest"\` (the default: a
  lapped subscriber skips to the newest message and counts what it lost) or \`"disconnect"\` (it
  ends with \`ERR_FERRY_SLOW_SUBSCRIBER\`). \`maxLagBytes\` (64 KiB..1 GiB, default 4 MiB): how much a
  relay stream to another host may hold unsent; beyond it the relay stops reading (lose-oldest:
  the other host's subscribers see the gap as drops) or closes the stream (disconnect).
- \`relayListen\`: \`"HOST:PORT"\` where this ferryd serves its exported topics to other ferryds
  (off when null). Bind it to an address only trusted hosts reach: the stream is not authenticated.
- \`export\`: \`[{ "topic": "prices", "namespace": "default" }]\`, the topics (or \`"*"\`) of a namespace
  that other ferryds may import; anything else is refused.
- \`import\`: \`[{ "topic": "prices", "from": "10.0.0.7:7400", "namespace": "default",
  "remoteNamespace": "default" }]\`: while the topic has a subscriber in \`namespace\` here, this
  ferryd holds one stream to \`from\` and publishes what arrives into the local topic. When the
  stream ends, the local subscribers end (\`ECONNRESET\`, or \`ERR_FERRY_SLOW_SUBSCRIBER\` when the
  other side disconnected it as slow); a new subscriber opens a new stream.
`,
  },
  rules: {
    schema: (_ctx: ValidateContext) => rules(),
    default: [],
    live: true,
    doc: `
Session rules, checked in order for every connect; the first rule whose fields all match decides,
else \`defaultAction\`. A rule:

| key       | matches                                                                                         |
| --------- | ----------------------------------------------------------------------------------------------- |
| \`action\`  | required: \`"allow"\` or \`"deny"\`                                                                 |
| \`from\`    | the connecting app's namespace, or \`"*"\`                                                        |
| \`to\`      | the namespace of the listener reached, or \`"*"\`; never matches a remote connect                  |
| \`via\`     | \`"local"\` (a listener of an app, cut-through) or \`"remote"\` (a TCP connect ferryd makes)         |
| \`service\` | the URI connected to, with \`*\` for any scheme, host or port: \`"tcp://*:443"\`                    |
| \`address\` | the IP connected to: an address or a CIDR block (\`"10.0.0.0/8"\`, \`"fd00::/8"\`)                  |
| \`port\`    | the port connected to, or an inclusive range \`[low, high]\`                                      |
| \`comment\` | ignored                                                                                         |

A field left out matches anything. How a connect is decided:

1. A listener of the app's own namespace on that address: the rules are checked with \`to\` = the
   app's namespace, \`via: "local"\`; allowed unless the verdict is deny.
2. Else, listeners of other namespaces on that address, in name order: the first whose check ends
   on an \`allow\` rule that has a \`to\` is reached. The default action never opens another
   namespace. If none is allowed, the connect fails with \`ERR_FERRY_DENIED\` (it is not routed to
   that listener's kernel socket either).
3. Else ferryd connects over TCP: checked with no \`to\`, \`via: "remote"\`. A host name is resolved
   once, before the check, when a rule has \`address\` or \`service\`, and ferryd connects to the
   address it checked.

A denied connect fails with \`ERR_FERRY_DENIED\` (docs/errors.md) and is counted
(\`policy.deniedConnects\`); \`ferry show rules\` lists the rules with the connects each decided.

Datagrams (\`udp://\`) follow the same rules with the URI \`udp://address:port\` of each destination:
when the SDK asks ferryd for the route to a destination (\`dgram-connect\`: a local endpoint of the
app's namespace, another namespace's only through a rule with \`to\`, else ferryd's relay as
\`via: "remote"\`), and again for every datagram the relay sends, so a rule added on SIGHUP applies
to destinations the app already sends to. Datagrams the relay refuses are dropped and counted
(\`policy.deniedDatagrams\`), as a firewall drops them.

Not subject to rules: TCP connections and datagrams that remote peers send to an app's kernel
listener or endpoint (use the host's firewall for those).
`,
  },
} as const satisfies Record<string, OptionInfo>;

export type OptionName = keyof typeof OPTIONS;
export const OPTION_NAMES = Object.keys(OPTIONS) as OptionName[];

/** Each option's value as ferryd uses it (after the file's spelling was checked and converted). */
export type OptionValues = {
  -readonly [K in OptionName]: z.output<ReturnType<(typeof OPTIONS)[K]['schema']>>;
};

/** The defaults of every option but `socket` (which depends on the environment). */
export function defaultOptionValues(): Omit<OptionValues, 'socket'> {
  const out: Record<string, unknown> = {};
  for (const k of OPTION_NAMES) if (k !== 'socket') out[k] = structuredClone(OPTIONS[k].default);
  return out as Omit<OptionValues, 'socket'>;
}
