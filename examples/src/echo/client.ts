/**
 * Echo client on the Ferry SDK: sends lines (or argv text) and prints what comes back.
 *   node examples/dist/echo/client.js [uri] [text...]
 */
import { connect } from '@ferry/sdk';

const uri = process.argv[2] ?? 'tcp://127.0.0.1:7000';
const text = process.argv.slice(3).join(' ') || 'hello from ferry';

// snippet:echo-client {
const socket = connect(uri, () => {
  console.log(`connected to ${socket.remoteAddress}:${socket.remotePort} over '${socket.transport}'`);
  socket.end(text);
});
let reply = '';
socket.setEncoding('utf8');
socket.on('data', (chunk: string) => {
  reply += chunk;
});
socket.on('end', () => console.log(`echoed: ${reply}`));
// }
socket.on('error', (err: Error & { code?: string }) => {
  console.error(`echo client: ${err.code ?? ''} ${err.message}`);
  process.exitCode = 1;
});
