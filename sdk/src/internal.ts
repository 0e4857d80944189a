/** @ferry/sdk/internal: the layers ferryd, the examples and e2e build on. Not a stable API. */
export { ERROR_MESSAGES, type ErrorCode, FerryError, ferryError, isErrorCode } from './errors.js';
