/**
 * Moderation's faults. Every failure `classify()` can reject with has a code in the one
 * catalogue (actors/errors.ts) with its `retriable` flag and the HTTP status the gateway
 * answers with. Errors cross the worker boundary as `{ code, message }` and are rebuilt here:
 * branch on `code`, never on `instanceof`. `docs/moderation.md` documents every code (a test
 * checks it).
 */
import { ERROR_CATALOGUE, StockadeError } from '../actors/index.js';

export const moderationErrorCodes = Object.freeze([
  'image_too_large',
  'image_not_an_image',
  'image_unsupported_type',
  'image_type_mismatch',
  'image_truncated',
  'image_too_many_pixels',
  'moderation_overloaded',
  'moderation_timeout',
  'moderation_aborted',
  'moderation_closed',
  'moderation_inference_failed',
  'model_invalid',
] as const);

export type ModerationErrorCode = (typeof moderationErrorCodes)[number];

/** The catalogue entries of the moderation codes (status, retriable, description). */
export const moderationErrors = Object.fromEntries(
  moderationErrorCodes.map((code) => [code, ERROR_CATALOGUE[code]]),
) as { [K in ModerationErrorCode]: (typeof ERROR_CATALOGUE)[K] };

export class ModerationError extends StockadeError<ModerationErrorCode> {
  constructor(code: ModerationErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'ModerationError';
  }
}

const codes = new Set<string>(moderationErrorCodes);

/** True for any value carrying a moderation error code, including structured-cloned copies. */
export function isModerationError(err: unknown): err is ModerationError {
  if (err === null || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && codes.has(code);
}
