/** An ordinary ws echo server (no Ferry in it): `node ws-server.js PORT`. */
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2]);
const wss = new WebSocketServer({ port, host: '127.0.0.1' }, () => console.log(`listening ${port}`));
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
