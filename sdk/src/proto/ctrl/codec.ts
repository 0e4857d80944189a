// Control-message codec: CtrlMessage <-> one plain msgpack map, checked against the schema tables.
import { Packr, Unpackr } from 'msgpackr';
import { type ErrorCode, FerryError, ferryError } from '../../errors.js';
import { CTRL_MAX_MESSAGE_BYTES, type CtrlMessage, POOL_MAX_PAIRS, type PoolPair } from './messages.js';
import { CTRL_SCHEMA, checkFields, type FieldFailure, isCtrlType, isPlainObject, U32_MAX } from './schema.js';

// Plain, interoperable msgpack: no records/structures, bundled strings or clone references, so a
// decoder in any language reads these bytes. Maps get the smallest header (fixmap) for the same reason.
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  mapsAsObjects: true,
  variableMapSize: true,
  encodeUndefinedAsNil: false,
});

// A separate decoder, so nothing the encoder holds can shape decoding. Not `trusted` and not
// `sequential`: msgpackr then forgets any record definition a hostile message declares before the
// next decode. int64 values become numbers; beyond 2^53 they lose precision, land outside the safe
// range and fail the schema check, which is the intended outcome.
const unpackr = new Unpackr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  mapsAsObjects: true,
  int64AsType: 'number',
});

const SHORT_NAME = /^[\x21-\x7e]{1,64}$/;

const malformed: FieldFailure = (path, expected) =>
  ferryError('ERR_FERRY_PROTO_MALFORMED', `${path} must be ${expected}`);
const invalidArg: FieldFailure = (path, expected) =>
  ferryError('ERR_INVALID_ARG_VALUE', `${path} must be ${expected}`);

/**
 * Encodes one control message. Keys are written as `t` then the schema's field order, so the bytes
 * depend only on the message. A message that does not satisfy the schema is a programmer error
 * (ERR_INVALID_ARG_VALUE); one that encodes above CTRL_MAX_MESSAGE_BYTES is ERR_FERRY_PROTO_TOO_LARGE.
 */
export function encodeCtrl(msg: CtrlMessage): Uint8Array {
  const t: unknown = (msg as { t?: unknown } | null)?.t;
  if (!isCtrlType(t)) throw ferryError('ERR_INVALID_ARG_VALUE', 'not a control message type');
  const wire = checkFields(CTRL_SCHEMA[t], msg as unknown as Record<string, unknown>, t, invalidArg, { t });
  if (t === 'pool-grant' || t === 'pool-serve')
    wire['pairs'] = packPoolPairs(wire['pairs'] as PoolPair[], `${t}.pairs`);
  const bytes = packr.pack(toWire(wire));
  if (bytes.length > CTRL_MAX_MESSAGE_BYTES) {
    throw ferryError('ERR_FERRY_PROTO_TOO_LARGE', `${t} encodes to ${bytes.length} bytes`);
  }
  // A copy: msgpackr returns a view into a buffer it keeps writing later messages into.
  return new Uint8Array(bytes);
}

// msgpackr writes integers above 2^32 as float64; a bigint is written as a msgpack int64 instead.
// In place: `obj` and the maps in it are checkFields' fresh copies, never the caller's objects.
function toWire(obj: Record<string, unknown>): Record<string, unknown> {
  for (const key in obj) {
    const value = obj[key];
    if (typeof value === 'number') {
      if (value > U32_MAX) obj[key] = BigInt(value);
    } else if (isPlainObject(value)) toWire(value);
  }
  return obj;
}

/**
 * Decodes one control message (one datagram). Treats the bytes as hostile: throws a FerryError with
 * ERR_FERRY_PROTO_TOO_LARGE, ERR_FERRY_PROTO_MALFORMED or ERR_FERRY_PROTO_UNKNOWN_MSG and nothing
 * else. The result is a fresh object holding only the schema's fields; unknown keys are ignored.
 */
export function decodeCtrl(bytes: Uint8Array): CtrlMessage {
  if (bytes.length > CTRL_MAX_MESSAGE_BYTES) {
    throw ferryError('ERR_FERRY_PROTO_TOO_LARGE', `${bytes.length} bytes > ${CTRL_MAX_MESSAGE_BYTES}`);
  }
  if (bytes.length === 0) throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'empty message');
  try {
    return decodeChecked(unpack(bytes));
  } catch (e) {
    if (e instanceof FerryError && isProtoCode(e.code)) throw e;
    // Anything else is a bug in a checker; still honour the contract, keep the original as cause.
    throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'unexpected decoder failure', { cause: e });
  }
}

function unpack(bytes: Uint8Array): unknown {
  try {
    // A fresh view: msgpackr caches a DataView on the object it is given, the caller's array stays clean.
    return unpackr.unpack(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
  } catch (e) {
    throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'not a single valid msgpack value', { cause: e });
  }
}

function decodeChecked(value: unknown): CtrlMessage {
  if (!isPlainObject(value)) throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'not a msgpack map');
  if (!Object.hasOwn(value, 't')) throw ferryError('ERR_FERRY_PROTO_MALFORMED', 'no message type `t`');
  const { t } = value as { t: unknown };
  if (!isCtrlType(t)) {
    const name = typeof t === 'string' && SHORT_NAME.test(t) ? ` '${t}'` : '';
    throw ferryError('ERR_FERRY_PROTO_UNKNOWN_MSG', `type${name} is not known`);
  }
  if ((t === 'pool-grant' || t === 'pool-serve') && Object.hasOwn(value, 'pairs')) {
    (value as Record<string, unknown>)['pairs'] = unpackPoolPairs(value['pairs'], `${t}.pairs`);
  }
  // checkFields built every field of CTRL_SCHEMA[t], whose kinds are tied to the interfaces by type.
  return checkFields(CTRL_SCHEMA[t], value, t, malformed, { t }) as unknown as CtrlMessage;
}

/**
 * The pairs of `pool-grant` and `pool-serve` travel as one msgpack bin of POOL_PAIR_BYTES per pair
 * (u32 little-endian: session, port, segment, rxOffset, txOffset, rxSize, txSize, slot) instead of
 * an array of maps of maps: a top-up carries up to 32 pairs, and their keys were most of what
 * ferryd encoded and the apps decoded per connection (docs/control-protocol.md, pool-grant).
 */
export const POOL_PAIR_BYTES = 32;

function packPoolPairs(pairs: readonly PoolPair[], where: string): Uint8Array {
  const out = new Uint8Array(pairs.length * POOL_PAIR_BYTES);
  const view = new DataView(out.buffer);
  let at = 0;
  const put = (w: number) => {
    // Segments are below 4 GiB, so offsets and sizes fit a u32 (checkFields allowed any safe integer).
    if (w > U32_MAX) throw invalidArg(where, 'pairs with offsets and sizes below 2^32');
    view.setUint32(at, w, true);
    at += 4;
  };
  for (const p of pairs) {
    const f = p.fifos;
    put(p.session);
    put(p.port);
    put(f.segment);
    put(f.rxOffset);
    put(f.txOffset);
    put(f.rxSize);
    put(f.txSize);
    put(f.slot);
  }
  return out;
}

/** Bytes of a received bin -> PoolPair maps for checkFields; anything else is malformed. */
function unpackPoolPairs(v: unknown, where: string): unknown {
  if (
    !(v instanceof Uint8Array) ||
    v.length % POOL_PAIR_BYTES !== 0 ||
    v.length > POOL_MAX_PAIRS * POOL_PAIR_BYTES
  ) {
    throw malformed(where, `a bin of at most ${POOL_MAX_PAIRS} pairs of ${POOL_PAIR_BYTES} bytes`);
  }
  const view = new DataView(v.buffer, v.byteOffset, v.length);
  const pairs: PoolPair[] = [];
  for (let at = 0; at < v.length; at += POOL_PAIR_BYTES) {
    const u = (i: number) => view.getUint32(at + 4 * i, true);
    pairs.push({
      session: u(0),
      port: u(1),
      fifos: { segment: u(2), rxOffset: u(3), txOffset: u(4), rxSize: u(5), txSize: u(6), slot: u(7) },
    });
  }
  return pairs;
}

function isProtoCode(code: ErrorCode): boolean {
  return (
    code === 'ERR_FERRY_PROTO_MALFORMED' ||
    code === 'ERR_FERRY_PROTO_TOO_LARGE' ||
    code === 'ERR_FERRY_PROTO_UNKNOWN_MSG'
  );
}
