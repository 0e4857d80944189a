// What integration tests need of the peers they fork: their IPC messages one at a time, in order
// (those that came before anyone asked are kept), and a kill -9 that resolves once the peer is gone.
import type { ChildProcess } from 'node:child_process';

export type PeerMessage = Record<string, unknown>;

/**
 * The next message `proc` sends, each call the one after; `bound` may wrap the wait for one not yet
 * sent (a timeout that says which peer hung).
 */
export function childInbox(
  proc: ChildProcess,
  bound: (waiting: Promise<PeerMessage>) => Promise<PeerMessage> = (p) => p,
): () => Promise<PeerMessage> {
  const inbox: PeerMessage[] = [];
  const waiters: ((m: PeerMessage) => void)[] = [];
  proc.on('message', (m: PeerMessage) => {
    const w = waiters.shift();
    if (w) w(m);
    else inbox.push(m);
  });
  return () => {
    const m = inbox.shift();
    if (m) return Promise.resolve(m);
    return bound(new Promise<PeerMessage>((r) => waiters.push(r)));
  };
}

/** SIGKILL to `proc`; resolves once it has exited (at once if it had). */
export function kill9(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}
