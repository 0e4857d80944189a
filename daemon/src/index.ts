/**
 * @ferry/daemon as a library: run ferryd inside a process of your own (most users run the `ferry`
 * command instead). Explicit named exports only.
 */
export { main } from './cli.js';
export { configJsonSchema } from './config/docs.js';
export { ConfigError, type LoadOptions, loadConfig } from './config/load.js';
export type { NamespaceConfig } from './config/option-types.js';
export {
  type DaemonConfig,
  defaultConfig,
  type MetricsConfig,
  type Rule,
  type RuleAction,
  validateConfig,
} from './config.js';
export { Daemon } from './daemon.js';
export { SHOW_TOPICS, type ShowTopic } from './inspect/show-topics.js';
export {
  createLogger,
  LOG_FORMATS,
  LOG_LEVELS,
  type LogFormat,
  type Logger,
  type LogLevel,
  silentLogger,
} from './log/logger.js';
