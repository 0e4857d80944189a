/**
 * Whether the container suites can run. Without a reachable Docker engine they are skipped with
 * the reason, except in CI (CI=true), where a missing engine fails the run.
 */
import { test } from 'node:test';
import { getContainerRuntimeClient } from 'testcontainers';

async function probe(): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const found = getContainerRuntimeClient().then(() => null);
    const late = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve('the container engine did not answer within 15 s'), 15_000);
    });
    return await Promise.race([found, late]);
  } catch (err) {
    return (err as Error).message;
  } finally {
    clearTimeout(timer);
  }
}

const problem = await probe();
const inCi = process.env['CI'] === 'true' || process.env['CI'] === '1';

/** false when the suites run; else why they are skipped (`describe(name, { skip: SKIP })`). */
export const SKIP: string | false =
  problem === null
    ? false
    : inCi
      ? 'no Docker engine (CI: see the failing test "a Docker engine is reachable")'
      : `no Docker engine reachable, e2e container suites skipped (${problem.split('\n')[0]}); ` +
        'start one (see e2e/README.md) to run them';

if (problem !== null && inCi) {
  test('a Docker engine is reachable (required in CI)', () => {
    throw new Error(`CI=true but no container engine is reachable: ${problem}`);
  });
}
