/** The `ferry` command: subcommands for the daemon, inspection and tools. */
import { parseArgs } from 'node:util';
import { cliInt } from './cli-numbers.js';
import type { LoadOptions } from './config/load.js';
import { configFileOf, socketOf } from './config/socket-path.js';
import type { DaemonConfig } from './config.js';
import type { Daemon } from './daemon.js';
import { formatShow, queryAdmin } from './inspect/show-client.js';
import { SHOW_TOPICS } from './inspect/show-topics.js';
import type { Logger } from './log/logger.js';

// `ferry show` and `ferry health` (container healthchecks) load only what they use: the daemon,
// the configuration checker and the logger are imported by the commands that need them.

const HELP = `Usage: ferry <command> [options]

Commands:
  daemon [--config FILE] [--socket PATH|@NAME] [--demo]
         [--tcp-connect-timeout-ms MS]       run ferryd in the foreground; FILE (or
         [--tls-cert FILE --tls-key FILE]    $FERRY_CONFIG) is a JSON configuration
         [--metrics HOST:PORT]               (docs/configuration.md); SIGHUP reloads it;
         [--log-level L] [--log-format F]    L: error|warn|info|debug|...; F: text|json
                                             --tls-*: PEM certificate and key served by
                                             tls:// listens that give none; --metrics:
                                             serve Prometheus metrics at /metrics there
  config check [--config FILE]               validate a configuration, print the result
                                             (tokens as fingerprints)
  config defaults                            print the built-in configuration as JSON
  config schema                              print the JSON Schema of a configuration file
  show sessions|apps|segments|listeners|stats|rules|namespaces|topics
       [--json] [--socket PATH|@NAME] [--config FILE]
                                             what a running ferryd holds
  top [--socket PATH|@NAME] [--interval-ms MS] [--once]
                                             live view of apps and sessions, by throughput
                                             (keys: q quit, s sort, t transport, / filter)
  health [--socket PATH|@NAME] [--timeout-ms MS]
                                             exit 0 if ferryd answers (container healthchecks)
  perf server|client ...                     throughput, rate, rtt and cps tests
                                             (ferry perf for its options)
  help                                       show this help

The socket defaults to $FERRY_SOCKET, else $XDG_RUNTIME_DIR/ferry/ferryd.sock, else
/run/ferry/ferryd.sock.
`;

/** Each subcommand's own usage, printed by `ferry <command> --help` and after a bad option. */
const SUB_HELP: Readonly<Record<string, string>> = {
  daemon: `Usage: ferry daemon [--config FILE] [--socket PATH|@NAME] [--demo] [--tcp-connect-timeout-ms MS]
                    [--tls-cert FILE --tls-key FILE] [--metrics HOST:PORT]
                    [--log-level L] [--log-format text|json]
Runs ferryd in the foreground; FILE (or $FERRY_CONFIG) is a JSON configuration
(docs/configuration.md); SIGHUP reloads it.
`,
  show: `Usage: ferry show [${SHOW_TOPICS.join('|')}] [--json] [--socket PATH|@NAME] [--config FILE]
What a running ferryd holds (default: sessions).
`,
  health: `Usage: ferry health [--socket PATH|@NAME] [--timeout-ms MS]
Exits 0 if ferryd's admin socket answers within MS (default 2000).
`,
  config: `Usage: ferry config check [--config FILE] | defaults | schema
`,
  top: `Usage: ferry top [--socket PATH|@NAME] [--config FILE] [--interval-ms MS] [--once]
Live view of apps and sessions, by throughput (keys: q quit, s sort, t transport, / filter).
`,
};

/** `--help` or `-h` among a subcommand's arguments (before a `--`, after which all are operands). */
function asksHelp(args: readonly string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

async function helpOf(cmd: string): Promise<string> {
  if (cmd === 'perf') return (await import('./perf/perf-cli.js')).PERF_HELP;
  return SUB_HELP[cmd] ?? HELP;
}

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd = 'help', ...rest] = argv;
  const known = cmd === 'perf' || SUB_HELP[cmd] !== undefined;
  if (known && asksHelp(rest)) {
    process.stdout.write(await helpOf(cmd));
    return 0;
  }
  try {
    return await dispatch(cmd, rest);
  } catch (err) {
    // node:util parseArgs throws on an unknown option, a missing value or a stray operand: a usage
    // error (exit 2 with the command's usage), not a crash with a stack trace.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
      process.stderr.write(`ferry ${cmd}: ${(err as Error).message}\n${await helpOf(cmd)}`);
      return 2;
    }
    throw err;
  }
}

async function dispatch(cmd: string, rest: string[]): Promise<number> {
  switch (cmd) {
    case 'daemon':
      return runDaemon(rest);
    case 'show':
      return runShow(rest);
    case 'health':
      return runHealth(rest);
    case 'config':
      return runConfig(rest);
    case 'top': {
      const { topMain } = await import('./top/top-cli.js');
      return topMain(rest);
    }
    case 'perf': {
      const { perfMain } = await import('./perf/perf-cli.js');
      return perfMain(rest);
    }
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return 0;
    default:
      process.stderr.write(`ferry: unknown command '${cmd}'\n${HELP}`);
      return 2;
  }
}

async function runDaemon(args: string[]): Promise<number> {
  const { loadConfig } = await import('./config/load.js');
  const { validateConfig } = await import('./config.js');
  const { Daemon } = await import('./daemon.js');
  const { exitOnFatal } = await import('./fatal.js');
  const { createLogger } = await import('./log/logger.js');
  const { values } = parseArgs({
    args,
    options: {
      socket: { type: 'string' },
      demo: { type: 'boolean', default: false },
      'tcp-connect-timeout-ms': { type: 'string' },
      config: { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      metrics: { type: 'string' },
      'log-level': { type: 'string' },
      'log-format': { type: 'string' },
    },
  });
  const overrides: Partial<DaemonConfig> = {};
  if (values['log-level'] !== undefined) overrides.logLevel = values['log-level'] as DaemonConfig['logLevel'];
  if (values['log-format'] !== undefined)
    overrides.logFormat = values['log-format'] as DaemonConfig['logFormat'];
  if (values.metrics !== undefined) overrides.metrics = { listen: values.metrics };
  if (values.socket) overrides.socket = values.socket;
  try {
    if (values['tcp-connect-timeout-ms'] !== undefined) {
      overrides.tcpConnectTimeoutMs = cliInt(
        'tcp-connect-timeout-ms',
        values['tcp-connect-timeout-ms'],
        1,
        9500,
      );
    }
  } catch (err) {
    process.stderr.write(`ferryd: ${(err as Error).message}\n`);
    return 2;
  }
  if (values['tls-cert']) overrides.tlsCertFile = values['tls-cert'];
  if (values['tls-key']) overrides.tlsKeyFile = values['tls-key'];
  const loadOpts: LoadOptions = { file: values.config, overrides };
  let daemon: Daemon;
  let logger: Logger;
  try {
    // Checked before the logger is made from it: a bad --log-level is reported like any option.
    const config = validateConfig(loadConfig(loadOpts));
    logger = createLogger({ level: config.logLevel, format: config.logFormat });
    daemon = new Daemon(config, logger);
  } catch (err) {
    process.stderr.write(`ferryd: ${(err as Error).message}\n`);
    return 2;
  }
  const config = daemon.config;
  logger.info(`configuration: ${configFileOf(loadOpts) ?? 'built-in defaults'}`);
  try {
    daemon.start();
  } catch (err) {
    // EADDRINUSE (another ferryd), EACCES on the socket directory, an unknown socketGroup.
    process.stderr.write(`ferryd: cannot start: ${(err as Error).message}\n`);
    daemon.stop();
    return 1;
  }
  try {
    const m = await daemon.startMetrics();
    if (m)
      logger.info(
        `metrics on http://${m.family === 'IPv6' ? `[${m.address}]` : m.address}:${m.port}/metrics`,
      );
  } catch (err) {
    process.stderr.write(`ferryd: cannot serve metrics: ${(err as Error).message}\n`);
    daemon.stop();
    return 1;
  }
  process.on('SIGHUP', () => {
    try {
      const o = daemon.reload(loadConfig(loadOpts));
      const restart =
        o.needsRestart.length > 0 ? `; needs a restart, kept: ${o.needsRestart.join(', ')}` : '';
      logger.info(
        `configuration reloaded: ${o.applied.length > 0 ? o.applied.join(', ') : 'no change'}${restart}`,
      );
    } catch (err) {
      daemon.policy.counters.reloadFailures++;
      logger.error(`configuration reload refused, the running one stays: ${(err as Error).message}`);
    }
  });
  exitOnFatal(
    () => daemon.stop(),
    (line) => process.stderr.write(line),
  );
  logger.info(`listening on ${config.socket} (admin ${config.socket}.admin), pid ${process.pid}`);
  const stop = () => {
    logger.info('stopping');
    daemon.stop();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  if (values.demo) {
    const { runDemo } = await import('./demo.js');
    await runDemo(config.socket, (line) => logger.info(line));
  }
  // Keep running: the control socket is watched off the event loop, so hold the loop open.
  setInterval(() => {}, 1 << 30);
  return new Promise<number>(() => {});
}

/** For container healthchecks: ferryd is healthy when its admin socket answers in time. */
async function runHealth(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { socket: { type: 'string' }, 'timeout-ms': { type: 'string', default: '2000' } },
  });
  const socket = values.socket ?? socketOf({});
  let timeoutMs: number;
  try {
    timeoutMs = cliInt('timeout-ms', values['timeout-ms'], 1, 600_000);
  } catch (err) {
    process.stderr.write(`ferry health: ${(err as Error).message}\n`);
    return 2;
  }
  try {
    const stats = (await queryAdmin(socket, 'stats', timeoutMs)) as {
      apps: number;
      sessions: number;
    };
    process.stdout.write(`ok: ferryd at ${socket}, ${stats.apps} apps, ${stats.sessions} sessions\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`ferry health: ${(err as Error).message}\n`);
    return 1;
  }
}

async function runShow(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      socket: { type: 'string' },
      config: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const what = positionals[0] ?? 'sessions';
  if (!(SHOW_TOPICS as readonly string[]).includes(what)) {
    process.stderr.write(`ferry show: one of ${SHOW_TOPICS.join(', ')}\n`);
    return 2;
  }
  try {
    const socket = values.socket ?? socketOf({ file: values.config });
    const data = await queryAdmin(socket, what);
    process.stdout.write(values.json ? `${JSON.stringify(data)}\n` : formatShow(data));
    return 0;
  } catch (err) {
    process.stderr.write(`ferry show: ${(err as Error).message}\n`);
    return 1;
  }
}

async function runConfig(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: 'string' } },
  });
  const { describeConfig, defaultsDocument } = await import('./config/describe.js');
  const { ConfigError, loadConfig } = await import('./config/load.js');
  switch (positionals[0]) {
    case 'check':
      try {
        const config = loadConfig({ file: values.config });
        process.stdout.write(`${JSON.stringify(describeConfig(config), null, 2)}\n`);
        return 0;
      } catch (err) {
        process.stderr.write(`ferry config: ${(err as Error).message}\n`);
        return err instanceof ConfigError ? 2 : 1;
      }
    case 'defaults':
      process.stdout.write(`${JSON.stringify(defaultsDocument(), null, 2)}\n`);
      return 0;
    case 'schema': {
      const { configJsonSchema } = await import('./config/docs.js');
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return 0;
    }
    default:
      process.stderr.write('ferry config: check [--config FILE] | defaults | schema\n');
      return 2;
  }
}
