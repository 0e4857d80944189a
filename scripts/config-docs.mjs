// Rewrites what ferryd's option table generates: the `## Options` section of
// docs/configuration.md and docs/ferryd.schema.json. Run after `npx tsc -b`.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { configJsonSchema, OPTIONS_HEADING, renderOptionsDoc } from '../daemon/dist/config/docs.js';

const md = new URL('../docs/configuration.md', import.meta.url);
const text = readFileSync(md, 'utf8');
const at = text.indexOf(OPTIONS_HEADING);
if (at < 0) throw new Error(`docs/configuration.md has no '${OPTIONS_HEADING.trim()}' heading`);
writeFileSync(md, text.slice(0, at) + renderOptionsDoc());
writeFileSync(
  new URL('../docs/ferryd.schema.json', import.meta.url),
  `${JSON.stringify(configJsonSchema(), null, 2)}\n`,
);
// Formatted like every JSON file here (the test compares it as data).
spawnSync(
  process.execPath,
  [new URL('./biome.mjs', import.meta.url).pathname, 'format', '--write', 'docs/ferryd.schema.json'],
  {
    stdio: 'inherit',
  },
);
