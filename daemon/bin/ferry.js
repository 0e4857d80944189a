#!/usr/bin/env node
// Entry for the `ferry` command. Builds the workspace once if dist/ is missing (a fresh clone
// where `npm ci` ran without the prepare script), then hands over to the compiled CLI.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const cli = join(here, '..', 'dist', 'cli.js');
if (!existsSync(cli)) {
  const root = join(here, '..', '..');
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', root], {
    stdio: 'inherit',
  });
}
const { main } = await import(cli);
process.exitCode = await main(process.argv.slice(2));
