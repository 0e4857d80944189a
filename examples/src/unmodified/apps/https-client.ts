/**
 * An ordinary node:https client (no Ferry in it): `node https-client.js URL CA`. Verifies the
 * server against CA, sends a few requests on one keep-alive connection, prints what came back.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';

const [url, ca] = process.argv.slice(2) as [string, string];
const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: readFileSync(ca) });
const one = (path: string, body?: Buffer) =>
  new Promise<string>((resolve, reject) => {
    const req = https.request(`${url}${path}`, { agent, method: body ? 'POST' : 'GET' }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        text += d;
      });
      res.on('end', () =>
        resolve(
          `${res.statusCode} ${text} authorized ${(req.socket as { authorized?: boolean }).authorized}`,
        ),
      );
    });
    req.on('error', reject);
    req.end(body);
  });
const out = [await one('/a'), await one('/b', Buffer.alloc(300_000, 1)), await one('/c')];
agent.destroy();
console.log(JSON.stringify(out));
