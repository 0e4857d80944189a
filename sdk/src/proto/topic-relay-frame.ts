/**
 * Frames of the topic relay: the one TCP stream per topic and host between two ferryds, by which
 * the ferryd that imports a topic receives what is published to it on the host that exports it.
 *
 * A frame: u32 LE body length, u8 kind, three zero bytes, then the body.
 * - HELLO (importer -> exporter): JSON `{ v, namespace, topic }`, first and once.
 * - WELCOME (exporter -> importer): JSON `{ v, policy }`, the answer to HELLO.
 * - RECORD (exporter -> importer): u32 LE gap (messages lost upstream just before this one), then
 *   the message's encoded bytes as its publisher wrote them.
 * - BYE (exporter -> importer): JSON `{ code, message }`, the reason, before the exporter closes.
 *
 * Pure: no I/O. The decoder treats its input as hostile: lengths are checked before anything is
 * allocated, kinds and reserved bytes are checked, JSON bodies must be objects.
 */
import { ferryError } from '../errors.js';

export const RELAY_VERSION = 1;
export const RELAY_HEADER_BYTES = 8;
export const RELAY_KIND = { HELLO: 1, WELCOME: 2, RECORD: 3, BYE: 4 } as const;
export type RelayKind = (typeof RELAY_KIND)[keyof typeof RELAY_KIND];
/** Largest JSON body (HELLO, WELCOME, BYE). */
const MAX_JSON_BYTES = 4096;

export type RelayFrame =
  | { kind: 1 | 2 | 4; json: Record<string, unknown> }
  | { kind: 3; gap: number; payload: Buffer };

/** A JSON frame (HELLO, WELCOME, BYE). */
export function encodeRelayJson(kind: 1 | 2 | 4, value: Record<string, unknown>): Buffer {
  const body = Buffer.from(JSON.stringify(value));
  const out = Buffer.allocUnsafe(RELAY_HEADER_BYTES + body.length);
  writeRelayHeader(out, 0, kind, body.length);
  body.copy(out, RELAY_HEADER_BYTES);
  return out;
}

/** Bytes a RECORD frame with an `n`-byte payload takes. */
export function relayRecordBytes(n: number): number {
  return RELAY_HEADER_BYTES + 4 + n;
}

/** Writes a RECORD frame's header and gap at `at` of `out`; the payload goes at `at + 12`. */
export function writeRelayRecordHeader(out: Buffer, at: number, payloadBytes: number, gap: number): void {
  writeRelayHeader(out, at, RELAY_KIND.RECORD, 4 + payloadBytes);
  out.writeUInt32LE(gap >>> 0, at + RELAY_HEADER_BYTES);
}

function writeRelayHeader(out: Buffer, at: number, kind: RelayKind, bodyBytes: number): void {
  out.writeUInt32LE(bodyBytes, at);
  out.writeUInt32LE(kind, at + 4);
}

/** Parses relay frames from a byte stream, whatever the chunking. */
export class RelayDecoder {
  readonly #maxPayload: number;
  #buf: Buffer = Buffer.alloc(0);

  /** `maxPayload`: the largest RECORD payload accepted (a longer one is malformed). */
  constructor(maxPayload: number) {
    this.#maxPayload = maxPayload;
  }

  /** Bytes held of a frame not yet complete. */
  get pending(): number {
    return this.#buf.length;
  }

  /** Takes `chunk` and returns every frame now complete. Throws ERR_FERRY_PROTO_MALFORMED. */
  push(chunk: Buffer): RelayFrame[] {
    const buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const out: RelayFrame[] = [];
    let off = 0;
    while (buf.length - off >= RELAY_HEADER_BYTES) {
      const len = buf.readUInt32LE(off);
      const word = buf.readUInt32LE(off + 4);
      const kind = word & 0xff;
      if (word >>> 8 !== 0) throw malformed(`reserved bytes 0x${(word >>> 8).toString(16)}`);
      if (kind === RELAY_KIND.RECORD) {
        if (len < 4 || len - 4 > this.#maxPayload) throw malformed(`a RECORD of ${len} bytes`);
      } else if (kind === RELAY_KIND.HELLO || kind === RELAY_KIND.WELCOME || kind === RELAY_KIND.BYE) {
        if (len > MAX_JSON_BYTES) throw malformed(`a kind ${kind} frame of ${len} bytes`);
      } else {
        throw malformed(`kind ${kind}`);
      }
      if (buf.length - off - RELAY_HEADER_BYTES < len) break;
      const start = off + RELAY_HEADER_BYTES;
      if (kind === RELAY_KIND.RECORD) {
        // A view of the chunk (no copy): use it before the next push, or copy it.
        out.push({ kind, gap: buf.readUInt32LE(start), payload: buf.subarray(start + 4, start + len) });
      } else {
        out.push({ kind, json: parseJson(buf.subarray(start, start + len)) });
      }
      off = start + len;
    }
    this.#buf = off === buf.length ? Buffer.alloc(0) : Buffer.from(buf.subarray(off));
    return out;
  }
}

function parseJson(bytes: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw malformed('a body that is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw malformed('a JSON body that is not an object');
  return v as Record<string, unknown>;
}

function malformed(what: string) {
  return ferryError('ERR_FERRY_PROTO_MALFORMED', `topic relay: ${what}`);
}
