/** @ferry/sdk public surface: explicit named exports only. */
export { ERROR_MESSAGES, type ErrorCode, FerryError } from './errors.js';
