/**
 * Transparent mode's settings, from the environment or a JSON file:
 *   FERRY_INTERCEPT           the address list (rules.ts)
 *   FERRY_INTERCEPT_FILE      a JSON file: { "intercept": ["127.0.0.1:8080", ...] or "a,b",
 *                             "fallback": "kernel" | "fail" }; its list adds to FERRY_INTERCEPT
 *   FERRY_INTERCEPT_FALLBACK  what to do when ferryd cannot be reached: 'kernel' (default: use the
 *                             kernel, warn once) or 'fail' (the connect or listen fails with
 *                             ERR_FERRY_DAEMON_UNREACHABLE)
 * ferryd itself (FERRY_SOCKET, FERRY_NAMESPACE, FERRY_TOKEN, FERRY_MODE) is found as by the SDK.
 */
import { readFileSync } from 'node:fs';
import { ferryError } from '../errors.js';
import { InterceptRules, parseRules } from './rules.js';

export type Fallback = 'kernel' | 'fail';

export interface RegisterConfig {
  rules: InterceptRules;
  fallback: Fallback;
}

function checkFallback(v: unknown, where: string): Fallback {
  if (v === 'kernel' || v === 'fail') return v;
  throw ferryError('ERR_INVALID_ARG_VALUE', `${where} must be 'kernel' or 'fail', got '${String(v)}'`);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env): RegisterConfig {
  let text = env['FERRY_INTERCEPT'] ?? '';
  let fallback: Fallback = 'kernel';
  const file = env['FERRY_INTERCEPT_FILE'];
  if (file) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `FERRY_INTERCEPT_FILE ${file}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw ferryError('ERR_INVALID_ARG_VALUE', `FERRY_INTERCEPT_FILE ${file}: expected a JSON object`);
    }
    const o = parsed as Record<string, unknown>;
    const list = o['intercept'];
    if (Array.isArray(list) && list.every((x) => typeof x === 'string')) text += `,${list.join(',')}`;
    else if (typeof list === 'string') text += `,${list}`;
    else if (list !== undefined) {
      throw ferryError(
        'ERR_INVALID_ARG_VALUE',
        `FERRY_INTERCEPT_FILE ${file}: "intercept" must be a list of strings`,
      );
    }
    if (o['fallback'] !== undefined) fallback = checkFallback(o['fallback'], `${file}: "fallback"`);
  }
  const envFallback = env['FERRY_INTERCEPT_FALLBACK'];
  if (envFallback) fallback = checkFallback(envFallback, 'FERRY_INTERCEPT_FALLBACK');
  return { rules: new InterceptRules(parseRules(text)), fallback };
}
