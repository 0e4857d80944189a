/**
 * Checks a parsed configuration file against the option table and the structured options, and
 * turns it into configuration values. Every problem is reported, each as `$.path: expected ...,
 * got ...`, so one run shows everything to fix. Tokens are resolved here (from the file, an
 * environment variable or a file) and only their hash is kept.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DaemonConfig, MetricsConfig, NamespaceConfig, Rule } from '../config.js';
import { parseListenAddress } from '../obs/listen-address.js';
import { ALL_OPTIONS, type OptionSpec, SCALAR_OPTIONS } from './options.js';
import { parseAddress, parseServicePattern } from './patterns.js';
import { hashToken } from './tokens.js';

export const NAMESPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RULE_KEYS = ['action', 'from', 'to', 'service', 'address', 'port', 'via', 'comment'];

export interface ValidateContext {
  env: NodeJS.ProcessEnv;
  /** Directory relative tokenFile paths start from (the configuration file's). */
  baseDir: string;
}

export interface Validated {
  values: Partial<DaemonConfig>;
  errors: string[];
}

const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

export function validateFile(doc: unknown, ctx: ValidateContext): Validated {
  const errors: string[] = [];
  const values: Record<string, unknown> = {};
  if (!isObject(doc)) return { values: {}, errors: [`$: expected an object, got ${show(doc)}`] };
  for (const [key, raw] of Object.entries(doc)) {
    if (key === '$schema' || key === 'comment') continue;
    if (!ALL_OPTIONS.includes(key)) {
      errors.push(`$.${key}: unknown option (known: ${ALL_OPTIONS.join(', ')})`);
      continue;
    }
    if (key === 'namespaces') values[key] = checkNamespaces(raw, ctx, errors);
    else if (key === 'rules') values[key] = checkRules(raw, errors);
    else if (key === 'metrics') values[key] = checkMetrics(raw, errors);
    else {
      const spec = SCALAR_OPTIONS[key as keyof typeof SCALAR_OPTIONS].spec as OptionSpec;
      const v = checkScalar(`$.${key}`, raw, spec, errors);
      if (v !== undefined) values[key] = v;
    }
  }
  return { values: values as Partial<DaemonConfig>, errors };
}

function checkScalar(path: string, v: unknown, spec: OptionSpec, errors: string[]): unknown {
  switch (spec.kind) {
    case 'int': {
      const what = `an integer in ${spec.min}..${spec.max}${spec.pow2 ? ', a power of two' : ''}`;
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < spec.min || v > spec.max) {
        errors.push(`${path}: expected ${what}, got ${show(v)}`);
        return undefined;
      }
      if (spec.pow2 && (v & (v - 1)) !== 0) {
        errors.push(`${path}: expected ${what}, got ${show(v)}`);
        return undefined;
      }
      return v;
    }
    case 'mode': {
      const n = typeof v === 'string' && /^0?[0-7]{3}$/.test(v) ? Number.parseInt(v, 8) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0o777) {
        errors.push(
          `${path}: expected an octal mode string like "0660" (or an integer <= 511), got ${show(v)}`,
        );
        return undefined;
      }
      if (n & 0o007) {
        errors.push(`${path}: expected no permission for others (the last digit 0), got ${show(v)}`);
        return undefined;
      }
      return n;
    }
    case 'string':
      if (v === null && spec.nullable) return null;
      if (typeof v !== 'string' || v.length === 0 || v.length > 1024) {
        errors.push(`${path}: expected a non-empty string${spec.nullable ? ' or null' : ''}, got ${show(v)}`);
        return undefined;
      }
      return v;
    case 'group':
      if (v === null) return null;
      if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32) return v;
      if (typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(v)) return v;
      errors.push(`${path}: expected a group name, a gid or null, got ${show(v)}`);
      return undefined;
    case 'enum':
      if (typeof v !== 'string' || !spec.values.includes(v)) {
        errors.push(
          `${path}: expected one of ${spec.values.map((x) => `"${x}"`).join(', ')}, got ${show(v)}`,
        );
        return undefined;
      }
      return v;
  }
}

function checkNamespaces(
  raw: unknown,
  ctx: ValidateContext,
  errors: string[],
): Record<string, NamespaceConfig> | undefined {
  if (!isObject(raw)) {
    errors.push(
      `$.namespaces: expected an object of namespace name -> { token | tokenEnv | tokenFile }, got ${show(raw)}`,
    );
    return undefined;
  }
  const out: Record<string, NamespaceConfig> = {};
  for (const [name, ns] of Object.entries(raw)) {
    const path = `$.namespaces.${name}`;
    if (!NAMESPACE_NAME.test(name)) {
      errors.push(`${path}: expected a namespace name of letters, digits, '.', '_', '-' (at most 64)`);
      continue;
    }
    if (!isObject(ns)) {
      errors.push(`${path}: expected an object ({} for no token), got ${show(ns)}`);
      continue;
    }
    const ids: { uids?: number[]; gids?: number[] } = {};
    let idsOk = true;
    for (const k of ['uids', 'gids'] as const) {
      if (!(k in ns)) continue;
      const list = ns[k];
      const isId = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 2 ** 32;
      if (!Array.isArray(list) || list.length === 0 || !list.every(isId)) {
        errors.push(
          `${path}.${k}: expected a non-empty array of numeric ${k === 'uids' ? 'user' : 'group'} ids`,
        );
        idsOk = false;
      } else ids[k] = list as number[];
    }
    if (!idsOk) continue;
    const given = Object.keys(ns).filter((k) => !['comment', 'uids', 'gids'].includes(k));
    const unknown = given.filter((k) => !['token', 'tokenEnv', 'tokenFile'].includes(k));
    if (unknown.length > 0) {
      errors.push(`${path}.${unknown[0]}: unknown key (expected token, tokenEnv, tokenFile, uids or gids)`);
      continue;
    }
    if (given.length > 1) {
      errors.push(`${path}: expected at most one of token, tokenEnv, tokenFile, got ${given.join(', ')}`);
      continue;
    }
    const secret = resolveToken(path, ns, ctx, errors);
    if (secret === undefined) continue;
    out[name] = {
      ...(secret === null
        ? { tokenHash: null, tokenSource: null }
        : { tokenHash: hashToken(secret.token), tokenSource: secret.source }),
      ...ids,
    };
  }
  return out;
}

/** The token of a namespace entry: null for none, undefined after an error (never echoed). */
function resolveToken(
  path: string,
  ns: Record<string, unknown>,
  ctx: ValidateContext,
  errors: string[],
): { token: string; source: string } | null | undefined {
  const bad = (key: string, what: string) => {
    errors.push(`${path}.${key}: expected ${what}`);
    return undefined;
  };
  if ('token' in ns) {
    const t = ns['token'];
    // Never echo what was given: it may be a secret with a typo.
    if (typeof t !== 'string' || t.length < 8 || t.length > 4096) {
      return bad('token', 'a string of 8..4096 characters');
    }
    return { token: t, source: 'token' };
  }
  if ('tokenEnv' in ns) {
    const name = ns['tokenEnv'];
    if (typeof name !== 'string' || !ENV_NAME.test(name))
      return bad('tokenEnv', 'an environment variable name');
    const t = ctx.env[name];
    if (t === undefined || t.length < 8) {
      return bad('tokenEnv', `environment variable ${name} to hold a token of at least 8 characters`);
    }
    return { token: t, source: `tokenEnv:${name}` };
  }
  if ('tokenFile' in ns) {
    const file = ns['tokenFile'];
    if (typeof file !== 'string' || file.length === 0) return bad('tokenFile', 'a file path');
    const full = resolve(ctx.baseDir, file);
    let t: string;
    try {
      t = readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      return bad('tokenFile', `a readable file (${full}: ${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    if (t.length < 8) return bad('tokenFile', `${full} to hold a token of at least 8 characters`);
    return { token: t, source: `tokenFile:${full}` };
  }
  return null;
}

function checkRules(raw: unknown, errors: string[]): Rule[] | undefined {
  if (!Array.isArray(raw)) {
    errors.push(`$.rules: expected an array of rules, got ${show(raw)}`);
    return undefined;
  }
  const out: Rule[] = [];
  raw.forEach((r: unknown, i) => {
    const path = `$.rules[${i}]`;
    if (!isObject(r)) {
      errors.push(`${path}: expected an object, got ${show(r)}`);
      return;
    }
    const before = errors.length;
    for (const k of Object.keys(r)) {
      if (!RULE_KEYS.includes(k)) errors.push(`${path}.${k}: unknown key (expected ${RULE_KEYS.join(', ')})`);
    }
    const rule: Rule = { action: 'deny' };
    const action = r['action'];
    if (action !== 'allow' && action !== 'deny') {
      errors.push(`${path}.action: expected "allow" or "deny", got ${show(action)}`);
    } else rule.action = action;
    for (const k of ['from', 'to'] as const) {
      const v = r[k];
      if (v === undefined) continue;
      if (typeof v !== 'string' || (v !== '*' && !NAMESPACE_NAME.test(v))) {
        errors.push(`${path}.${k}: expected a namespace name or "*", got ${show(v)}`);
      } else rule[k] = v;
    }
    const service = r['service'];
    if (service !== undefined) {
      if (typeof service !== 'string' || parseServicePattern(service) === null) {
        errors.push(
          `${path}.service: expected a URI pattern like "tcp://10.0.0.1:80" or "tcp://*:443", got ${show(service)}`,
        );
      } else rule.service = service;
    }
    const address = r['address'];
    if (address !== undefined) {
      if (typeof address !== 'string' || parseAddress(address) === null) {
        errors.push(
          `${path}.address: expected an IP address or CIDR block like "10.0.0.0/8", got ${show(address)}`,
        );
      } else rule.address = address;
    }
    const port = r['port'];
    if (port !== undefined) {
      const okPort = (p: unknown): p is number =>
        typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 65535;
      if (okPort(port)) rule.port = port;
      else if (
        Array.isArray(port) &&
        port.length === 2 &&
        okPort(port[0]) &&
        okPort(port[1]) &&
        port[0] <= port[1]
      ) {
        rule.port = [port[0], port[1]];
      } else errors.push(`${path}.port: expected a port 0..65535 or a range [low, high], got ${show(port)}`);
    }
    const via = r['via'];
    if (via !== undefined) {
      if (via !== 'local' && via !== 'remote')
        errors.push(`${path}.via: expected "local" or "remote", got ${show(via)}`);
      else rule.via = via;
    }
    if (rule.to !== undefined && rule.via === 'remote') {
      errors.push(`${path}: a rule with "to" never matches a remote connect; drop "to" or "via"`);
    }
    if (errors.length === before) out.push(rule);
  });
  return out;
}

function checkMetrics(raw: unknown, errors: string[]): MetricsConfig | undefined {
  if (!isObject(raw)) {
    errors.push(`$.metrics: expected { "listen": "HOST:PORT" | null }, got ${show(raw)}`);
    return undefined;
  }
  for (const k of Object.keys(raw)) {
    if (k !== 'listen') errors.push(`$.metrics.${k}: unknown key (expected listen)`);
  }
  const listen = raw['listen'] ?? null;
  if (listen === null) return { listen: null };
  try {
    if (typeof listen !== 'string') throw new Error('expected a string');
    parseListenAddress(listen);
    return { listen };
  } catch (err) {
    errors.push(`$.metrics.listen: ${(err as Error).message}, got ${show(listen)}`);
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
