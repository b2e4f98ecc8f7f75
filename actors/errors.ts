/**
 * The one catalogue of outcome and error codes, for every folder: each rejection a command can
 * return and each fault any part of Stockade can throw (engine, journal, projection,
 * moderation, gateway) has a stable `code` here, whether it is worth retrying, the HTTP status
 * the gateway maps it to, and a sentence for the docs (a test checks the README lists every
 * code). It lives in actors/, the lowest folder every other may import, beside the outcome
 * codes the actor returns (status.ts).
 *
 * Every fault is a `StockadeError`: one class, one shape (`code`, `retriable`, `http`, and the
 * message). The folders' own classes (`EngineError`, `JournalError`, `ProjectionError`,
 * `ModerationError`) only narrow the codes they use. Across threads, branch on `code`, never on
 * `instanceof`: structured clone keeps an error's own fields, not its class.
 */
export interface CodeInfo {
  readonly retriable: boolean;
  readonly http: number;
  readonly description: string;
}

export const ERROR_CATALOGUE = {
  sold_out: {
    retriable: false,
    http: 409,
    description: 'Not enough units left for this quantity.',
  },
  limit_exceeded: {
    retriable: false,
    http: 409,
    description: 'The user would hold or own more than the SKU’s per-user limit.',
  },
  not_open: {
    retriable: true,
    http: 403,
    description: 'The sale has not started yet (`startsAt`).',
  },
  closed: {
    retriable: false,
    http: 403,
    description: 'The sale has ended (`endsAt` passed or `closeSale`).',
  },
  unknown_sku: { retriable: false, http: 404, description: 'No SKU with this id is defined.' },
  invalid: {
    retriable: false,
    http: 422,
    description: 'A field is missing or out of range; `field` names it. Nothing was changed.',
  },
  idempotency_conflict: {
    retriable: false,
    http: 409,
    description: 'The idempotency key was already used on this SKU with another user or quantity.',
  },
  overloaded: {
    retriable: true,
    http: 503,
    description: 'The shard’s queue is full; retry shortly with the same idempotency key.',
  },
  hold_expired: {
    retriable: false,
    http: 409,
    description:
      'The reservation’s hold ran out before it was confirmed; its units went back on sale.',
  },
  unknown_reservation: {
    retriable: false,
    http: 404,
    description: 'No reservation with this id exists.',
  },
  invalid_transition: {
    retriable: false,
    http: 409,
    description:
      'The reservation is in a state where this command does not apply; `state` says which.',
  },
  sku_exists: {
    retriable: false,
    http: 409,
    description: 'A SKU with this id is already defined.',
  },
  shard_unavailable: {
    retriable: true,
    http: 503,
    description:
      'The shard that owns the SKU is not running (crashed or restarting); retry with the same key.',
  },
  journal_unavailable: {
    retriable: true,
    http: 503,
    description:
      'The journal could not make the decision durable (disk or broker fault); nothing was confirmed. Retry with the same idempotency key.',
  },
  journal_corrupt: {
    retriable: false,
    http: 500,
    description: 'The journal holds data that does not decode; recovery stops rather than guess.',
  },
  journal_mismatch: {
    retriable: false,
    http: 500,
    description: 'The journal was written by a different shard count or format than configured.',
  },
  journal_fenced: {
    retriable: true,
    http: 503,
    description:
      'Another writer extended this shard’s journal first (a new owner of the partition, or an earlier send that landed late): nothing was confirmed, and the shard rebuilds from the journal. Retry with the same idempotency key.',
  },
  journal_unreplicated: {
    retriable: false,
    http: 500,
    description:
      'The Kafka journal topic can lose an acknowledged purchase (fewer than 2 replicas, `min.insync.replicas` below 2, or unclean leader election on) and `kafka.requireReplication` is on.',
  },
  journal_locked: {
    retriable: false,
    http: 500,
    description:
      'Another process is writing this journal directory (`stockade.lock` names it); one process at a time may.',
  },
  engine_closed: {
    retriable: false,
    http: 503,
    description: 'The engine was closed; no new commands are taken.',
  },
  events_overflow: {
    retriable: false,
    http: 500,
    description:
      'An event subscriber fell more than `engine.eventsBufferMax` events behind and was ended.',
  },
  config_invalid: {
    retriable: false,
    http: 500,
    description:
      'A configuration value is unknown or out of range; the message names the key and range.',
  },
  // The MySQL projection (persistence/stores/): raised to its onError path and retried there.
  projection_unavailable: {
    retriable: true,
    http: 503,
    description:
      'MySQL could not be reached or a projection batch failed; the batch is rolled back and retried with backoff, no event is skipped.',
  },
  projection_corrupt: {
    retriable: false,
    http: 500,
    description:
      'A SKU row does not follow from the journal (a gap in its event seq, or events before its definition); the projector stops at that batch.',
  },
  migration_locked: {
    retriable: true,
    http: 503,
    description: 'Another `stockade migrate` held the schema lock for more than 30 s.',
  },
  migration_unsupported: {
    retriable: false,
    http: 500,
    description:
      'The MySQL server is too old for the schema: it needs a NO PAD binary collation (MariaDB 10.2+, MySQL 8.0+).',
  },
  // Products and image moderation (cli/catalog-service.ts, moderation/). moderation/errors.ts
  // lists which of these codes the moderation pool rejects with; their entries live only here.
  unknown_product: { retriable: false, http: 404, description: 'No product with this id exists.' },
  version_conflict: {
    retriable: false,
    http: 409,
    description:
      'The product changed since the `version` the update was based on; read it again and retry.',
  },
  moderation_required: {
    retriable: false,
    http: 409,
    description:
      'The SKU’s product has images not yet allowed by moderation (the message says which and ' +
      'its state); the sale cannot be defined or changed without `"moderationOverride": true`.',
  },
  store_unavailable: {
    retriable: true,
    http: 503,
    description: 'The product store (MySQL) did not answer.',
  },
  feature_disabled: {
    retriable: false,
    http: 404,
    description:
      'This server runs without the feature the route needs: products (`stockade serve ' +
      '--products`) or image moderation (`--moderation`); the message says which. Retrying ' +
      'cannot help.',
  },
  image_too_large: {
    retriable: false,
    http: 413,
    description: 'The image is larger than `moderation.maxBytes`; nothing was decoded.',
  },
  image_not_an_image: {
    retriable: false,
    http: 422,
    description: 'The body is empty, or is not a JPEG, PNG or WebP image that can be parsed.',
  },
  image_unsupported_type: {
    retriable: false,
    http: 415,
    description:
      'The Content-Type or the format of the bytes is not `image/jpeg`, `image/png` or ' +
      '`image/webp`.',
  },
  image_type_mismatch: {
    retriable: false,
    http: 415,
    description: 'The Content-Type names a different image format than the bytes contain.',
  },
  image_truncated: {
    retriable: false,
    http: 422,
    description: 'The image header is valid but the data ends early or the pixels are corrupt.',
  },
  image_too_many_pixels: {
    retriable: false,
    http: 413,
    description:
      'width × height exceeds `moderation.maxPixels`, or a side passes 16,384 pixels (decompression-bomb guards).',
  },
  moderation_overloaded: {
    retriable: true,
    http: 503,
    description: 'More than `moderation.queueMax` images are waiting; retry shortly.',
  },
  moderation_timeout: {
    retriable: true,
    http: 503,
    description: 'No verdict within `moderation.taskTimeoutMs`, queue wait included.',
  },
  moderation_closed: {
    retriable: true,
    http: 503,
    description: 'The moderation pool is shutting down.',
  },
  moderation_inference_failed: {
    retriable: true,
    http: 500,
    description: 'The model failed on the image or its worker thread died; it was logged.',
  },
  moderation_aborted: {
    retriable: false,
    http: 499,
    description:
      "The caller's AbortSignal fired first (499: the client went away; nobody is answered).",
  },
  model_invalid: {
    retriable: false,
    http: 500,
    description:
      'The model directory is missing a file, a config is malformed or inconsistent, or the ONNX graph does not match the configs (raised when moderation starts, not per image).',
  },
  // Protocol-level codes, answered by the gateway before a request reaches the engine.
  malformed_request: {
    retriable: false,
    http: 400,
    description:
      "The request's `Content-Length` is not a plain decimal number. The connection is closed.",
  },
  malformed_json: {
    retriable: false,
    http: 400,
    description: 'The request body is not valid JSON, or not a JSON object. Nothing was changed.',
  },
  unauthorized: {
    retriable: false,
    http: 401,
    description:
      'No bearer token, or one that is malformed, badly signed, expired or not yet valid.',
  },
  forbidden: {
    retriable: false,
    http: 403,
    description: 'The token is valid but lacks `role: "admin"`.',
  },
  not_found: { retriable: false, http: 404, description: 'No route matches this path.' },
  method_not_allowed: {
    retriable: false,
    http: 405,
    description: 'The route exists but not for this method; `Allow` lists the ones it takes.',
  },
  request_timeout: {
    retriable: true,
    http: 408,
    description: 'The request body did not arrive within `gateway.bodyTimeoutMs`.',
  },
  payload_too_large: {
    retriable: false,
    http: 413,
    description: 'The body (or WebSocket message) is larger than `gateway.bodyBytesMax`.',
  },
  unsupported_media_type: {
    retriable: false,
    http: 415,
    description: 'A request with a body must send `Content-Type: application/json`.',
  },
  rate_limited: {
    retriable: true,
    http: 429,
    description:
      'The user spent their token bucket; retry after `Retry-After` seconds with the same key.',
  },
  not_ready: {
    retriable: true,
    http: 503,
    description:
      'The engine is still starting (or recovering its journal), or the server is shutting down.',
  },
  internal: { retriable: true, http: 500, description: 'An unexpected fault; it was logged.' },
} as const satisfies Record<string, CodeInfo>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CATALOGUE, code);
}

/** A fault, with its catalogue entry's `retriable` flag and HTTP status. */
export class StockadeError<C extends ErrorCode = ErrorCode> extends Error {
  readonly code: C;
  readonly retriable: boolean;
  readonly http: number;

  constructor(code: C, message?: string, options?: { cause?: unknown }) {
    super(message ?? ERROR_CATALOGUE[code].description, options);
    this.name = 'StockadeError';
    this.code = code;
    this.retriable = ERROR_CATALOGUE[code].retriable;
    this.http = ERROR_CATALOGUE[code].http;
  }
}

/**
 * An error's message; for an AggregateError (a connect that tried several addresses), its first.
 */
export function messageOf(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length > 0) return messageOf(e.errors[0]);
  return e instanceof Error ? e.message : String(e);
}
