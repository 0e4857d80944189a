/**
 * Checks a parsed configuration file against the option table (config/options.ts) and turns it
 * into configuration values. Every problem is reported, each as `$.path: expected ..., got ...`,
 * so one run shows everything to fix. Tokens are resolved here (from the file, an environment
 * variable or a file) and only their hash is kept.
 */
import { z } from 'zod';
import { show, type ValidateContext } from './option-types.js';
import { OPTION_NAMES, OPTIONS, type OptionName, type OptionValues } from './options.js';

export { NAMESPACE_NAME, type ValidateContext } from './option-types.js';

export interface Validated {
  values: Partial<OptionValues>;
  errors: string[];
}

/** The schema of a configuration file: every option optional, nothing else but `$schema`, `comment`. */
export function fileSchema(ctx: ValidateContext) {
  const shape: Record<string, z.ZodType> = {
    $schema: z.unknown().optional(),
    comment: z.unknown().optional(),
  };
  for (const k of OPTION_NAMES) shape[k] = OPTIONS[k].schema(ctx).optional();
  return z.strictObject(shape, {
    error: (iss) =>
      iss.code === 'unrecognized_keys'
        ? `unknown option (known: ${OPTION_NAMES.join(', ')})`
        : `expected an object, got ${show(iss.input)}`,
  });
}

/** `$.a.b[0]`: the path of an issue as the messages spell it. */
function pathText(path: readonly PropertyKey[]): string {
  let out = '$';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : `.${String(p)}`;
  return out;
}

/** One line per problem; unknown keys get one line each. */
export function issueLines(issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  for (const iss of issues) {
    const at = pathText(iss.path);
    if (iss.code === 'unrecognized_keys') {
      for (const k of iss.keys) lines.push(`${at}.${k}: ${iss.message}`);
    } else lines.push(`${at}: ${iss.message}`);
  }
  return lines;
}

/**
 * zod's safeParse can still throw: its length checks run on any input with a `length` property,
 * and comparing one that is an object without a prototype (`{ length: Object.create(null) }`, which
 * fast-check makes and code that builds a configuration could) throws a TypeError. A document the
 * checker cannot read is a problem with the document, reported like any other.
 */
function safeParse(schema: z.ZodType, input: unknown): z.ZodSafeParseResult<unknown> | { thrown: string } {
  try {
    return schema.safeParse(input, { reportInput: true });
  } catch (err) {
    return { thrown: err instanceof Error ? err.message : String(err) };
  }
}

const unreadable = (at: string, why: string) =>
  `${at}: expected plain JSON values (objects, arrays, strings, numbers, booleans, null); the checker could not read this one (${why})`;

export function validateFile(doc: unknown, ctx: ValidateContext): Validated {
  const r = safeParse(fileSchema(ctx), doc);
  if ('thrown' in r) return { values: {}, errors: [unreadable('$', r.thrown)] };
  if (!r.success) return { values: {}, errors: issueLines(r.error.issues) };
  const values: Record<string, unknown> = {};
  const data = r.data as Record<string, unknown>;
  for (const k of OPTION_NAMES) if (data[k] !== undefined) values[k] = data[k];
  return { values: values as Partial<OptionValues>, errors: [] };
}

/** Checks option values set in code (not read from a file) against their schemas. */
export function checkValues(c: Partial<Record<OptionName, unknown>>, names: readonly OptionName[]): string[] {
  const ctx: ValidateContext = { env: {}, baseDir: '/' };
  const errors: string[] = [];
  for (const k of names) {
    const r = safeParse(OPTIONS[k].schema(ctx), c[k]);
    if ('thrown' in r) errors.push(unreadable(`$.${k}`, r.thrown));
    else if (!r.success)
      errors.push(...issueLines(r.error.issues.map((i) => ({ ...i, path: [k, ...i.path] }))));
  }
  return errors;
}
