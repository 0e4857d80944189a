/**
 * ferryd's configuration: every option with its default (config/options.ts), overridden by a file
 * (config/load.ts), FERRY_SOCKET and flags. The object is shared by every layer: a SIGHUP reload
 * changes the live options in place (config/reload.ts).
 */
import { ferryError } from '@ferry/sdk/internal';
import { defaultOptionValues, OPTION_NAMES, type OptionValues } from './config/options.js';
import { defaultSocketPath } from './config/socket-path.js';
import { checkValues } from './config/validate.js';

export type { NamespaceConfig } from './config/option-types.js';

/**
 * ferryd's configuration: one value per option of config/options.ts, as ferryd uses it (file
 * spellings converted: modes are numbers, tokens are hashes). Every layer shares one object.
 */
export type DaemonConfig = OptionValues;

/** A session rule (docs/configuration.md#rules): every field given must match; first match wins. */
export type Rule = DaemonConfig['rules'][number];
export type RuleAction = Rule['action'];
export type MetricsConfig = DaemonConfig['metrics'];

export { builtInSocketPath, defaultSocketPath } from './config/socket-path.js';

/** The embedded configuration (no file): what `npm start` runs with. */
export function defaultConfig(env: NodeJS.ProcessEnv = process.env): DaemonConfig {
  return {
    ...defaultOptionValues(),
    socket: defaultSocketPath(env),
    namespaces: {},
    rules: [],
    metrics: { listen: null },
  };
}

/** Power-of-two fifo size for a request: 0 = default, else rounded up, clamped to the limits. */
export function fifoSizeFor(config: DaemonConfig, requested: number): number {
  if (requested === 0) return config.defaultFifoSizeBytes;
  let size = config.minFifoSizeBytes;
  while (size < requested && size < config.maxFifoSizeBytes) size *= 2;
  return size;
}

/** Checks that relate options to each other (each option alone is checked by config/validate.ts). */
export function crossCheck(c: DaemonConfig): string[] {
  const errors: string[] = [];
  if (c.minFifoSizeBytes > c.defaultFifoSizeBytes || c.defaultFifoSizeBytes > c.maxFifoSizeBytes) {
    errors.push(
      `$.defaultFifoSizeBytes: expected minFifoSizeBytes <= defaultFifoSizeBytes <= maxFifoSizeBytes, got ${c.minFifoSizeBytes} <= ${c.defaultFifoSizeBytes} <= ${c.maxFifoSizeBytes}`,
    );
  }
  if (c.segmentSizeBytes < 2 * c.maxFifoSizeBytes + 1024 * 1024) {
    errors.push(
      `$.segmentSizeBytes: expected room for two of the largest fifos plus 1 MiB (>= ${2 * c.maxFifoSizeBytes + 1024 * 1024}), got ${c.segmentSizeBytes}`,
    );
  }
  if ((c.tlsCertFile === null) !== (c.tlsKeyFile === null)) {
    errors.push('$.tlsCertFile: expected tlsCertFile and tlsKeyFile together');
  }
  if (c.maxSegmentBytesPerApp < c.segmentSizeBytes || c.maxSegmentBytesTotal < c.segmentSizeBytes) {
    errors.push(
      `$.maxSegmentBytesPerApp: expected segment memory limits >= segmentSizeBytes (${c.segmentSizeBytes}), got ${c.maxSegmentBytesPerApp} per app, ${c.maxSegmentBytesTotal} total`,
    );
  }
  return errors;
}

/**
 * Throws ERR_INVALID_ARG_VALUE naming every problem of a configuration built in code or merged
 * (flags over a file, a reload): each option against its schema, then the relations.
 */
export function validateConfig(c: DaemonConfig): DaemonConfig {
  // namespaces and rules were checked when read (their tokens are resolved by then); the metrics
  // address is checked when the endpoint starts (`ferry daemon` then says "cannot serve metrics").
  const errors = checkValues(
    c,
    OPTION_NAMES.filter((k) => k !== 'namespaces' && k !== 'rules' && k !== 'metrics'),
  );
  if (errors.length === 0) errors.push(...crossCheck(c));
  if (errors.length > 0) throw ferryError('ERR_INVALID_ARG_VALUE', errors.join('; '));
  return c;
}
