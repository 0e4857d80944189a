// Per-queue counters, cumulative over an interface's life (across reconnects).

export interface MemifQueueStats {
  /** Packets received / queued for transmit. */
  packets: number;
  /** Bytes of those packets. */
  bytes: number;
  /**
   * tx: packets `send` could not queue (ring full). rx: always 0 (the receive path never drops:
   * unread packets stay in the ring, and a bad descriptor takes the link down instead).
   */
  drops: number;
  /** tx: calls that found the ring full (or too full for the next packet). */
  ringFull: number;
  /** rx: doorbell wake-ups (interrupt / adaptive mode). tx: doorbells rung for the peer. */
  wakeups: number;
}

export interface MemifStats {
  rx: MemifQueueStats[];
  tx: MemifQueueStats[];
}

export function newQueueStats(): MemifQueueStats {
  return { packets: 0, bytes: 0, drops: 0, ringFull: 0, wakeups: 0 };
}
