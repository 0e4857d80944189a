/**
 * A message-channel app in its own process, for tests that kill one side: `server` answers
 * requests (never, for { hang: true }); `client <uri> <n>` sends n hanging requests. Reports to
 * the parent over IPC: { uri } once listening, { sent } once the requests are written.
 */
import { connectMessages, createMessageServer } from '@ferry/sdk/messages';

const [role, uri, count] = process.argv.slice(2);
const send = (m: Record<string, unknown>) => process.send?.(m);

if (role === 'server') {
  const server = createMessageServer({
    onRequest: (v) => ((v as { hang?: boolean } | null)?.hang ? new Promise(() => {}) : v),
  }).listen('tcp://127.0.0.1:0');
  await server.ready();
  send({ uri: server.uri });
} else if (role === 'client') {
  const ch = await connectMessages(uri ?? '');
  const n = Number(count ?? 1);
  for (let i = 0; i < n; i++) ch.request({ hang: true, i }, { timeoutMs: 0 }).catch(() => {});
  await ch.ready();
  send({ sent: n });
}
