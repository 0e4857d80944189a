/**
 * A whole number >= 0 from a command-line option, or `fallback` when it is absent; anything else
 * exits with usage status 2, saying which program (`who`) and which option (`name`).
 */
export function wholeOption(text: string | undefined, fallback: number, name: string, who = 'bench'): number {
  const n = Number(text ?? fallback);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`${who}: --${name} must be a whole number >= 0, got ${text}\n`);
    process.exit(2);
  }
  return n;
}
