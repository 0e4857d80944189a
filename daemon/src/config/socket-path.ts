/**
 * Where ferryd's control socket and configuration file are, without loading the configuration
 * checker: `ferry show` and `ferry health` (container healthchecks) start fast with only this.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface ConfigLocation {
  /** Configuration file; undefined: $FERRY_CONFIG, else none (built-in defaults). */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

/** The socket path when neither the file, FERRY_SOCKET nor a flag names one. */
export function builtInSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env['XDG_RUNTIME_DIR'];
  return runtime ? join(runtime, 'ferry', 'ferryd.sock') : '/run/ferry/ferryd.sock';
}

export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['FERRY_SOCKET'];
  if (fromEnv) return fromEnv;
  return builtInSocketPath(env);
}

/** The file a load reads: the flag, else $FERRY_CONFIG, else none. */
export function configFileOf(opts: ConfigLocation): string | null {
  const env = opts.env ?? process.env;
  const f = opts.file ?? env['FERRY_CONFIG'];
  return f ? resolve(f) : null;
}

/**
 * The socket a client (`ferry show`, `ferry health`) should ask: FERRY_SOCKET, else the file's
 * `socket`, else the built-in path. Reads only that key: a client need not hold the tokens the
 * file's `tokenEnv` and `tokenFile` name, and a file ferryd would refuse still names its socket.
 */
export function socketOf(opts: ConfigLocation): string {
  const env = opts.env ?? process.env;
  if (env['FERRY_SOCKET']) return env['FERRY_SOCKET'];
  const file = configFileOf(opts);
  if (file) {
    try {
      const doc = JSON.parse(readFileSync(file, 'utf8')) as { socket?: unknown };
      if (typeof doc.socket === 'string' && doc.socket !== '') return doc.socket;
    } catch {}
  }
  return builtInSocketPath(env);
}
