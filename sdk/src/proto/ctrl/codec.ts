// Control-message codec: CtrlMessage <-> one plain msgpack map, checked against the schema tables.
import { Unpackr } from 'msgpackr';
import { type ErrorCode, FerryError, ferryError } from '../../errors.js';
import { CTRL_MAX_MESSAGE_BYTES, type CtrlMessage } from './messages.js';
import { writeMsgpack } from './msgpack-writer.js';
import { CTRL_SCHEMA, checkFields, type FieldFailure, isCtrlType, isPlainObject } from './schema.js';

// Plain, interoperable msgpack on the way out: no records, extensions or bundled strings, the
// smallest header of every value (msgpack-writer.ts), so a decoder in any language reads these bytes.
// msgpackr decodes. Not `trusted` and not `sequential`: msgpackr then forgets any record definition a hostile message declares before the
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
  return encodeCtrlView(msg).slice();
}

/**
 * encodeCtrl without the copy: the bytes are a view of a buffer the next encode on this thread
 * overwrites. For a sender that hands them to the kernel at once (and copies what it must queue).
 */
export function encodeCtrlView(msg: CtrlMessage): Uint8Array {
  const t: unknown = (msg as { t?: unknown } | null)?.t;
  if (!isCtrlType(t)) throw ferryError('ERR_INVALID_ARG_VALUE', 'not a control message type');
  const wire = checkFields(CTRL_SCHEMA[t], msg as unknown as Record<string, unknown>, t, invalidArg, { t });
  const bytes = writeMsgpack(wire);
  if (bytes.length > CTRL_MAX_MESSAGE_BYTES) {
    throw ferryError('ERR_FERRY_PROTO_TOO_LARGE', `${t} encodes to ${bytes.length} bytes`);
  }
  return bytes;
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
