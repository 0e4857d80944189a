/**
 * A topic member in its own process: `sub NAME N` counts N messages and reports
 * { got, inOrder, dropped }; `pub NAME N` publishes N messages { i } and reports { sent }, then
 * waits to be killed. Reports { ready } once subscribed or publishing.
 */
import { publish, subscribe } from '@ferry/sdk/messages';

const [role, name, count] = process.argv.slice(2);
const n = Number(count ?? 1);
const send = (m: Record<string, unknown>) => process.send?.(m);

if (role === 'sub') {
  const sub = await subscribe(name ?? '');
  send({ ready: true });
  let got = 0;
  let inOrder = true;
  for await (const v of sub) {
    if ((v as { i: number }).i !== got) inOrder = false;
    if (++got === n) break;
  }
  send({ got, inOrder, dropped: sub.dropped });
} else if (role === 'pub') {
  const pub = await publish(name ?? '');
  send({ ready: true });
  process.on('message', () => {
    for (let i = 0; i < n; i++) pub.send({ i });
    send({ sent: n });
  });
}
