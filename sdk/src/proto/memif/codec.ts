// memif control-message codec: 128-byte datagrams <-> MemifMessage. Pure; treats input as hostile.
//
// decodeMemif either returns a well-formed message or throws a FerryError with code
// ERR_FERRY_PROTO_MALFORMED (wrong size, bad field, bad string) or ERR_FERRY_PROTO_UNKNOWN_MSG
// (type NONE or above DISCONNECT); nothing else escapes. What a field's value means for the
// connection (a version the server does not speak, an id nobody serves, a ring index beyond what
// was agreed) is the state machine's business, not the codec's: the codec only refuses what no
// state could accept (an index above 255, log2 0 or above 14, a non-zero private header, ...).

import { type ErrorCode, type FerryError, ferryError } from '../../errors.js';
import {
  MEMIF_ADD_RING_FLAG_C2S,
  MEMIF_DISCONNECT_STRING_SIZE,
  MEMIF_MAX_LOG2_RING_SIZE,
  MEMIF_MAX_REGION_INDEX,
  MEMIF_MAX_RING_INDEX,
  MEMIF_MODE,
  MEMIF_MSG_SIZE,
  MEMIF_MSG_TYPE,
  MEMIF_NAME_SIZE,
  MEMIF_SECRET_SIZE,
  type MemifModeName,
} from './constants.js';
import type { MemifMessage } from './messages.js';

// Field offsets, from the start of the 128-byte message (spec §3).
const TYPE = 0;
const HELLO_NAME = 2;
const HELLO_MIN_VERSION = 34;
const HELLO_MAX_VERSION = 36;
const HELLO_MAX_REGION = 38;
const HELLO_MAX_S2C = 40;
const HELLO_MAX_C2S = 42;
const HELLO_MAX_LOG2 = 44;
const INIT_VERSION = 2;
const INIT_ID = 4;
const INIT_MODE = 8;
const INIT_SECRET = 9;
const INIT_NAME = 33;
const REGION_INDEX = 2;
const REGION_SIZE = 4;
const RING_FLAGS = 2;
const RING_INDEX = 4;
const RING_REGION = 6;
const RING_OFFSET = 8;
const RING_LOG2 = 12;
const RING_PRIVATE_HDR = 13;
const CONNECT_IF_NAME = 2;
const DISCONNECT_CODE = 2;
const DISCONNECT_STRING = 6;

const LE = true;
const MODE_NAMES = Object.keys(MEMIF_MODE) as MemifModeName[];
const utf8 = new TextDecoder('utf-8', { fatal: true });
const utf8Encoder = new TextEncoder();

function malformed(detail: string): FerryError {
  return ferryError('ERR_FERRY_PROTO_MALFORMED', `memif: ${detail}`);
}

/**
 * Reads a NUL-padded string field. `terminated`: the field must hold a NUL (secret); otherwise a
 * field filled to the end is a string of full length (names, spec §3).
 */
function readString(b: Uint8Array, off: number, size: number, what: string, terminated: boolean): string {
  let end = off;
  const limit = off + size;
  while (end < limit && b[end] !== 0) end++;
  if (terminated && end === limit) throw malformed(`${what} is not NUL-terminated within ${size} bytes`);
  try {
    return utf8.decode(b.subarray(off, end));
  } catch {
    throw malformed(`${what} is not valid UTF-8`);
  }
}

/** Decodes one received datagram. `bytes` is exactly what arrived (its length is checked). */
export function decodeMemif(bytes: Uint8Array): MemifMessage {
  if (!(bytes instanceof Uint8Array)) throw malformed('message is not a byte array');
  if (bytes.byteLength !== MEMIF_MSG_SIZE) {
    throw malformed(`message is ${bytes.byteLength} bytes, not ${MEMIF_MSG_SIZE}`);
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const type = v.getUint16(TYPE, LE);
  switch (type) {
    case MEMIF_MSG_TYPE.ACK:
      return { type: 'ack' };
    case MEMIF_MSG_TYPE.HELLO: {
      const minVersion = v.getUint16(HELLO_MIN_VERSION, LE);
      const maxVersion = v.getUint16(HELLO_MAX_VERSION, LE);
      if (minVersion > maxVersion)
        throw malformed(`HELLO version range ${hex(minVersion)}..${hex(maxVersion)}`);
      return {
        type: 'hello',
        name: readString(bytes, HELLO_NAME, MEMIF_NAME_SIZE, 'HELLO name', false),
        minVersion,
        maxVersion,
        maxRegion: v.getUint16(HELLO_MAX_REGION, LE),
        maxS2cRing: v.getUint16(HELLO_MAX_S2C, LE),
        maxC2sRing: v.getUint16(HELLO_MAX_C2S, LE),
        maxLog2RingSize: v.getUint8(HELLO_MAX_LOG2),
      };
    }
    case MEMIF_MSG_TYPE.INIT: {
      const mode = MODE_NAMES[v.getUint8(INIT_MODE)];
      if (mode === undefined) throw malformed(`INIT mode ${v.getUint8(INIT_MODE)} is not 0, 1 or 2`);
      return {
        type: 'init',
        version: v.getUint16(INIT_VERSION, LE),
        id: v.getUint32(INIT_ID, LE),
        mode,
        secret: readString(bytes, INIT_SECRET, MEMIF_SECRET_SIZE, 'INIT secret', true),
        name: readString(bytes, INIT_NAME, MEMIF_NAME_SIZE, 'INIT name', false),
      };
    }
    case MEMIF_MSG_TYPE.ADD_REGION: {
      const index = v.getUint16(REGION_INDEX, LE);
      if (index > MEMIF_MAX_REGION_INDEX)
        throw malformed(`ADD_REGION index ${index} > ${MEMIF_MAX_REGION_INDEX}`);
      const size = v.getBigUint64(REGION_SIZE, LE);
      if (size === 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
        throw malformed(`ADD_REGION size ${size} is 0 or too large`);
      }
      return { type: 'add-region', index, size: Number(size) };
    }
    case MEMIF_MSG_TYPE.ADD_RING: {
      const flags = v.getUint16(RING_FLAGS, LE);
      if ((flags & ~MEMIF_ADD_RING_FLAG_C2S) !== 0)
        throw malformed(`ADD_RING flags ${hex(flags)} has unknown bits`);
      const index = v.getUint16(RING_INDEX, LE);
      if (index > MEMIF_MAX_RING_INDEX) throw malformed(`ADD_RING index ${index} > ${MEMIF_MAX_RING_INDEX}`);
      const region = v.getUint16(RING_REGION, LE);
      if (region > MEMIF_MAX_REGION_INDEX)
        throw malformed(`ADD_RING region ${region} > ${MEMIF_MAX_REGION_INDEX}`);
      const log2RingSize = v.getUint8(RING_LOG2);
      if (log2RingSize < 1 || log2RingSize > MEMIF_MAX_LOG2_RING_SIZE) {
        throw malformed(`ADD_RING log2 ring size ${log2RingSize} not in 1..${MEMIF_MAX_LOG2_RING_SIZE}`);
      }
      const privateHdr = v.getUint16(RING_PRIVATE_HDR, LE);
      if (privateHdr !== 0) throw malformed(`ADD_RING private header size ${privateHdr} is not 0`);
      return {
        type: 'add-ring',
        direction: (flags & MEMIF_ADD_RING_FLAG_C2S) !== 0 ? 'c2s' : 's2c',
        index,
        region,
        offset: v.getUint32(RING_OFFSET, LE),
        log2RingSize,
      };
    }
    case MEMIF_MSG_TYPE.CONNECT:
      return {
        type: 'connect',
        ifName: readString(bytes, CONNECT_IF_NAME, MEMIF_NAME_SIZE, 'CONNECT name', false),
      };
    case MEMIF_MSG_TYPE.CONNECTED:
      return {
        type: 'connected',
        ifName: readString(bytes, CONNECT_IF_NAME, MEMIF_NAME_SIZE, 'CONNECTED name', false),
      };
    case MEMIF_MSG_TYPE.DISCONNECT:
      return {
        type: 'disconnect',
        code: v.getUint32(DISCONNECT_CODE, LE),
        reason: readString(
          bytes,
          DISCONNECT_STRING,
          MEMIF_DISCONNECT_STRING_SIZE,
          'DISCONNECT string',
          false,
        ),
      };
    default:
      throw ferryError('ERR_FERRY_PROTO_UNKNOWN_MSG', `memif: message type ${type}`);
  }
}

function hex(n: number): string {
  return `0x${n.toString(16).padStart(4, '0')}`;
}

function argError(code: ErrorCode, detail: string): FerryError {
  return ferryError(code, `memif: ${detail}`);
}

function checkUint(value: unknown, what: string, max: number, min = 0): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw argError('ERR_INVALID_ARG_TYPE', `${what} must be an integer`);
  }
  if (value < min || value > max)
    throw argError('ERR_OUT_OF_RANGE', `${what} ${value} not in ${min}..${max}`);
  return value;
}

/** Writes a string field; `maxBytes` is the usable length (the field size, or one less if a NUL must fit). */
function writeString(out: Uint8Array, off: number, value: unknown, maxBytes: number, what: string): void {
  if (typeof value !== 'string') throw argError('ERR_INVALID_ARG_TYPE', `${what} must be a string`);
  const bytes = utf8Encoder.encode(value);
  if (bytes.includes(0)) throw argError('ERR_INVALID_ARG_VALUE', `${what} must not contain NUL`);
  if (bytes.byteLength > maxBytes) {
    throw argError('ERR_OUT_OF_RANGE', `${what} is ${bytes.byteLength} bytes, at most ${maxBytes}`);
  }
  out.set(bytes, off);
}

/**
 * Encodes a message into `out` (128 bytes, zero-filled first) or a new array. Throws
 * ERR_INVALID_ARG_* / ERR_OUT_OF_RANGE for a message that could not be decoded back.
 */
export function encodeMemif(msg: MemifMessage, out: Uint8Array = new Uint8Array(MEMIF_MSG_SIZE)): Uint8Array {
  if (!(out instanceof Uint8Array) || out.byteLength !== MEMIF_MSG_SIZE) {
    throw argError('ERR_INVALID_ARG_VALUE', `out must be a Uint8Array of ${MEMIF_MSG_SIZE} bytes`);
  }
  out.fill(0);
  const v = new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (msg?.type) {
    case 'ack':
      v.setUint16(TYPE, MEMIF_MSG_TYPE.ACK, LE);
      break;
    case 'hello': {
      const min = checkUint(msg.minVersion, 'minVersion', 0xffff);
      const max = checkUint(msg.maxVersion, 'maxVersion', 0xffff);
      if (min > max) throw argError('ERR_INVALID_ARG_VALUE', 'minVersion > maxVersion');
      v.setUint16(TYPE, MEMIF_MSG_TYPE.HELLO, LE);
      writeString(out, HELLO_NAME, msg.name, MEMIF_NAME_SIZE, 'name');
      v.setUint16(HELLO_MIN_VERSION, min, LE);
      v.setUint16(HELLO_MAX_VERSION, max, LE);
      v.setUint16(HELLO_MAX_REGION, checkUint(msg.maxRegion, 'maxRegion', 0xffff), LE);
      v.setUint16(HELLO_MAX_S2C, checkUint(msg.maxS2cRing, 'maxS2cRing', 0xffff), LE);
      v.setUint16(HELLO_MAX_C2S, checkUint(msg.maxC2sRing, 'maxC2sRing', 0xffff), LE);
      v.setUint8(HELLO_MAX_LOG2, checkUint(msg.maxLog2RingSize, 'maxLog2RingSize', 0xff));
      break;
    }
    case 'init': {
      const mode = MEMIF_MODE[msg.mode];
      if (!Object.hasOwn(MEMIF_MODE, msg.mode) || mode === undefined) {
        throw argError('ERR_INVALID_ARG_VALUE', `mode ${String(msg.mode)}`);
      }
      v.setUint16(TYPE, MEMIF_MSG_TYPE.INIT, LE);
      v.setUint16(INIT_VERSION, checkUint(msg.version, 'version', 0xffff), LE);
      v.setUint32(INIT_ID, checkUint(msg.id, 'id', 0xffff_ffff), LE);
      v.setUint8(INIT_MODE, mode);
      writeString(out, INIT_SECRET, msg.secret, MEMIF_SECRET_SIZE - 1, 'secret');
      writeString(out, INIT_NAME, msg.name, MEMIF_NAME_SIZE, 'name');
      break;
    }
    case 'add-region':
      v.setUint16(TYPE, MEMIF_MSG_TYPE.ADD_REGION, LE);
      v.setUint16(REGION_INDEX, checkUint(msg.index, 'index', MEMIF_MAX_REGION_INDEX), LE);
      v.setBigUint64(REGION_SIZE, BigInt(checkUint(msg.size, 'size', Number.MAX_SAFE_INTEGER, 1)), LE);
      break;
    case 'add-ring':
      if (msg.direction !== 'c2s' && msg.direction !== 's2c') {
        throw argError('ERR_INVALID_ARG_VALUE', `direction ${String(msg.direction)}`);
      }
      v.setUint16(TYPE, MEMIF_MSG_TYPE.ADD_RING, LE);
      v.setUint16(RING_FLAGS, msg.direction === 'c2s' ? MEMIF_ADD_RING_FLAG_C2S : 0, LE);
      v.setUint16(RING_INDEX, checkUint(msg.index, 'index', MEMIF_MAX_RING_INDEX), LE);
      v.setUint16(RING_REGION, checkUint(msg.region, 'region', MEMIF_MAX_REGION_INDEX), LE);
      v.setUint32(RING_OFFSET, checkUint(msg.offset, 'offset', 0xffff_ffff), LE);
      v.setUint8(RING_LOG2, checkUint(msg.log2RingSize, 'log2RingSize', MEMIF_MAX_LOG2_RING_SIZE, 1));
      break;
    case 'connect':
    case 'connected':
      v.setUint16(TYPE, msg.type === 'connect' ? MEMIF_MSG_TYPE.CONNECT : MEMIF_MSG_TYPE.CONNECTED, LE);
      writeString(out, CONNECT_IF_NAME, msg.ifName, MEMIF_NAME_SIZE, 'ifName');
      break;
    case 'disconnect':
      v.setUint16(TYPE, MEMIF_MSG_TYPE.DISCONNECT, LE);
      v.setUint32(DISCONNECT_CODE, checkUint(msg.code, 'code', 0xffff_ffff), LE);
      writeString(out, DISCONNECT_STRING, msg.reason, MEMIF_DISCONNECT_STRING_SIZE - 1, 'reason');
      break;
    default:
      throw argError(
        'ERR_INVALID_ARG_VALUE',
        `unknown message type ${String((msg as { type?: unknown })?.type)}`,
      );
  }
  return out;
}

/**
 * The longest prefix of `s` that fits `maxBytes` of UTF-8 without splitting a character (for
 * reason strings and names built from user input).
 */
export function truncateUtf8(s: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const ch of s) {
    const n = utf8Encoder.encode(ch).byteLength;
    if (ch === '\0' || bytes + n > maxBytes) break;
    bytes += n;
    end += ch.length;
  }
  return s.slice(0, end);
}
