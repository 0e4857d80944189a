/**
 * What the option table (config/options.ts) generates for people and tools: the option reference
 * of docs/configuration.md and the JSON Schema of a configuration file (docs/ferryd.schema.json,
 * `ferry config schema`). `node scripts/config-docs.mjs` rewrites both; a test keeps them equal.
 */
import { z } from 'zod';
import { OPTION_NAMES, OPTIONS, type OptionInfo } from './options.js';
import { fileSchema } from './validate.js';

/** The heading from which docs/configuration.md is generated, to its end. */
export const OPTIONS_HEADING = '## Options\n';

function spelledDefault(info: OptionInfo): string {
  return info.docDefault ?? `\`${JSON.stringify(info.default)}\``;
}

/** The `## Options` section of docs/configuration.md, one `###` section per option. */
export function renderOptionsDoc(): string {
  const parts = [OPTIONS_HEADING];
  for (const k of OPTION_NAMES) {
    const info: OptionInfo = OPTIONS[k];
    parts.push(
      `### \`${k}\`\n\nDefault: ${spelledDefault(info)} · ${info.live ? 'live' : 'restart'}\n\n${info.doc.trim()}\n`,
    );
  }
  return parts.join('\n');
}

/** The JSON Schema of a configuration file (what a file may spell, with the defaults). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(fileSchema({ env: {}, baseDir: '/' }), {
    io: 'input',
    unrepresentable: 'any',
  }) as { properties?: Record<string, Record<string, unknown>> } & Record<string, unknown>;
  for (const k of OPTION_NAMES) {
    const p = schema.properties?.[k];
    if (!p) continue;
    const info: OptionInfo = OPTIONS[k];
    const first = info.doc.trim().split('\n\n')[0]?.replace(/\s+/g, ' ') ?? '';
    p['description'] = first;
    if (k === 'socketMode') p['default'] = `0${(info.default as number).toString(8)}`;
    else if (info.default !== null || k !== 'socket') p['default'] = info.default;
  }
  return { title: 'ferryd configuration', ...schema };
}
