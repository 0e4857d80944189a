/** `ferry daemon --demo`: once ferryd is up, runs a small cut-through echo in a child process. */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export async function runDemo(socket: string, log: (line: string) => void): Promise<void> {
  const script = fileURLToPath(new URL('./demo-app.js', import.meta.url));
  const child = fork(script, [], { env: { ...process.env, FERRY_SOCKET: socket }, stdio: 'pipe' });
  child.stdout?.on('data', (d: Buffer) => {
    for (const line of d.toString().trimEnd().split('\n')) log(`demo: ${line}`);
  });
  child.stderr?.on('data', (d: Buffer) => log(`demo error: ${d.toString().trimEnd()}`));
  await new Promise<void>((resolve) => child.once('exit', () => resolve()));
  log('demo finished; ferryd keeps running (Ctrl-C to stop). Try: npx ferry show stats');
}
