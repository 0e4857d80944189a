// memfd files and their seals: the backing store of shared-memory segments.

import { ferryError } from '../errors.js';
import {
  F_ADD_SEALS,
  F_GET_SEALS,
  F_SEAL_GROW,
  F_SEAL_SEAL,
  F_SEAL_SHRINK,
  F_SEAL_WRITE,
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  STAT_SIZE,
  STAT_ST_SIZE,
} from './constants.js';
import { libc } from './libc.js';
import { check } from './sys-error.js';
import { validateFd, validateRange } from './validate.js';

/** File seals (F_SEAL_*): once added they cannot be removed. */
export const SEAL = {
  SEAL: F_SEAL_SEAL,
  SHRINK: F_SEAL_SHRINK,
  GROW: F_SEAL_GROW,
  WRITE: F_SEAL_WRITE,
} as const satisfies Record<string, number>;

const ALL_SEALS = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
/** The kernel limits memfd names to 249 bytes (NAME_MAX minus the "memfd:" prefix). */
const MEMFD_NAME_MAX = 249;
const statScratch = new Uint8Array(STAT_SIZE);
const statView = new DataView(statScratch.buffer);

/** An anonymous memory file (MFD_CLOEXEC always); sealable only with allowSealing. */
export function memfdCreate(name: string, opts?: { allowSealing?: boolean }): number {
  if (typeof name !== 'string') throw ferryError('ERR_INVALID_ARG_TYPE', 'name must be a string');
  if (Buffer.byteLength(name) > MEMFD_NAME_MAX || name.includes('\0')) {
    throw ferryError('ERR_INVALID_ARG_VALUE', `memfd name must be at most ${MEMFD_NAME_MAX} bytes, no NUL`);
  }
  const flags = MFD_CLOEXEC | (opts?.allowSealing ? MFD_ALLOW_SEALING : 0);
  return check('memfd_create', () => libc.memfdCreate(name, flags));
}

export function ftruncate(fd: number, size: number): void {
  validateFd(fd);
  validateRange(size, 'size', 0, Number.MAX_SAFE_INTEGER);
  check('ftruncate', () => libc.ftruncate(fd, size));
}

/** st_size of fd. */
export function fstatSize(fd: number): number {
  validateFd(fd);
  check('fstat', () => libc.fstat(fd, statScratch));
  return Number(statView.getBigInt64(STAT_ST_SIZE, true));
}

/** Adds seals (a mask of SEAL values); fails with EPERM once SEAL.SEAL is set. */
export function addSeals(fd: number, seals: number): void {
  validateFd(fd);
  validateRange(seals, 'seals', 1, ALL_SEALS);
  check('fcntl', () => libc.fcntl(fd, F_ADD_SEALS, 'int', seals), 'F_ADD_SEALS');
}

/** The seals set on fd (a mask of SEAL values). */
export function getSeals(fd: number): number {
  validateFd(fd);
  return check('fcntl', () => libc.fcntl(fd, F_GET_SEALS), 'F_GET_SEALS');
}
