/**
 * A child process for the ref/unref scenarios: does one thing with a target's module and prints
 * what it observes, one line per event, so the parent can see whether the process stayed alive.
 * argv: target name, mode, connect options as JSON (socket modes).
 */
import { type TargetName, target } from './targets.js';

const [name, mode, optsJson] = process.argv.slice(2);
const t = target(name as TargetName);
const say = (line: string) => process.stdout.write(`${line}\n`);
process.on('exit', () => say('exit'));

if (mode === 'socket-ref' || mode === 'socket-unref') {
  const s = t.client.connect(JSON.parse(optsJson ?? '{}'));
  s.on('connect', () => {
    if (mode === 'socket-unref') s.unref();
    say('connect');
  });
  for (const ev of ['end', 'close']) s.on(ev, () => say(ev));
  s.on('error', (e: { code?: string }) => say(`error(${e.code})`));
} else if (mode === 'server-unref') {
  const srv = t.server.createServer({});
  srv.listen(t.listenArg(), () => {
    srv.unref();
    say('listening');
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
