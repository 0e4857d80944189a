/**
 * ferryd's log: pino underneath, so every line has a level and can be JSON for a log pipeline.
 * `text` (the default) prints each line as `ferryd: <message>` on stdout, as people and the
 * container healthchecks read it (warnings and errors say so after the prefix); `json` prints
 * pino's JSON lines (`level`, `time`, `msg`, ...).
 */
import { pino } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** What ferryd's layers log through. */
export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  /** Changes the level at once (a SIGHUP reload of `logLevel`). */
  setLevel(level: LogLevel): void;
}

/** Where lines go: a writable that takes strings (stdout by default). */
export interface LogSink {
  write(line: string): void;
}

const labels = pino.levels.labels;

/** pino's JSON line as the text format prints it. */
function textLine(json: string): string {
  let rec: { level?: number; msg?: unknown };
  try {
    rec = JSON.parse(json) as { level?: number; msg?: unknown };
  } catch {
    return `ferryd: ${json}`;
  }
  const label = labels[rec.level ?? 30] ?? 'info';
  const what = label === 'info' ? '' : `${label === 'warn' ? 'warning' : label}: `;
  return `ferryd: ${what}${String(rec.msg ?? '')}\n`;
}

export function createLogger(opts: { level?: LogLevel; format?: LogFormat; sink?: LogSink } = {}): Logger {
  const sink = opts.sink ?? process.stdout;
  const format = opts.format ?? 'text';
  const destination = format === 'json' ? sink : { write: (line: string) => sink.write(textLine(line)) };
  const p = pino(
    {
      level: opts.level ?? 'info',
      base: { name: 'ferryd', pid: process.pid },
      // Text lines carry no time (the journal or the container runtime adds one).
      timestamp: format === 'json' ? pino.stdTimeFunctions.isoTime : false,
    },
    destination,
  );
  return {
    error: (m) => p.error(m),
    warn: (m) => p.warn(m),
    info: (m) => p.info(m),
    debug: (m) => p.debug(m),
    setLevel: (l) => {
      p.level = l;
    },
  };
}

/** Logs nothing (library use and tests that do not look at the log). */
export const silentLogger: Logger = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  setLevel: () => {},
};
