/**
 * The moderation error catalogue. Every failure `classify()` can reject with has a stable `code`,
 * a `retriable` flag and the HTTP status the gateway should answer with, so the route
 * `POST /v1/moderation/images` maps an error with one table lookup. Errors cross the worker
 * boundary as `{ code, message }` and are rebuilt here: branch on `code`, never on `instanceof`.
 * `docs/moderation.md` documents every code (a test checks it).
 */
export const moderationErrors = {
  image_too_large: {
    httpStatus: 413,
    retriable: false,
    doc: 'The upload is larger than `moderation.maxBytes`; checked before any decoding.',
  },
  image_not_an_image: {
    httpStatus: 422,
    retriable: false,
    doc: 'The bytes are empty, or are not a JPEG, PNG or WebP image that can be parsed.',
  },
  image_unsupported_type: {
    httpStatus: 415,
    retriable: false,
    doc:
      'The declared content type, or the format detected from the bytes, is not one of ' +
      '`image/jpeg`, `image/png`, `image/webp` (GIF, SVG, TIFF, BMP, HEIF/AVIF, text, ...).',
  },
  image_type_mismatch: {
    httpStatus: 415,
    retriable: false,
    doc: 'The declared content type names a different supported format than the bytes contain.',
  },
  image_truncated: {
    httpStatus: 422,
    retriable: false,
    doc: 'The header is valid but the data ends early or the pixel data is corrupt.',
  },
  image_too_many_pixels: {
    httpStatus: 413,
    retriable: false,
    doc:
      'width × height from the header exceeds `moderation.maxPixels`, or a side passes 16,384 pixels (decompression-bomb guards); ' +
      'rejected before the pixels are decoded.',
  },
  moderation_overloaded: {
    httpStatus: 503,
    retriable: true,
    doc: 'More than `moderation.queueMax` images are already waiting; retry after a short delay.',
  },
  moderation_timeout: {
    httpStatus: 503,
    retriable: true,
    doc: 'No verdict within `moderation.taskTimeoutMs` (queue wait included).',
  },
  moderation_aborted: {
    httpStatus: 499,
    retriable: false,
    doc: "The caller's AbortSignal fired first (499: the client went away; nobody to answer).",
  },
  moderation_closed: {
    httpStatus: 503,
    retriable: true,
    doc: 'The moderator is closing or closed; another instance may answer.',
  },
  moderation_inference_failed: {
    httpStatus: 500,
    retriable: true,
    doc: 'The model failed to run on the batch, or its worker thread died (a fault; see `cause`).',
  },
  model_invalid: {
    httpStatus: 500,
    retriable: false,
    doc:
      'The model directory is missing a file, a config is malformed or inconsistent, or the ' +
      'ONNX graph does not match the configs. Raised by `createModerator`, not per image.',
  },
} as const;

export type ModerationErrorCode = keyof typeof moderationErrors;

export const moderationErrorCodes = Object.freeze(
  Object.keys(moderationErrors) as ModerationErrorCode[],
);

export class ModerationError extends Error {
  readonly code: ModerationErrorCode;
  readonly retriable: boolean;
  /** The status the gateway should answer with. */
  readonly httpStatus: number;

  constructor(code: ModerationErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModerationError';
    this.code = code;
    this.retriable = moderationErrors[code].retriable;
    this.httpStatus = moderationErrors[code].httpStatus;
  }
}

/** True for any value carrying a moderation error code, including structured-cloned copies. */
export function isModerationError(err: unknown): err is ModerationError {
  if (err === null || typeof err !== 'object') return false;
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && Object.hasOwn(moderationErrors, code);
}
