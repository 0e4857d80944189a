/**
 * Builds ferryd's configuration: built-in defaults, then the file (`--config FILE` or
 * $FERRY_CONFIG), then $FERRY_SOCKET, then command-line flags. Throws ConfigError listing every
 * problem; nothing starts on a configuration with one.
 */
import { readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { crossCheck, type DaemonConfig } from '../config.js';
import { defaultOptionValues } from './options.js';
import { builtInSocketPath, configFileOf } from './socket-path.js';
import { validateFile } from './validate.js';

export class ConfigError extends Error {
  readonly errors: readonly string[];
  constructor(source: string, errors: readonly string[]) {
    super(`invalid configuration (${source}):\n${errors.map((e) => `  ${e}`).join('\n')}`);
    this.name = 'ConfigError';
    this.errors = errors;
  }
}

export interface LoadOptions {
  /** Configuration file; undefined: $FERRY_CONFIG, else none (built-in defaults). */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  /** Values from command-line flags: they win over everything else. */
  overrides?: Partial<DaemonConfig>;
}

export { configFileOf, socketOf } from './socket-path.js';

export function loadConfig(opts: LoadOptions = {}): DaemonConfig {
  const env = opts.env ?? process.env;
  const file = configFileOf(opts);
  const config: DaemonConfig = {
    ...defaultOptionValues(),
    socket: builtInSocketPath(env),
    namespaces: {},
    rules: [],
    metrics: { listen: null },
  };
  const source = file ?? 'built-in defaults';
  if (file) {
    const doc = readJson(file);
    const { values, errors } = validateFile(doc, { env, baseDir: dirname(file) });
    if (errors.length > 0) throw new ConfigError(file, errors);
    Object.assign(config, values);
  }
  if (env['FERRY_SOCKET']) config.socket = env['FERRY_SOCKET'];
  // Checked with the rest by validateConfig (an unknown level is named there).
  if (env['FERRY_LOG_LEVEL']) config.logLevel = env['FERRY_LOG_LEVEL'] as DaemonConfig['logLevel'];
  if (env['FERRY_LOG_FORMAT']) config.logFormat = env['FERRY_LOG_FORMAT'] as DaemonConfig['logFormat'];
  Object.assign(config, opts.overrides ?? {});
  const errors = crossCheck(config);
  if (errors.length > 0) throw new ConfigError(source, errors);
  return config;
}

function readJson(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [
      `cannot read the file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    ]);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    // Node's message may quote the text around the error, which may be a token: keep only where.
    const pos = /position (\d+)/.exec((err as Error).message);
    let where = '';
    if (pos?.[1]) {
      const before = text.slice(0, Number(pos[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${before.length - before.lastIndexOf('\n')}`;
    }
    throw new ConfigError(file, [`not valid JSON${where}`]);
  }
}
