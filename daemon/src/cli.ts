/** The `ferry` command: subcommands for the daemon, inspection and tools. */

const HELP = `Usage: ferry <command> [options]

Commands:
  daemon [--socket PATH|@NAME] [--config FILE]   run ferryd in the foreground
  help                                           show this help
`;

export async function main(argv: readonly string[]): Promise<number> {
  const [cmd = 'help'] = argv;
  switch (cmd) {
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
