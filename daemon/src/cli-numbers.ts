/** Numbers given on the command line: whole decimal integers in a range, or a clear error. */

/**
 * `text` as an integer in min..max; throws ERR_INVALID_ARG_VALUE naming the flag, the range and
 * what was given (`Number()` would take '', '1e3', '0x10' and ' 5', and NaN would travel on).
 */
export function cliInt(flag: string, text: string, min: number, max: number): number {
  const n = /^-?\d{1,16}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    // A plain Error with the code (not FerryError): this module loads with `ferry health`, which
    // must start without the SDK.
    const err = new Error(`--${flag}: expected an integer in ${min}..${max}, got ${JSON.stringify(text)}`);
    throw Object.assign(err, { code: 'ERR_INVALID_ARG_VALUE' });
  }
  return n;
}

/** Like cliInt, for a flag that may be absent. */
export function cliIntOr(
  flag: string,
  text: string | undefined,
  min: number,
  max: number,
  dflt: number,
): number {
  return text === undefined ? dflt : cliInt(flag, text, min, max);
}
