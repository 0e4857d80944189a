// Control-message codec: CtrlMessage <-> one plain msgpack map, checked against the schema tables.
import { Packr, Unpackr } from 'msgpackr';
import { type ErrorCode, FerryError, ferryError } from '../../errors.js';
import { CTRL_MAX_MESSAGE_BYTES, type CtrlMessage } from './messages.js';
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
  // checkFields built every field of CTRL_SCHEMA[t], whose kinds are tied to the interfaces by type.
  return checkFields(CTRL_SCHEMA[t], value, t, malformed, { t }) as unknown as CtrlMessage;
}

function isProtoCode(code: ErrorCode): boolean {
  return (
    code === 'ERR_FERRY_PROTO_MALFORMED' ||
    code === 'ERR_FERRY_PROTO_TOO_LARGE' ||
    code === 'ERR_FERRY_PROTO_UNKNOWN_MSG'
  );
}
