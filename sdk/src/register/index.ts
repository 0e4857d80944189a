/**
 * @ferry/sdk/register: transparent mode for unmodified apps.
 *   FERRY_INTERCEPT=127.0.0.1:8080,localhost:* node --import @ferry/sdk/register app.js
 *   (or NODE_OPTIONS='--import @ferry/sdk/register')
 * Settings: config.ts. Nothing is intercepted (and a warning says so) when no address is named.
 * ferryd itself never intercepts: its kernel listeners and connections are what carry the
 * intercepted apps' traffic to plain programs.
 */
import { realpathSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { configFromEnv } from './config.js';
import { install } from './install.js';

/** True in ferryd (`ferry daemon`), which may inherit NODE_OPTIONS from a shared environment. */
function isFerryd(): boolean {
  const main = process.argv[1];
  if (!main || process.argv[2] !== 'daemon') return false;
  try {
    const real = realpathSync(main);
    return basename(real) === 'ferry.js' && basename(dirname(real)) === 'bin';
  } catch {
    return false;
  }
}

if (!isFerryd()) {
  const config = configFromEnv();
  if (config.rules.empty) {
    process.emitWarning(
      'FERRY_INTERCEPT names no address (e.g. 127.0.0.1:8080,localhost:*): nothing goes through Ferry',
      { code: 'FERRY_INTERCEPT_EMPTY' },
    );
  } else {
    // Interrupt unless FERRY_MODE says otherwise: an app that did not ask for Ferry should not
    // start spinning a core, and on a loaded machine spinning peers starve each other
    // (BENCHMARKS.md, "Unmodified HTTP apps").
    install(config, process.env['FERRY_MODE'] ? {} : { mode: 'interrupt' });
  }
}
