import { spawnSync } from 'node:child_process';

/** True when `bin` can be run (found on PATH): tests that need curl, openssl or nc check first. */
export function hasBinary(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}
