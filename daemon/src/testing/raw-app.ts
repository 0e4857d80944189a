/**
 * An app speaking the control protocol by hand (no SDK), for tests of what ferryd does with apps
 * that misbehave: it holds exactly the fds a real app holds, and can be told to do anything.
 */
import assert from 'node:assert/strict';
import {
  type CtrlMessage,
  close,
  connectUnix,
  decodeCtrl,
  encodeCtrl,
  FEATURE,
  PROTO_MIN_VERSION,
  PROTO_VERSION,
  pipe2,
  recvMsg,
  ring,
  sendMsg,
  unixSocket,
} from '@ferry/sdk/internal';

export interface RawApp {
  send(msg: CtrlMessage): void;
  /** Waits (bounded) for the next message; its fds go to `keep`, or are closed. */
  next(keep?: number[]): Promise<CtrlMessage>;
}

/**
 * Attaches to ferryd at `socket` by hand. Every fd it opens goes to `fds` (the caller closes them
 * when done; their closing is how ferryd learns the app is gone).
 */
export async function rawApp(socket: string, fds: number[]): Promise<RawApp> {
  const ch = unixSocket('seqpacket', { nonblock: true });
  fds.push(ch);
  connectUnix(ch, socket);
  const wake: number[] = [];
  const next = async (keep?: number[]): Promise<CtrlMessage> => {
    const buf = new Uint8Array(65536);
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      const r = recvMsg(ch, buf, 4);
      if (r) {
        for (const f of r.fds) {
          if (keep) keep.push(f);
          else close(f);
        }
        if (r.bytes === 0) throw new Error('ferryd closed the channel');
        return decodeCtrl(buf.slice(0, r.bytes));
      }
      await new Promise((res) => setTimeout(res, 5));
    }
    throw new Error('no message from ferryd');
  };
  const send = (msg: CtrlMessage) => {
    sendMsg(ch, encodeCtrl(msg));
    // ferryd's loop cannot watch the SEQPACKET socket: ring its wake pipe after each message.
    for (const w of wake) ring(w);
  };
  const [wakeR, wakeW] = pipe2({ nonblock: true });
  const [bellR, bellW] = pipe2({ nonblock: true });
  fds.push(wakeR, bellR);
  sendMsg(
    ch,
    encodeCtrl({
      t: 'hello',
      id: 1,
      version: PROTO_VERSION,
      minVersion: PROTO_MIN_VERSION,
      features: FEATURE.CUT_THROUGH | FEATURE.HALF_CLOSE | FEATURE.EVENT_QUEUE | FEATURE.DATAGRAM,
      name: 'raw',
      namespace: 'default',
      token: '',
      fds: ['wake', 'doorbell'],
    }),
    [wakeW, bellW],
  );
  close(wakeW);
  close(bellW);
  // ferryd's wake pipe: held for as long as we live (its EOF would mean we died).
  assert.equal((await next(wake)).t, 'hello-reply');
  fds.push(...wake);
  return { send, next };
}
