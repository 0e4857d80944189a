/**
 * The configuration file FerrydContainer writes: what the test gave with `withConfig`, plus one
 * namespace entry per `withNamespace`, whose token ferryd reads from a file (never from the
 * configuration or the environment, so `docker inspect` does not show it).
 */
import { randomBytes } from 'node:crypto';
import { TOKEN_DIR } from './paths.js';

/** ferryd's configuration file (docs/configuration.md); ferryd itself validates it at start. */
export type FerrydConfig = Record<string, unknown> & {
  namespaces?: Record<string, Record<string, unknown>>;
  rules?: Record<string, unknown>[];
};

export interface NamespaceOptions {
  /**
   * The token apps of this namespace must give. Default: a random one (`getToken(name)` returns
   * it). `null`: the namespace is open (no token).
   */
  token?: string | null;
  /** Only apps with one of these uids may attach. */
  uids?: number[];
  /** Only apps with one of these primary gids may attach. */
  gids?: number[];
}

export interface NamespaceSpec {
  token: string | null;
  uids?: number[];
  gids?: number[];
}

const NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Checks a namespace's options and fixes its token (a random one unless given or null). */
export function namespaceSpec(name: string, opts: NamespaceOptions): NamespaceSpec {
  if (!NAME.test(name)) {
    throw new TypeError(`namespace name '${name}': letters, digits, '.', '_', '-' only, at most 64`);
  }
  const token = opts.token === undefined ? randomBytes(24).toString('hex') : opts.token;
  if (token !== null && (token.length < 8 || /[\r\n]/.test(token))) {
    throw new TypeError(`namespace '${name}': a token has at least 8 characters and no line break`);
  }
  return {
    token,
    ...(opts.uids ? { uids: [...opts.uids] } : {}),
    ...(opts.gids ? { gids: [...opts.gids] } : {}),
  };
}

/** The file's content, or null when nothing differs from ferryd's built-in configuration. */
export function configDocument(
  config: FerrydConfig,
  namespaces: ReadonlyMap<string, NamespaceSpec>,
): string | null {
  if (Object.keys(config).length === 0 && namespaces.size === 0) return null;
  const doc: FerrydConfig = { ...config };
  if (namespaces.size > 0) {
    const entries: Record<string, Record<string, unknown>> = { ...config.namespaces };
    for (const [name, ns] of namespaces) {
      entries[name] = {
        ...(ns.token !== null ? { tokenFile: tokenFile(name) } : {}),
        ...(ns.uids ? { uids: ns.uids } : {}),
        ...(ns.gids ? { gids: ns.gids } : {}),
      };
    }
    doc.namespaces = entries;
  }
  return `${JSON.stringify(doc, null, 2)}\n`;
}

export function tokenFile(namespace: string): string {
  return `${TOKEN_DIR}/${namespace}`;
}
