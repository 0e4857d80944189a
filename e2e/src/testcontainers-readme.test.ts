/**
 * The user's test that testcontainers/README.md shows (readme/echo-through-ferry.ts, checked to
 * be the README's code block), run with the images under test.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { echoThroughFerry } from './readme/echo-through-ferry.js';
import { SKIP } from './support/engine.js';
import { ensureImages, IMAGES, REPO_ROOT } from './support/images.js';

describe('testcontainers/README.md', () => {
  test('shows readme/echo-through-ferry.ts as it is', () => {
    const example = readFileSync(join(REPO_ROOT, 'e2e/src/readme/echo-through-ferry.ts'), 'utf8');
    const readme = readFileSync(join(REPO_ROOT, 'testcontainers/README.md'), 'utf8');
    assert.ok(
      readme.includes(`\`\`\`ts\n${example}\`\`\``),
      'README.md must show e2e/src/readme/echo-through-ferry.ts verbatim',
    );
  });

  test('its example passes', { skip: SKIP, timeout: 120_000 }, async () => {
    await ensureImages();
    // The example names no image for ferryd: FerrydContainer takes $FERRYD_IMAGE.
    const saved = process.env['FERRYD_IMAGE'];
    process.env['FERRYD_IMAGE'] = IMAGES.ferryd;
    try {
      await echoThroughFerry(IMAGES.app);
    } finally {
      if (saved === undefined) delete process.env['FERRYD_IMAGE'];
      else process.env['FERRYD_IMAGE'] = saved;
    }
  });
});
