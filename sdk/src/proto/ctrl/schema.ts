// The control-message schema as data: one table per message type (field -> kind), and its checker.
import type { CtrlMessage, CtrlType, FdRole, FifoPairRef, PoolPair, TlsOptions } from './messages.js';
import { CTRL_MAX_FDS, CTRL_MAX_MESSAGE_BYTES, POOL_MAX_PAIRS, POOL_MAX_SLOTS } from './messages.js';

/** Longest `uri`, `err`, `name`, `localUri`, `remoteUri`, in UTF-16 code units. */
export const CTRL_MAX_TEXT = 1024;
/** Longest `namespace`, `token`, `transport`, in UTF-16 code units. */
export const CTRL_MAX_SHORT_TEXT = 256;
/** Highest u32. */
export const U32_MAX = 0xffff_ffff;
/** Lowest `st`: statuses are i32 on the wire, as in VPP's `retval`. */
export const STATUS_MIN = -0x8000_0000;

export const FD_ROLES: readonly FdRole[] = ['doorbell', 'wake', 'segment', 'socket', 'listener'];

/**
 * How a field is checked:
 * - `u32`: integer in [0, 2^32-1] (ids, versions, feature bits, listener/session/segment/slot numbers)
 * - `zero`: the integer 0 (the `id` of events)
 * - `size`: non-negative safe integer (byte offsets and sizes; may exceed 2^32)
 * - `status`: integer in [-2^31, 0]
 * - `text` / `short`: well-formed string of at most CTRL_MAX_TEXT / CTRL_MAX_SHORT_TEXT code units
 * - `fds`: array of at most CTRL_MAX_FDS known FdRole names
 * - `fifos`: a FifoPairRef map; `fifosOrNull`: the same or nil
 * - `optU32`: an optional u32: the key may be absent (added after version 1)
 * - `flag`: an optional boolean (absent: not given; older peers never send it)
 * - `tls`: an optional TlsOptions map: the key may be absent (older peers never send it), and
 *   within the map every key is optional (strings, or booleans for the flags)
 * - `pairs`: an array of at most POOL_MAX_PAIRS PoolPair maps
 * - `slots`: an array of at most POOL_MAX_SLOTS u32
 */
export type FieldKind =
  | 'u32'
  | 'zero'
  | 'size'
  | 'status'
  | 'text'
  | 'short'
  | 'fds'
  | 'fifos'
  | 'fifosOrNull'
  | 'optU32'
  | 'flag'
  | 'tls'
  | 'pairs'
  | 'slots';

type KindsFor<V> = [V] extends [FdRole[]]
  ? 'fds'
  : [V] extends [PoolPair[]]
    ? 'pairs'
    : [V] extends [number[]]
      ? 'slots'
      : [V] extends [FifoPairRef]
        ? 'fifos'
        : [V] extends [FifoPairRef | null]
          ? 'fifosOrNull'
          : [V] extends [0]
            ? 'zero'
            : [V] extends [number]
              ? 'u32' | 'size' | 'status'
              : [V] extends [string]
                ? 'text' | 'short'
                : [V] extends [number | undefined]
                  ? 'optU32'
                  : [V] extends [TlsOptions | undefined]
                    ? 'tls'
                    : [V] extends [boolean | undefined]
                      ? 'flag'
                      : never;

type SchemaOf<M> = { readonly [K in Exclude<keyof M, 't'>]: KindsFor<M[K]> };
type Schema = Readonly<Record<string, FieldKind>>;

export const FIFO_PAIR_SCHEMA = {
  segment: 'u32',
  rxOffset: 'size',
  txOffset: 'size',
  rxSize: 'size',
  txSize: 'size',
  slot: 'u32',
} as const satisfies SchemaOf<FifoPairRef>;

export const POOL_PAIR_SCHEMA = {
  session: 'u32',
  port: 'u32',
  fifos: 'fifos',
} as const satisfies SchemaOf<PoolPair>;

/**
 * Field tables in the order the interfaces in messages.ts list their fields: that order is the key
 * order on the wire (after `t`), which keeps encodings deterministic and the golden fixtures stable.
 */
export const CTRL_SCHEMA = {
  hello: {
    id: 'u32',
    version: 'u32',
    minVersion: 'u32',
    features: 'u32',
    name: 'text',
    namespace: 'short',
    token: 'short',
    fds: 'fds',
    reattach: 'optU32',
  },
  detach: { id: 'u32' },
  listen: { id: 'u32', uri: 'text', tls: 'tls', handoff: 'flag' },
  unlisten: { id: 'u32', listener: 'u32' },
  connect: { id: 'u32', uri: 'text', rxFifoSize: 'size', txFifoSize: 'size', tls: 'tls', handoff: 'flag' },
  shutdown: { id: 'u32', session: 'u32' },
  close: { id: 'u32', session: 'u32' },
  reset: { id: 'u32', session: 'u32' },
  'segment-released': { id: 'u32', segment: 'u32' },
  ping: { id: 'u32' },
  'fast-open': { id: 'u32', session: 'u32' },
  'pool-release': { id: 'u32', pool: 'u32' },
  notices: { id: 'u32', ops: 'slots' },
  accepts: {
    id: 'u32',
    listener: 'u32',
    window: 'u32',
    open: 'u32',
    waiting: 'u32',
    total: 'size',
    refused: 'size',
  },
  'dgram-bind': { id: 'u32', uri: 'text', rxFifoSize: 'size', txFifoSize: 'size' },
  'dgram-connect': { id: 'u32', endpoint: 'u32', uri: 'text', rxFifoSize: 'size', txFifoSize: 'size' },
  adopt: { id: 'u32', listener: 'u32', fds: 'fds' },
  'hello-reply': {
    id: 'u32',
    st: 'status',
    err: 'text',
    version: 'u32',
    features: 'u32',
    appId: 'u32',
    fds: 'fds',
  },
  status: { id: 'u32', st: 'status', err: 'text' },
  'listen-reply': { id: 'u32', st: 'status', err: 'text', listener: 'u32', uri: 'text' },
  'connect-reply': {
    id: 'u32',
    st: 'status',
    err: 'text',
    session: 'u32',
    fifos: 'fifosOrNull',
    localUri: 'text',
    remoteUri: 'text',
    fds: 'fds',
    transport: 'short',
  },
  'dgram-bind-reply': {
    id: 'u32',
    st: 'status',
    err: 'text',
    endpoint: 'u32',
    uri: 'text',
    session: 'u32',
    fifos: 'fifosOrNull',
  },
  pong: { id: 'u32', st: 'status', err: 'text' },
  accepted: {
    id: 'zero',
    listener: 'u32',
    session: 'u32',
    fifos: 'fifosOrNull',
    localUri: 'text',
    remoteUri: 'text',
    fds: 'fds',
    transport: 'short',
  },
  'segment-add': {
    id: 'zero',
    segment: 'u32',
    size: 'size',
    rxQueueOffset: 'size',
    txQueueOffset: 'size',
    queueCapacity: 'u32',
    maxSlot: 'u32',
    fds: 'fds',
  },
  'segment-del': { id: 'zero', segment: 'u32' },
  disconnected: { id: 'zero', session: 'u32' },
  'session-reset': { id: 'zero', session: 'u32', st: 'status', err: 'text' },
  'pool-grant': { id: 'zero', pool: 'u32', uri: 'text', remoteUri: 'text', pairs: 'pairs' },
  'pool-serve': { id: 'zero', pool: 'u32', listener: 'u32', localUri: 'text', pairs: 'pairs' },
  'pool-revoke': { id: 'zero', pool: 'u32', taken: 'slots', more: 'flag' },
  'listener-lent': { id: 'zero', listener: 'u32', window: 'u32', fds: 'fds' },
  'sockets-lent': { id: 'zero', pool: 'u32', uri: 'text', remoteUri: 'text', sessions: 'slots', fds: 'fds' },
  error: { id: 'u32', st: 'status', err: 'text' },
} as const satisfies { readonly [T in CtrlType]: SchemaOf<Extract<CtrlMessage, { t: T }>> };

export const CTRL_TYPES = Object.keys(CTRL_SCHEMA) as CtrlType[];

export function isCtrlType(t: unknown): t is CtrlType {
  return typeof t === 'string' && Object.hasOwn(CTRL_SCHEMA, t);
}

export function schemaOf(t: CtrlType): Schema {
  return CTRL_SCHEMA[t];
}

/** A plain msgpack map as msgpackr returns it: not an array, Date, Set, Error, Buffer... */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

// A lone surrogate has no UTF-8 form; msgpackr's JS string reader can produce one from CESU-style bytes.
const LONE_SURROGATE = /\p{Cs}/u;

function checkText(v: unknown, max: number): string | undefined {
  return typeof v === 'string' && v.length <= max && !LONE_SURROGATE.test(v) ? v : undefined;
}

function checkInt(v: unknown, min: number, max: number): number | undefined {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) return undefined;
  return v === 0 ? 0 : v; // -0 becomes 0
}

function checkFds(v: unknown): FdRole[] | undefined {
  if (!Array.isArray(v) || v.length > CTRL_MAX_FDS) return undefined;
  const out: FdRole[] = [];
  for (const role of v) {
    if (!FD_ROLES.includes(role as FdRole)) return undefined;
    out.push(role as FdRole);
  }
  return out;
}

/** Why a field was refused: names the field and the expectation, never the value (tokens are secret). */
export type FieldFailure = (path: string, expected: string) => Error;

const EXPECTED: { readonly [K in FieldKind]: string } = {
  u32: 'an integer in [0, 2^32-1]',
  zero: '0',
  size: 'a non-negative safe integer',
  status: 'an integer in [-2^31, 0]',
  text: `a well-formed string of at most ${CTRL_MAX_TEXT} code units`,
  short: `a well-formed string of at most ${CTRL_MAX_SHORT_TEXT} code units`,
  fds: `an array of at most ${CTRL_MAX_FDS} of ${FD_ROLES.join('|')}`,
  fifos: 'a fifo pair map',
  fifosOrNull: 'a fifo pair map or nil',
  optU32: 'an integer in [0, 2^32-1]',
  flag: 'a boolean',
  tls: 'a TLS options map (cert, key, ca, servername: strings; rejectUnauthorized, cutThrough: booleans)',
  pairs: `an array of at most ${POOL_MAX_PAIRS} pool pair maps`,
  slots: `an array of at most ${POOL_MAX_SLOTS} integers in [0, 2^32-1]`,
};

/** Strings and flags a TlsOptions map may hold; PEM text is bounded only by the message size. */
const TLS_TEXT_FIELDS = ['cert', 'key', 'ca', 'servername'] as const;
const TLS_FLAG_FIELDS = ['rejectUnauthorized', 'cutThrough'] as const;

function checkTls(v: unknown): TlsOptions | undefined {
  if (!isPlainObject(v)) return undefined;
  const out: TlsOptions = {};
  for (const k of TLS_TEXT_FIELDS) {
    if (!Object.hasOwn(v, k)) continue;
    const max = k === 'servername' ? CTRL_MAX_SHORT_TEXT : CTRL_MAX_MESSAGE_BYTES;
    const text = checkText(v[k], max);
    if (text === undefined) return undefined;
    out[k] = text;
  }
  for (const k of TLS_FLAG_FIELDS) {
    if (!Object.hasOwn(v, k)) continue;
    const flag = v[k];
    if (typeof flag !== 'boolean') return undefined;
    out[k] = flag;
  }
  return out;
}

// `where` and `key` rather than a ready path: the path is text for errors (and nested fields), so
// a message that checks out never builds one.
function checkValue(kind: FieldKind, v: unknown, where: string, key: string, fail: FieldFailure): unknown {
  let out: unknown;
  switch (kind) {
    case 'u32':
    case 'optU32':
      out = checkInt(v, 0, U32_MAX);
      break;
    case 'zero':
      out = checkInt(v, 0, 0);
      break;
    case 'size':
      out = checkInt(v, 0, Number.MAX_SAFE_INTEGER);
      break;
    case 'status':
      out = checkInt(v, STATUS_MIN, 0);
      break;
    case 'text':
      out = checkText(v, CTRL_MAX_TEXT);
      break;
    case 'short':
      out = checkText(v, CTRL_MAX_SHORT_TEXT);
      break;
    case 'fds':
      out = checkFds(v);
      break;
    case 'fifosOrNull':
      if (v === null) return null;
      return isPlainObject(v)
        ? checkFields(FIFO_PAIR_SCHEMA, v, `${where}.${key}`, fail)
        : failWith(fail, `${where}.${key}`, kind);
    case 'fifos':
      return isPlainObject(v)
        ? checkFields(FIFO_PAIR_SCHEMA, v, `${where}.${key}`, fail)
        : failWith(fail, `${where}.${key}`, kind);
    case 'flag':
      out = typeof v === 'boolean' ? v : undefined;
      break;
    case 'tls':
      out = checkTls(v);
      break;
    case 'pairs': {
      if (!Array.isArray(v) || v.length > POOL_MAX_PAIRS) return failWith(fail, `${where}.${key}`, kind);
      const pairs: unknown[] = [];
      for (let i = 0; i < v.length; i++) {
        const p: unknown = v[i];
        const at = `${where}.${key}[${i}]`;
        pairs.push(isPlainObject(p) ? checkFields(POOL_PAIR_SCHEMA, p, at, fail) : failWith(fail, at, kind));
      }
      return pairs;
    }
    case 'slots': {
      if (!Array.isArray(v) || v.length > POOL_MAX_SLOTS) return failWith(fail, `${where}.${key}`, kind);
      const slots: number[] = [];
      for (const x of v) {
        const n = checkInt(x, 0, U32_MAX);
        if (n === undefined) return failWith(fail, `${where}.${key}`, kind);
        slots.push(n);
      }
      return slots;
    }
  }
  return out === undefined ? failWith(fail, `${where}.${key}`, kind) : out;
}

function failWith(fail: FieldFailure, path: string, kind: FieldKind): never {
  throw fail(path, EXPECTED[kind]);
}

/** Kinds whose key may be missing: fields added after version 1, which older peers never send. */
const OPTIONAL_KINDS: ReadonlySet<FieldKind> = new Set(['tls', 'optU32', 'flag']);

interface FieldEntry {
  readonly key: string;
  readonly kind: FieldKind;
  readonly optional: boolean;
}

// Every message passes through checkFields twice (encode and decode): its table is walked as a
// ready array instead of an Object.entries() copy per call.
const ENTRIES = new WeakMap<Schema, readonly FieldEntry[]>();

function entriesOf(schema: Schema): readonly FieldEntry[] {
  let entries = ENTRIES.get(schema);
  if (entries === undefined) {
    entries = Object.entries(schema).map(([key, kind]) => ({
      key,
      kind,
      optional: OPTIONAL_KINDS.has(kind),
    }));
    ENTRIES.set(schema, entries);
  }
  return entries;
}

/**
 * Checks every field of `schema` in `src` and returns a fresh object holding only those fields, in
 * schema order. Keys not in the schema (newer peers' additions, `__proto__`) are not copied; only own
 * properties are read, so nothing is picked up from a prototype. `into` (default a new object)
 * receives the fields after whatever it already holds: the codec passes `{ t }`, so that the type
 * comes first.
 */
export function checkFields(
  schema: Schema,
  src: Record<string, unknown>,
  where: string,
  fail: FieldFailure,
  into: Record<string, unknown> = {},
): Record<string, unknown> {
  const out = into;
  for (const { key, kind, optional } of entriesOf(schema)) {
    const present = Object.hasOwn(src, key);
    // Optional fields: absent (or undefined, on the encoding side) means "not given".
    if (optional && (!present || src[key] === undefined)) continue;
    if (!present) throw fail(`${where}.${key}`, `present (${EXPECTED[kind]})`);
    out[key] = checkValue(kind, src[key], where, key, fail);
  }
  return out;
}
