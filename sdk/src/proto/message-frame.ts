/**
 * Message framing in a byte fifo (@ferry/sdk/messages): each value, request, reply or loan is one
 * frame, a 16-byte header then the body.
 *
 * Header, little-endian:
 *   0  u32  body length in bytes (the header not included)
 *   4  u8   kind (MSG_KIND)
 *   5  u8   flags, 0 (reserved)
 *   6  u16  reserved, 0
 *   8  u32  id: the correlation id of a request, its reply and its cancel (never 0); 0 otherwise
 *  12  u32  aux: LOAN: the payload's length (the body starts with the payload, then the optional
 *           msgpack metadata); 0 for every other kind
 *
 * A frame occupies align8(16 + body) bytes: up to 7 bytes of padding follow the body, so every
 * frame a Ferry writer produces starts 8-byte aligned in the stream and a loan's payload is
 * 8-byte aligned (typed arrays over it work). Readers skip the padding whatever it holds.
 *
 * Bodies of MESSAGE, REQUEST and REPLY are one msgpack value each, encoded with record structures
 * shared per direction (msgpackr's sequential mode: a record's keys are written inline the first
 * time the shape is used, then referenced), so frames must be decoded in order, each exactly once.
 * ERROR's body is a msgpack map { name, message, code?, stack? }. HELLO's is { v, maxBytes }.
 * RESET (empty body) tells the reader to forget the record structures (the writer started afresh).
 * PAD's body is skipped (a writer used it to keep the next frame contiguous in the ring).
 *
 * Pure: no I/O. The header fields are checked against the rules above; the body is checked by its
 * decoder.
 */
import { type FerryError, ferryError } from '../errors.js';

export const MSG_HEADER_BYTES = 16;
/** Version of the framing, sent in HELLO. A reader refuses a HELLO whose major version differs. */
export const MSG_PROTO_VERSION = 1;

export const MSG_KIND = {
  PAD: 0,
  HELLO: 1,
  MESSAGE: 2,
  REQUEST: 3,
  REPLY: 4,
  ERROR: 5,
  CANCEL: 6,
  LOAN: 7,
  RESET: 8,
} as const;
export type MessageKind = (typeof MSG_KIND)[keyof typeof MSG_KIND];
const MAX_KIND = 8;

/** Kinds whose id is a request's correlation id (never 0); all others carry id 0. */
const ID_KINDS = new Set<number>([MSG_KIND.REQUEST, MSG_KIND.REPLY, MSG_KIND.ERROR, MSG_KIND.CANCEL]);

/** A decoded header. Readers reuse one object (see readMessageHeader). */
export interface MessageHeader {
  bodyBytes: number;
  kind: MessageKind;
  id: number;
  aux: number;
}

/** Bytes a frame with `bodyBytes` of body occupies in the stream, padding included. */
export function frameBytes(bodyBytes: number): number {
  const n = MSG_HEADER_BYTES + bodyBytes;
  // `& ~7` works on 32-bit ints; larger frames are refused by limits but stay exact here.
  return n < 0x7fff_fff0 ? (n + 7) & ~7 : Math.ceil(n / 8) * 8;
}

/** Writes a header at `offset` of `dst` (which must have 16 bytes there). */
export function writeMessageHeader(
  dst: DataView,
  offset: number,
  kind: MessageKind,
  bodyBytes: number,
  id: number,
  aux: number,
): void {
  dst.setUint32(offset, bodyBytes, true);
  // kind, flags and the reserved u16 in one store (flags and reserved are 0).
  dst.setUint32(offset + 4, kind, true);
  dst.setUint32(offset + 8, id, true);
  dst.setUint32(offset + 12, aux, true);
}

/** A header as a fresh 16-byte array (tests, slow paths). */
export function encodeMessageHeader(kind: MessageKind, bodyBytes: number, id = 0, aux = 0): Uint8Array {
  const out = new Uint8Array(MSG_HEADER_BYTES);
  writeMessageHeader(new DataView(out.buffer), 0, kind, bodyBytes, id, aux);
  return out;
}

/**
 * Reads and checks the header at `offset` of `src` into `out`. Returns null when it is valid, else
 * the error that fails the channel: EMSGSIZE when the body is longer than `maxBodyBytes`,
 * ERR_FERRY_MSG_MALFORMED for anything else. Never throws for any bytes.
 */
export function readMessageHeader(
  src: DataView,
  offset: number,
  out: MessageHeader,
  maxBodyBytes: number,
): FerryError | null {
  const bodyBytes = src.getUint32(offset, true);
  const kind = src.getUint8(offset + 4);
  const flags = src.getUint8(offset + 5);
  const reserved = src.getUint16(offset + 6, true);
  const id = src.getUint32(offset + 8, true);
  const aux = src.getUint32(offset + 12, true);
  if (kind > MAX_KIND) return malformed(`unknown frame kind ${kind}`);
  if (flags !== 0 || reserved !== 0) return malformed(`reserved header bits set (kind ${kind})`);
  if (ID_KINDS.has(kind) ? id === 0 : id !== 0) return malformed(`frame kind ${kind} with id ${id}`);
  if (kind === MSG_KIND.LOAN ? aux > bodyBytes : aux !== 0) {
    return malformed(`frame kind ${kind} with aux ${aux} (body ${bodyBytes})`);
  }
  if ((kind === MSG_KIND.CANCEL || kind === MSG_KIND.RESET) && bodyBytes !== 0) {
    return malformed(`frame kind ${kind} with a ${bodyBytes}-byte body`);
  }
  // PAD frames only fill the ring's tail, so they are never longer than a message may be either.
  if (bodyBytes > maxBodyBytes) {
    return ferryError('EMSGSIZE', `a ${bodyBytes}-byte frame exceeds the ${maxBodyBytes}-byte limit`);
  }
  out.bodyBytes = bodyBytes;
  out.kind = kind as MessageKind;
  out.id = id;
  out.aux = aux;
  return null;
}

function malformed(detail: string): FerryError {
  return ferryError('ERR_FERRY_MSG_MALFORMED', detail);
}
