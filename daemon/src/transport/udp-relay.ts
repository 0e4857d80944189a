/**
 * One datagram endpoint's relay in ferryd: frames (sdk proto/datagram-frame.ts) between the app's
 * fifo pair and a kernel UDP socket (node:dgram), both ways.
 *
 * fifo -> socket: each frame's payload is sent from views of the fifo (no copy in ferryd) and the
 * frame is dropped from the fifo only once node:dgram's callback says the kernel took it; frames
 * complete in order. socket -> fifo: each datagram is enqueued whole (header + payload, one tail
 * store) or, when the fifo lacks room, dropped and counted, as a kernel drops datagrams when a
 * socket's receive buffer is full. A frame the app wrote that breaks the framing fails the relay.
 */
import type { RemoteInfo, Socket } from 'node:dgram';
import {
  DGRAM_HEADER_BYTES,
  type DgramHeader,
  decodeDgramHeader,
  encodeDgramHeader,
  type FerryError,
  FifoConsumer,
  type FifoPairRef,
  FifoProducer,
  ferryError,
} from '@ferry/sdk/internal';
import type { SessionEnd } from '../session/session.js';
import type { DaemonSegment, SlotPump } from './daemon-end.js';
import { TurnNotice } from './turn-notice.js';

/** Frames handed to the kernel per call before yielding to the loop. */
const FRAMES_PER_TURN = 256;

export interface UdpRelayHooks {
  /** The app broke the framing or its fifos: it sees a reset on its rx fifo. */
  onFailed(err: FerryError): void;
  /** ferryd no longer touches the fifos and the kernel socket is closed. */
  onDone(): void;
  /** Whether a datagram may go to this destination (ferryd's session rules); absent: all may. */
  allow?(address: string, port: number): boolean;
}

interface InFlight {
  bytes: number;
  done: boolean;
}

export class UdpRelay implements SlotPump, SessionEnd {
  readonly socket: Socket;
  readonly slot: number;
  /** Payload bytes and datagrams moved: app -> kernel (confirmed) and kernel -> app. */
  bytesOut = 0;
  bytesIn = 0;
  datagramsOut = 0;
  datagramsIn = 0;
  /** Datagrams from the kernel dropped for want of room in the app's rx fifo. */
  dropsIn = 0;
  /** Datagrams the kernel refused to send (unreachable, bad address). */
  sendErrors = 0;
  /** Datagrams dropped because ferryd's rules deny their destination (also in sendErrors). */
  deniedOut = 0;
  #seg: DaemonSegment;
  /** The fifo the app writes (ferryd reads) and the one ferryd writes (the app reads). */
  #rx: FifoConsumer;
  #tx: FifoProducer;
  #hooks: UdpRelayHooks;
  #headerOut = new Uint8Array(DGRAM_HEADER_BYTES);
  #headerIn = new Uint8Array(DGRAM_HEADER_BYTES);
  #flight: InFlight[] = [];
  #inflight = 0;
  #outScheduled = false;
  readonly #notice: TurnNotice;
  #failed = false;
  #done = false;

  /** `ref` is the fifo pair as the daemon's side sees it (tx = what ferryd writes). */
  constructor(socket: Socket, seg: DaemonSegment, ref: FifoPairRef, hooks: UdpRelayHooks) {
    this.socket = socket;
    this.slot = ref.slot;
    this.#seg = seg;
    this.#rx = new FifoConsumer(seg.buffer, ref.rxOffset, ref.rxSize);
    this.#tx = new FifoProducer(seg.buffer, ref.txOffset, ref.txSize);
    this.#notice = new TurnNotice(seg, ref.slot, this.#tx, this.#rx, () => !this.#done && !this.#failed);
    this.#hooks = hooks;
  }

  get done(): boolean {
    return this.#done;
  }

  start(): void {
    this.#seg.add(this.slot, this);
    this.socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => this.#onMessage(msg, rinfo));
    // ICMP errors and the like: UDP reports them to no one in particular; count, keep serving.
    this.socket.on('error', () => {
      this.sendErrors++;
    });
    this.#pumpOut();
  }

  /** The app closed the endpoint: stop at once (unsent datagrams are lost, as on a closed socket). */
  close(): void {
    this.#finish();
  }

  reset(): void {
    this.#finish();
  }

  abort(): void {
    this.#finish();
  }

  onQueueFailed(err: FerryError): void {
    this.#fail(err);
  }

  onSlotEvent(): void {
    if (this.#done || this.#failed) return;
    const err = this.#rx.error ?? this.#tx.error;
    if (err) {
      this.#fail(err);
      return;
    }
    if (this.#rx.peerReset) {
      this.#finish();
      return;
    }
    this.#pumpOut();
  }

  // ---- kernel -> fifo ----

  #onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.#done || this.#failed || this.#tx.peerClosed) return;
    if (msg.length + DGRAM_HEADER_BYTES > this.#tx.sizeBytes) {
      this.dropsIn++;
      return;
    }
    const family = rinfo.family === 'IPv6' ? 'IPv6' : 'IPv4';
    try {
      encodeDgramHeader(this.#headerOut, msg.length, { address: rinfo.address, port: rinfo.port, family });
    } catch {
      this.dropsIn++;
      return;
    }
    const n = this.#tx.enqueueAtomic([this.#headerOut, msg]);
    if (n < 0) {
      this.#fail(this.#tx.error ?? ferryError('ERR_FERRY_FIFO_CORRUPT', 'relay rx fifo refused data'));
      return;
    }
    if (n === 0) {
      this.dropsIn++;
      return;
    }
    this.datagramsIn++;
    this.bytesIn += msg.length;
    this.#notice.data();
  }

  // ---- fifo -> kernel ----

  #pumpOut(): void {
    for (let i = 0; i < FRAMES_PER_TURN; i++) {
      if (this.#done || this.#failed) return;
      const fresh = this.#rx.readable() - this.#inflight;
      if (fresh > 0) {
        if (!this.#sendFrame(fresh)) return;
        continue;
      }
      // Send callbacks continue from here (readable() still counts the frames in flight).
      if (this.#inflight > 0) return;
      if (this.#rx.error) {
        this.#fail(this.#rx.error);
        return;
      }
      if (!this.#rx.armData()) return;
    }
    if (this.#outScheduled) return;
    this.#outScheduled = true;
    setImmediate(() => {
      this.#outScheduled = false;
      this.#pumpOut();
    });
  }

  /** Hands the next frame (the first `fresh` bytes past those in flight) to the kernel. */
  #sendFrame(fresh: number): boolean {
    const skip = this.#inflight;
    let header: DgramHeader;
    try {
      if (fresh < DGRAM_HEADER_BYTES || this.#rx.peek(this.#headerIn, skip) !== DGRAM_HEADER_BYTES) {
        throw ferryError('ERR_FERRY_FIFO_CORRUPT', `partial datagram header (${fresh} bytes)`);
      }
      header = decodeDgramHeader(this.#headerIn, this.#rx.sizeBytes - DGRAM_HEADER_BYTES);
      if (fresh < DGRAM_HEADER_BYTES + header.length) {
        throw ferryError('ERR_FERRY_FIFO_CORRUPT', `datagram of ${header.length} bytes, ${fresh} readable`);
      }
    } catch (err) {
      this.#fail(err as FerryError);
      return false;
    }
    const entry: InFlight = { bytes: DGRAM_HEADER_BYTES + header.length, done: false };
    this.#flight.push(entry);
    this.#inflight += entry.bytes;
    const peer = header.peer;
    if (!peer) {
      // A relay frame must name its destination: the datagram cannot go anywhere.
      this.#sent(entry, ferryError('EINVAL', 'datagram without a destination'), false);
      return true;
    }
    if (this.#hooks.allow && !this.#hooks.allow(peer.address, peer.port)) {
      this.deniedOut++;
      this.#sent(entry, ferryError('ERR_FERRY_DENIED', `udp://${peer.address}:${peer.port}`), false);
      return true;
    }
    const pieces = this.#payloadViews(skip + DGRAM_HEADER_BYTES, header.length);
    try {
      this.socket.send(pieces, peer.port, peer.address, (err) => this.#sent(entry, err, true));
    } catch (err) {
      // Refused before it reached the kernel (port 0, a family this socket cannot reach).
      this.#sent(entry, err as Error, false);
    }
    return true;
  }

  /** Views of `n` readable bytes starting `skip` bytes past the head (two when they wrap). */
  #payloadViews(skip: number, n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    let toSkip = skip;
    let left = n;
    for (const v of this.#rx.readableViews()) {
      if (left === 0) break;
      if (toSkip >= v.length) {
        toSkip -= v.length;
        continue;
      }
      const piece = v.subarray(toSkip, Math.min(v.length, toSkip + left));
      toSkip = 0;
      left -= piece.length;
      out.push(piece);
    }
    return out.length > 0 ? out : [new Uint8Array(0)];
  }

  /** A frame left ferryd (or failed): drop every completed frame at the head, in order. */
  #sent(entry: InFlight, err: Error | null | undefined, async: boolean): void {
    if (this.#done || this.#failed) return;
    entry.done = true;
    if (err) this.sendErrors++;
    else {
      this.datagramsOut++;
      this.bytesOut += entry.bytes - DGRAM_HEADER_BYTES;
    }
    let freed = 0;
    while (this.#flight.length > 0 && (this.#flight[0] as InFlight).done) {
      const head = this.#flight.shift() as InFlight;
      freed += head.bytes;
    }
    if (freed === 0) return;
    this.#rx.drop(freed);
    this.#inflight -= freed;
    this.#notice.space();
    if (async) this.#pumpOut();
  }

  // ---- teardown ----

  #fail(err: FerryError): void {
    if (this.#done || this.#failed) return;
    this.#failed = true;
    this.#tx.reset();
    this.#seg.post(this.slot);
    this.#hooks.onFailed(err);
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#flight = [];
    this.#seg.remove(this.slot, this);
    try {
      this.socket.close();
    } catch {
      // Already closed.
    }
    this.#hooks.onDone();
  }
}
