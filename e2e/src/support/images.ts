/**
 * The images the suites run: one constant, overridable from the environment with the variables
 * the compose files read (FERRYD_IMAGE, FERRY_APP_IMAGE). By default the images are built from
 * this checkout (dockerfiles/Dockerfile, context filtered by /.dockerignore) under a tag derived
 * from what goes into them, so a stale image is never run and checkouts side by side do not
 * overwrite each other's images.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GenericContainer, getContainerRuntimeClient, ImageName } from 'testcontainers';

export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const DOCKERFILES = join(REPO_ROOT, 'dockerfiles');

const builtHere = !process.env['FERRYD_IMAGE'] && !process.env['FERRY_APP_IMAGE'];
const tag = builtHere ? `e2e-${contentHash()}` : 'local';

export const IMAGES: { readonly ferryd: string; readonly app: string } = {
  ferryd: process.env['FERRYD_IMAGE'] ?? `ferry/ferryd:${tag}`,
  app: process.env['FERRY_APP_IMAGE'] ?? `ferry/app:${tag}`,
};

/** The variables the compose files in dockerfiles/ read. */
export const COMPOSE_ENV = { FERRYD_IMAGE: IMAGES.ferryd, FERRY_APP_IMAGE: IMAGES.app };

let ready: Promise<void> | null = null;

/** Builds the images from this checkout when they are not there yet (or uses the overrides). */
export function ensureImages(): Promise<void> {
  ready ??= (async () => {
    if (!builtHere) return;
    const client = await getContainerRuntimeClient();
    for (const [target, name] of [
      ['ferryd', IMAGES.ferryd],
      ['app', IMAGES.app],
    ] as const) {
      if (await client.image.exists(ImageName.fromString(name))) continue;
      await GenericContainer.fromDockerfile(REPO_ROOT, 'dockerfiles/Dockerfile')
        .withTarget(target)
        .build(name, { deleteOnExit: false });
    }
  })();
  return ready;
}

/** sha256 over the files the images are made of (what /.dockerignore lets through, roughly). */
function contentHash(): string {
  const h = createHash('sha256');
  const add = (path: string) => {
    h.update(relative(REPO_ROOT, path));
    h.update(readFileSync(path));
  };
  for (const f of ['package-lock.json', '.dockerignore', 'dockerfiles/Dockerfile']) add(join(REPO_ROOT, f));
  for (const dir of ['sdk/dist', 'daemon/dist', 'daemon/bin', 'examples/dist'])
    walk(join(REPO_ROOT, dir), add);
  return h.digest('hex').slice(0, 12);
}

function walk(dir: string, each: (path: string) => void): void {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, each);
    else if (!/\.(map|d\.ts|tsbuildinfo)$|\.test\.js$/.test(name)) each(p);
  }
}
