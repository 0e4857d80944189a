/**
 * A Buffer and a DataView over a whole fifo ring, made once for a channel's life: its frame reader
 * reads, and its frame writer writes, through them at offsets in the ring, so that no view, Buffer
 * or DataView is made per pull or per reservation (and the decoders' and encoder's per-source state
 * stays valid from one to the next).
 */
export class RingAccess {
  readonly buf: Buffer;
  readonly view: DataView;

  constructor(ring: Uint8Array) {
    this.buf = Buffer.from(ring.buffer, ring.byteOffset, ring.length);
    this.view = new DataView(ring.buffer, ring.byteOffset, ring.length);
  }

  /** `buf` when `v` lies in the ring (it then starts at buf[v.byteOffset - buf.byteOffset]), else null. */
  of(v: Uint8Array): Buffer | null {
    const ring = this.buf;
    return v.buffer === ring.buffer &&
      v.byteOffset >= ring.byteOffset &&
      v.byteOffset + v.length <= ring.byteOffset + ring.length
      ? ring
      : null;
  }
}
