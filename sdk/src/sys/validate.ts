// Argument checks for sys/ entry points (programmer errors, thrown synchronously).

import { ferryError } from '../errors.js';

/** fd must be an integer; negative values are left to the kernel so they surface as EBADF. */
export function validateFd(fd: unknown, name = 'fd'): asserts fd is number {
  if (typeof fd !== 'number' || !Number.isInteger(fd)) {
    throw ferryError('ERR_INVALID_ARG_TYPE', `${name} must be an integer, got ${String(fd)}`);
  }
}

export function validateBytes(buf: unknown, name: string): asserts buf is Uint8Array {
  if (!(buf instanceof Uint8Array)) throw ferryError('ERR_INVALID_ARG_TYPE', `${name} must be a Uint8Array`);
}

export function validateRange(
  value: unknown,
  name: string,
  min: number,
  max: number,
): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw ferryError('ERR_INVALID_ARG_TYPE', `${name} must be an integer, got ${String(value)}`);
  }
  if (value < min || value > max) {
    throw ferryError('ERR_OUT_OF_RANGE', `${name} must be in [${min}, ${max}], got ${value}`);
  }
}
