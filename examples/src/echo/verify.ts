/**
 * Checks an echo server end to end: sends random bytes, reads the echo, compares digests. Prints
 * one JSON line with the outcome (and a first line once connected); exits 1 on any failure.
 *   node examples/dist/echo/verify.js [uri] [--bytes N] [--chunk B] [--pause-ms MS] [--progress-file F]
 * Made for deployments (containers, two hosts): `--pause-ms` stretches a transfer so that
 * something can happen to it while it runs, and `--progress-file` says how far it got (the count
 * of echoed bytes, rewritten after every MiB).
 */
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { connect } from '@ferry/sdk';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    bytes: { type: 'string', default: String(16 * 1024 * 1024) },
    chunk: { type: 'string', default: String(64 * 1024) },
    'pause-ms': { type: 'string', default: '0' },
    'progress-file': { type: 'string' },
  },
});
const uri = positionals[0] ?? 'tcp://127.0.0.1:7000';
const total = Number(values.bytes);
const chunkSize = Number(values.chunk);
const pauseMs = Number(values['pause-ms']);
const progressFile = values['progress-file'];
let reported = 0;

const sentHash = createHash('sha256');
const recvHash = createHash('sha256');
let sent = 0;
let received = 0;
let failed = false;
const t0 = performance.now();

const socket = connect(uri);
socket.on('connect', () => {
  console.log(JSON.stringify({ connected: true, transport: socket.transport, uri }));
  void send();
});
socket.on('data', (chunk: Buffer) => {
  received += chunk.length;
  recvHash.update(chunk);
  if (progressFile && received - reported >= 1024 * 1024) {
    reported = received;
    writeFileSync(progressFile, String(received));
  }
});
socket.on('end', () => {
  if (failed) return;
  const ms = performance.now() - t0;
  const want = sentHash.digest('hex');
  const got = recvHash.digest('hex');
  const ok = received === total && sent === total && want === got;
  console.log(
    JSON.stringify({
      ok,
      transport: socket.transport,
      bytes: received,
      sent,
      sha256: got,
      ...(ok ? {} : { expectedSha256: want }),
      ms: Math.round(ms),
      mbPerSec: Math.round((total / 1e6 / (ms / 1000)) * 10) / 10,
    }),
  );
  process.exitCode = ok ? 0 : 1;
});
socket.on('error', (err: Error & { code?: string }) => {
  failed = true;
  console.log(JSON.stringify({ ok: false, code: err.code ?? null, message: err.message, sent, received }));
  process.exitCode = 1;
});

async function send(): Promise<void> {
  while (sent < total && !failed) {
    const chunk = randomBytes(Math.min(chunkSize, total - sent));
    sentHash.update(chunk);
    sent += chunk.length;
    if (!socket.write(chunk)) await drainOrClose();
    if (pauseMs > 0) await sleep(pauseMs);
  }
  if (!failed) socket.end();
}

function drainOrClose(): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}
