/** @ferry/testcontainers: ferryd in a container for tests, and apps attached to it. */
export type { FerrydConfig, NamespaceOptions } from './config.js';
export { FerrydContainer } from './ferryd-container.js';
export {
  ABSTRACT_SOCKET,
  CONFIG_PATH,
  defaultFerrydImage,
  SOCKET_DIR,
  SOCKET_PATH,
  TOKEN_DIR,
} from './paths.js';
export type { ShowApp, ShowListener, ShowSession, ShowStats } from './show.js';
export { type AttachOptions, StartedFerrydContainer } from './started-ferryd-container.js';
