// Child process for sys/ tests: talks to the parent over a socket it inherits as fd 4 (stdio[4]).
//
// Modes (argv[2]):
//   send-memfd <text>   create a memfd holding <text>, send it with one data byte, wait for EOF
//   echo-memfd          receive one memfd, map it, send its text back, exit
//   send-fds <n>        send one message carrying n fresh pipe fds, wait for EOF
//   connect <path>      connect a SEQPACKET socket to <path>, send 'hi', wait for the parent to close it
// Every wait is a bounded poll (non-blocking calls and short sleeps), so a broken parent cannot
// leave this process behind.

import { close, pipe2, read, setNonBlocking, write } from '../fd.js';
import { Mapping } from '../mapping.js';
import { fstatSize, ftruncate, memfdCreate } from '../memfd.js';
import { recvMsg, sendMsg } from '../msg.js';
import { connectUnix, unixSocket } from '../unix-socket.js';

const PARENT_FD = 4;
const LIFETIME_MS = 10_000;

const POLL_MS = 2;

/** Polls a non-blocking fd until fn returns something other than undefined, for LIFETIME_MS at most. */
async function poll<T>(fn: () => T | undefined): Promise<T> {
  for (let i = 0; i < LIFETIME_MS / POLL_MS; i++) {
    const r = fn();
    if (r !== undefined) return r;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
  process.exit(3);
}

async function waitForEof(fd: number): Promise<void> {
  const buf = new Uint8Array(64);
  await poll(() => {
    const r = recvMsg(fd, buf, 0);
    return r !== null && r.bytes === 0 ? true : undefined;
  });
}

setNonBlocking(PARENT_FD, true);

const [mode, arg = ''] = process.argv.slice(2);
switch (mode) {
  case 'send-memfd': {
    const text = Buffer.from(arg);
    const memfd = memfdCreate('fd-peer');
    ftruncate(memfd, text.length);
    write(memfd, text);
    sendMsg(PARENT_FD, new Uint8Array([1]), [memfd]);
    close(memfd);
    process.send?.('sent');
    await waitForEof(PARENT_FD);
    break;
  }
  case 'echo-memfd': {
    const buf = new Uint8Array(16);
    const r = await poll(() => recvMsg(PARENT_FD, buf, 1) ?? undefined);
    const fd = r.fds[0];
    if (fd === undefined) process.exit(2);
    const size = fstatSize(fd);
    const m = Mapping.map(fd, size, { readOnly: true });
    close(fd);
    sendMsg(PARENT_FD, new Uint8Array(m.buffer).slice());
    m.release();
    break;
  }
  case 'send-fds': {
    const fds: number[] = [];
    for (let i = 0; i < Number(arg); i++) fds.push(...pipe2());
    sendMsg(PARENT_FD, new Uint8Array([1]), fds.slice(0, Number(arg)));
    for (const f of fds) close(f);
    process.send?.('sent');
    await waitForEof(PARENT_FD);
    break;
  }
  case 'connect': {
    const s = unixSocket('seqpacket');
    connectUnix(s, arg);
    sendMsg(s, Buffer.from('hi'));
    setNonBlocking(s, true);
    const buf = new Uint8Array(8);
    await poll(() => (read(s, buf) === 0 ? true : undefined));
    close(s);
    break;
  }
  default:
    process.exit(2);
}
process.disconnect?.();
