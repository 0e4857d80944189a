// Runs the biome binary for this machine. Ferry depends on biome's Linux CLI packages directly
// rather than on @biomejs/biome, whose optional per-platform packages are not all published in
// every registry mirror (which breaks `npm ci`); Ferry is Linux-only (memfd, SCM_RIGHTS) anyway.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const pkg = `@biomejs/cli-linux-${process.arch === 'arm64' ? 'arm64' : 'x64'}`;
let bin;
try {
  bin = require.resolve(`${pkg}/biome`);
} catch {
  console.error(`biome: ${pkg} is not installed (npm ci installs it on Linux x64 and arm64)`);
  process.exit(1);
}
const r = spawnSync(bin, process.argv.slice(2), { stdio: 'inherit' });
process.exit(r.status ?? 1);
