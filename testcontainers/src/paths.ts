/**
 * Where things are inside the ferryd image (dockerfiles/Dockerfile) and what apps are told. One
 * place, so that the container classes, the attach helper and the tests agree.
 */

/** Directory holding ferryd's socket; a named volume is mounted here in ferryd and in the apps. */
export const SOCKET_DIR = '/run/ferry';
/** ferryd's control socket in the image (`FERRY_SOCKET`); its admin socket is `<this>.admin`. */
export const SOCKET_PATH = `${SOCKET_DIR}/ferryd.sock`;
/** The abstract socket of the network-namespace variant (no file, no volume). */
export const ABSTRACT_SOCKET = '@ferry/session';
/** Where FerrydContainer puts the configuration file it writes (`FERRY_CONFIG`). */
export const CONFIG_PATH = '/etc/ferry/ferryd.json';
/** Where FerrydContainer puts one token file per namespace (`tokenFile` in the configuration). */
export const TOKEN_DIR = '/etc/ferry/tokens';
/** The image ferryd runs in unless told otherwise: `$FERRYD_IMAGE`, else what `npm run images` builds. */
export function defaultFerrydImage(): string {
  return process.env['FERRYD_IMAGE'] || 'ferry/ferryd:local';
}
