/**
 * The gateway's error codes, in the same shape as the engine's catalogue (`engine/errors.ts`):
 * a stable `code`, whether a retry may succeed, the HTTP status, and a sentence for the docs.
 * They live in the one catalogue (`engine/errors.ts`); `GATEWAY_ERRORS` is the part of it
 * that only the gateway answers with, and every error body the gateway writes uses a code from
 * the catalogue.
 *
 * Error bodies are JSON strings made once at startup (per code, and per code × field / state),
 * so the hot path concatenates nothing to answer `sold_out`.
 */
import { ERROR_CATALOGUE } from '../engine/index.js';
import type { CodeInfo, ErrorCode } from '../engine/index.js';

/** The catalogue codes that only the gateway answers with (protocol, auth, admission). */
const GATEWAY_ONLY = [
  'malformed_request',
  'malformed_json',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'request_timeout',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'not_ready',
  'internal',
] as const;

export const GATEWAY_ERRORS = Object.fromEntries(
  GATEWAY_ONLY.map((code) => [code, ERROR_CATALOGUE[code]]),
) as { [K in (typeof GATEWAY_ONLY)[number]]: (typeof ERROR_CATALOGUE)[K] };

export type GatewayErrorCode = keyof typeof GATEWAY_ERRORS;
export type GatewayCode = ErrorCode | GatewayErrorCode;

const ALL: Record<string, CodeInfo> = ERROR_CATALOGUE;

export function codeInfo(code: GatewayCode): CodeInfo {
  return ALL[code];
}

/** Every code the gateway may answer with, engine codes first. */
export const GATEWAY_CODES = Object.keys(ALL) as GatewayCode[];

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** `"409 Conflict"`, the form `res.writeStatus` takes. */
export function statusLine(http: number): string {
  return `${http} ${STATUS_TEXT[http] ?? 'Unknown'}`;
}

/** The JSON error body for a code; `detail` replaces the catalogue sentence as the message. */
export function errorJson(
  code: GatewayCode,
  extra?: { field?: string; state?: string; message?: string },
): string {
  const info = ALL[code];
  const error: Record<string, unknown> = {
    code,
    message: extra?.message ?? info.description,
    retriable: info.retriable,
  };
  if (extra?.field !== undefined) error.field = extra.field;
  if (extra?.state !== undefined) error.state = extra.state;
  return JSON.stringify({ error });
}

/** A ready-to-send error: status line, body and whether to add `Retry-After`. */
export interface ErrorReply {
  readonly code: GatewayCode;
  readonly http: number;
  readonly status: string;
  readonly body: string;
  readonly retryAfter: boolean;
  /** The field (`invalid`) or state (`invalid_transition`) it names, for the audit log. */
  readonly detail: string | null;
}

function makeReply(code: GatewayCode, extra?: { field?: string; state?: string }): ErrorReply {
  const info = ALL[code];
  return Object.freeze({
    code,
    http: info.http,
    status: statusLine(info.http),
    body: errorJson(code, extra),
    retryAfter:
      code === 'overloaded' ||
      code === 'rate_limited' ||
      code === 'not_ready' ||
      code === 'shard_unavailable' ||
      code === 'store_unavailable' ||
      code === 'moderation_overloaded',
    detail: extra?.field ?? extra?.state ?? null,
  });
}

const plainReplies = new Map<string, ErrorReply>();
for (const code of GATEWAY_CODES) plainReplies.set(code, makeReply(code));
const detailed = new Map<string, ErrorReply>();

/**
 * The shared reply for a code (and optional field or state). Field and state come from small
 * closed sets (the engine's invalid fields, the reservation states and the gateway's own field
 * names), so the cache stays small.
 */
export function errorReply(code: GatewayCode, field?: string, state?: string): ErrorReply {
  if (field === undefined && state === undefined) return plainReplies.get(code)!;
  const key = `${code}\u0000${field ?? ''}\u0000${state ?? ''}`;
  let r = detailed.get(key);
  if (!r) {
    r = makeReply(code, { field, state });
    if (detailed.size < 1024) detailed.set(key, r);
  }
  return r;
}

/** A reply whose message says more than the catalogue sentence (e.g. the accepted methods). */
export function errorReplyWithMessage(
  code: GatewayCode,
  message: string,
  field?: string,
): ErrorReply {
  const base = errorReply(code, field);
  return { ...base, body: errorJson(code, { message, field }) };
}
