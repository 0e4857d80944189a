/**
 * The perf wire protocol (VPP echo-test style): each connection starts with a 16-byte header,
 * magic 'FPRF', mode, and the byte count the server should expect.
 *   sink: the server reads `count` bytes, then answers 8 bytes (the count) and ends.
 *   echo: the server writes back every byte it reads, and ends when the client ends.
 */
export const PERF_MAGIC = 0x46505246;
export const PERF_HEADER_BYTES = 16;
export const PERF_MODE = { SINK: 1, ECHO: 2 } as const;
export type PerfMode = (typeof PERF_MODE)[keyof typeof PERF_MODE];

export function perfHeader(mode: PerfMode, count: number): Buffer {
  const b = Buffer.alloc(PERF_HEADER_BYTES);
  b.writeUInt32LE(PERF_MAGIC, 0);
  b.writeUInt32LE(mode, 4);
  b.writeBigUInt64LE(BigInt(count), 8);
  return b;
}

export function parsePerfHeader(b: Buffer): { mode: PerfMode; count: number } | null {
  if (b.length < PERF_HEADER_BYTES || b.readUInt32LE(0) !== PERF_MAGIC) return null;
  const mode = b.readUInt32LE(4);
  const count = Number(b.readBigUInt64LE(8));
  if ((mode !== PERF_MODE.SINK && mode !== PERF_MODE.ECHO) || !Number.isSafeInteger(count)) return null;
  return { mode: mode as PerfMode, count };
}
