/**
 * The engine's faults. The catalogue of every code is actors/errors.ts (re-exported here, the
 * engine's face being Stockade's public one).
 */
import { StockadeError } from '../actors/index.js';
import type { ErrorCode } from '../actors/index.js';

export { ERROR_CATALOGUE, StockadeError, isErrorCode } from '../actors/index.js';
export type { CodeInfo, ErrorCode } from '../actors/index.js';

/** A fault the engine throws (business outcomes are returned as results instead). */
export class EngineError extends StockadeError {
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'EngineError';
  }
}
