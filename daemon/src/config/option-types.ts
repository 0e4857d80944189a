/**
 * The kinds of value ferryd's options take, as zod schemas whose messages read
 * `expected ..., got ...`: what a person needs to fix a file. Each also says in its JSON Schema
 * what it accepts (`.meta()`), so the published schema matches the checker. Options are declared
 * with these in config/options.ts.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { parseListenAddress } from '../obs/listen-address.js';
import { parseAddress, parseServicePattern } from './patterns.js';
import { hashToken } from './tokens.js';

export interface ValidateContext {
  env: NodeJS.ProcessEnv;
  /** Directory relative tokenFile paths start from (the configuration file's). */
  baseDir: string;
}

/** A value as an error message shows it: JSON, cut at 60 characters. */
export const show = (v: unknown): string => {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  if (s === undefined) return String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

const expected = (what: string) => (iss: { input?: unknown }) => `expected ${what}, got ${show(iss.input)}`;

const isPow2 = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** An integer in min..max (a power of two when `pow2`). */
export function int(min: number, max: number, opts: { pow2?: boolean } = {}) {
  const msg = expected(`an integer in ${min}..${max}${opts.pow2 ? ', a power of two' : ''}`);
  return z
    .number({ error: msg })
    .refine((v) => Number.isSafeInteger(v) && v >= min && v <= max && (!opts.pow2 || isPow2(v)), {
      error: msg,
    })
    .meta({
      type: 'integer',
      minimum: min,
      maximum: max,
      ...(opts.pow2 ? { description: 'a power of two' } : {}),
    });
}

/** A file mode: an octal string like "0660" or an integer; others get no permission. */
export function mode() {
  return z
    .union([z.string(), z.number()], {
      error: expected('an octal mode string like "0660" (or an integer <= 511)'),
    })
    .transform((v, ctx) => {
      const n = typeof v === 'string' && /^0?[0-7]{3}$/.test(v) ? Number.parseInt(v, 8) : v;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 0o777) {
        ctx.issues.push({
          code: 'custom',
          input: v,
          message: `expected an octal mode string like "0660" (or an integer <= 511), got ${show(v)}`,
        });
        return z.NEVER;
      }
      if (n & 0o007) {
        ctx.issues.push({
          code: 'custom',
          input: v,
          message: `expected no permission for others (the last digit 0), got ${show(v)}`,
        });
        return z.NEVER;
      }
      return n;
    })
    .meta({
      anyOf: [
        { type: 'string', pattern: '^0?[0-7]{3}$' },
        { type: 'integer', minimum: 0, maximum: 504 },
      ],
    });
}

/** A non-empty string of at most 1024 characters. */
export function text() {
  const msg = expected('a non-empty string');
  return z.string({ error: msg }).min(1, { error: msg }).max(1024, { error: msg });
}

/** A non-empty string of at most 1024 characters, or null. */
export function textOrNull() {
  const msg = expected('a non-empty string or null');
  return z.union([z.string().min(1).max(1024), z.null()], { error: msg }).meta({
    anyOf: [{ type: 'string', minLength: 1, maxLength: 1024 }, { type: 'null' }],
  });
}

/** A group: a name from /etc/group, a gid, or null. */
export function group() {
  return z.union(
    [
      z.null(),
      z
        .number()
        .int()
        .min(0)
        .max(2 ** 32 - 1),
      z.string().regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/),
    ],
    { error: expected('a group name, a gid or null') },
  );
}

/** One of a few strings. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expected(`one of ${values.map((x) => `"${x}"`).join(', ')}`) });
}

/** An object that refuses keys it does not know, naming each with `unknown`'s text. */
function strict<S extends z.ZodRawShape>(shape: S, objectError: string, unknown: string) {
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys' ? unknown : `expected ${objectError}, got ${show(iss.input)}`,
  });
}

export const NAMESPACE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const NAME_ERROR = "expected a namespace name of letters, digits, '.', '_', '-' (at most 64)";
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A namespace as ferryd keeps it: never the token itself, only its hash and where it came from. */
export interface NamespaceConfig {
  /** sha256 of the token, or null when attaching to the namespace needs no token. */
  tokenHash: Buffer | null;
  /** Where the token came from, for `ferry show`: 'token', 'tokenEnv:NAME' or 'tokenFile:PATH'. */
  tokenSource: string | null;
  /** When set, only apps whose SO_PEERCRED uid (or gid) is listed may attach. */
  uids?: number[];
  gids?: number[];
}

const isId = (x: unknown) => typeof x === 'number' && Number.isInteger(x) && x >= 0 && x < 2 ** 32;

const ids = (which: 'user' | 'group') => {
  const msg = `expected a non-empty array of numeric ${which} ids`;
  return z
    .array(z.unknown(), { error: msg })
    .min(1, { error: msg })
    .refine((list) => list.every(isId), { error: msg })
    .transform((list) => list as number[])
    .meta({ items: { type: 'integer', minimum: 0, maximum: 2 ** 32 - 1 } });
};

/** The token of a namespace entry: null for none; an issue (never echoing the value) otherwise. */
function resolveToken(
  ns: { token?: string | undefined; tokenEnv?: string | undefined; tokenFile?: string | undefined },
  ctx: ValidateContext,
): { token: string; source: string } | null | { key: string; what: string } {
  if (ns.token !== undefined) {
    // Never echo what was given: it may be a secret with a typo.
    if (ns.token.length < 8 || ns.token.length > 4096)
      return { key: 'token', what: 'a string of 8..4096 characters' };
    return { token: ns.token, source: 'token' };
  }
  if (ns.tokenEnv !== undefined) {
    const name = ns.tokenEnv;
    if (!ENV_NAME.test(name)) return { key: 'tokenEnv', what: 'an environment variable name' };
    const t = ctx.env[name];
    if (t === undefined || t.length < 8) {
      return {
        key: 'tokenEnv',
        what: `environment variable ${name} to hold a token of at least 8 characters`,
      };
    }
    return { token: t, source: `tokenEnv:${name}` };
  }
  if (ns.tokenFile !== undefined) {
    if (ns.tokenFile.length === 0) return { key: 'tokenFile', what: 'a file path' };
    const full = resolve(ctx.baseDir, ns.tokenFile);
    let t: string;
    try {
      t = readFileSync(full, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      return {
        key: 'tokenFile',
        what: `a readable file (${full}: ${(err as NodeJS.ErrnoException).code ?? 'error'})`,
      };
    }
    if (t.length < 8) return { key: 'tokenFile', what: `${full} to hold a token of at least 8 characters` };
    return { token: t, source: `tokenFile:${full}` };
  }
  return null;
}

/** Namespace name -> entry; tokens are resolved (environment, files) and only hashed. */
export function namespaces(ctx: ValidateContext) {
  // Types only: lengths and names are judged when the token is resolved (a secret is never echoed).
  const secret = (what: string) => z.string({ error: `expected ${what}` });
  const entry = strict(
    {
      token: secret('a string of 8..4096 characters').optional(),
      tokenEnv: secret('an environment variable name').optional(),
      tokenFile: secret('a file path').optional(),
      uids: ids('user').optional(),
      gids: ids('group').optional(),
      comment: z.unknown().optional(),
    },
    'an object ({} for no token)',
    'unknown key (expected token, tokenEnv, tokenFile, uids or gids)',
  )
    .superRefine((ns, c) => {
      const given = (['token', 'tokenEnv', 'tokenFile'] as const).filter((k) => ns[k] !== undefined);
      if (given.length > 1) {
        c.addIssue({
          code: 'custom',
          message: `expected at most one of token, tokenEnv, tokenFile, got ${given.join(', ')}`,
        });
      }
    })
    .transform((ns, c): NamespaceConfig => {
      const r = resolveToken(ns, ctx);
      if (r !== null && 'key' in r) {
        c.issues.push({ code: 'custom', input: undefined, path: [r.key], message: `expected ${r.what}` });
        return z.NEVER;
      }
      return {
        ...(r === null
          ? { tokenHash: null, tokenSource: null }
          : { tokenHash: hashToken(r.token), tokenSource: r.source }),
        ...(ns.uids ? { uids: ns.uids } : {}),
        ...(ns.gids ? { gids: ns.gids } : {}),
      };
    });
  const name = z.string().regex(NAMESPACE_NAME, { error: NAME_ERROR });
  return z.record(name, entry, {
    error: (iss) =>
      iss.code === 'invalid_key'
        ? NAME_ERROR
        : `expected an object of namespace name -> { token | tokenEnv | tokenFile }, got ${show(iss.input)}`,
  });
}

const RULE_KEYS = ['action', 'from', 'to', 'service', 'address', 'port', 'via', 'comment'];

const portNumber = z.number().int().min(0).max(65535);

const portError = expected('a port 0..65535 or a range [low, high]');

/** Session rules: every field given must match; first match wins (policy/rules.ts). */
export function rules() {
  const nsOrStar = z
    .string({ error: expected('a namespace name or "*"') })
    .refine((v) => v === '*' || NAMESPACE_NAME.test(v), {
      error: expected('a namespace name or "*"'),
    });
  const rule = strict(
    {
      action: z.enum(['allow', 'deny'], { error: expected('"allow" or "deny"') }),
      from: nsOrStar.optional(),
      to: nsOrStar.optional(),
      service: z
        .string({ error: expected('a URI pattern like "tcp://10.0.0.1:80" or "tcp://*:443"') })
        .refine((v) => parseServicePattern(v) !== null, {
          error: expected('a URI pattern like "tcp://10.0.0.1:80" or "tcp://*:443"'),
        })
        .optional(),
      address: z
        .string({ error: expected('an IP address or CIDR block like "10.0.0.0/8"') })
        .refine((v) => parseAddress(v) !== null, {
          error: expected('an IP address or CIDR block like "10.0.0.0/8"'),
        })
        .optional(),
      port: z
        .union([portNumber, z.tuple([portNumber, portNumber])], { error: portError })
        .refine((p) => typeof p === 'number' || p[0] <= p[1], { error: portError })
        .optional(),
      via: z.enum(['local', 'remote'], { error: expected('"local" or "remote"') }).optional(),
      comment: z.unknown().optional(),
    },
    'an object',
    `unknown key (expected ${RULE_KEYS.join(', ')})`,
  )
    .superRefine((r, c) => {
      if (r.to !== undefined && r.via === 'remote') {
        c.addIssue({
          code: 'custom',
          message: 'a rule with "to" never matches a remote connect; drop "to" or "via"',
        });
      }
    })
    .transform(({ comment: _, ...r }) => r);
  return z.array(rule, { error: expected('an array of rules') });
}

/** The Prometheus endpoint's address, or null (off). */
export function metrics() {
  const listen = z.union([z.null(), z.string()], { error: expected('a string') }).transform((v, c) => {
    if (v === null) return null;
    try {
      parseListenAddress(v);
      return v;
    } catch (err) {
      c.issues.push({ code: 'custom', input: v, message: `${(err as Error).message}, got ${show(v)}` });
      return z.NEVER;
    }
  });
  return strict(
    { listen: listen.optional().transform((v) => v ?? null) },
    '{ "listen": "HOST:PORT" | null }',
    'unknown key (expected listen)',
  );
}

const TOPIC_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;

/** Topics' policies and their relay between hosts (docs/messages.md, Remote subscribers). */
export function topics() {
  const hostPort = z.string({ error: expected('"HOST:PORT"') }).transform((v, c) => {
    try {
      parseListenAddress(v);
      return v;
    } catch (err) {
      c.issues.push({ code: 'custom', input: v, message: `${(err as Error).message}, got ${show(v)}` });
      return z.NEVER;
    }
  });
  const topicName = z
    .string({ error: expected('a topic name') })
    .refine((v) => TOPIC_NAME.test(v), { error: expected('a topic name of letters, digits, ".", "_", "-"') });
  const topicOrStar = z
    .string({ error: expected('a topic name or "*"') })
    .refine((v) => v === '*' || TOPIC_NAME.test(v), { error: expected('a topic name or "*"') });
  const ns = z
    .string({ error: expected('a namespace name') })
    .refine((v) => NAMESPACE_NAME.test(v), { error: NAME_ERROR });
  const policy = strict(
    {
      topic: topicOrStar,
      slow: z
        .enum(['lose-oldest', 'disconnect'], { error: expected('"lose-oldest" or "disconnect"') })
        .optional(),
      maxLagBytes: z
        .number({ error: expected('a number of bytes') })
        .int()
        .min(64 * 1024)
        .max(1024 ** 3)
        .optional(),
    },
    'an object',
    'unknown key (expected topic, slow, maxLagBytes)',
  ).transform((p) => ({
    topic: p.topic,
    slow: p.slow ?? 'lose-oldest',
    maxLagBytes: p.maxLagBytes ?? 4 * 1024 * 1024,
  }));
  const exported = strict(
    { topic: topicOrStar, namespace: ns.optional() },
    'an object',
    'unknown key (expected topic, namespace)',
  ).transform((e) => ({ topic: e.topic, namespace: e.namespace ?? 'default' }));
  const imported = strict(
    { topic: topicName, from: hostPort, namespace: ns.optional(), remoteNamespace: ns.optional() },
    'an object',
    'unknown key (expected topic, from, namespace, remoteNamespace)',
  ).transform((e) => ({
    topic: e.topic,
    from: e.from,
    namespace: e.namespace ?? 'default',
    remoteNamespace: e.remoteNamespace ?? 'default',
  }));
  return strict(
    {
      relayListen: z.union([z.null(), hostPort], { error: expected('"HOST:PORT" or null') }).optional(),
      export: z.array(exported, { error: expected('an array') }).optional(),
      import: z.array(imported, { error: expected('an array') }).optional(),
      policies: z.array(policy, { error: expected('an array') }).optional(),
    },
    'an object',
    'unknown key (expected relayListen, export, import, policies)',
  ).transform((t) => ({
    relayListen: t.relayListen ?? null,
    export: t.export ?? [],
    import: t.import ?? [],
    policies: t.policies ?? [],
  }));
}

export type TopicsConfig = z.output<ReturnType<typeof topics>>;
