/**
 * The common gate of every engine-bound HTTP route, in this order, before anything reaches the
 * engine: ready → auth → content type and declared length → admission (in-flight bound).
 */
import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse } from '@trufflesuite/uws-js-unofficial';
import { AUDIT_KINDS, auditReply, auditTargetOf } from './audit.js';
import type { GatewayContext } from './context.js';
import { errorReply, errorReplyWithMessage } from './errors.js';
import type { ErrorReply } from './errors.js';
import { HttpExchange, isJsonContentType, replyNow } from './http-exchange.js';

type Access = 'public' | 'user' | 'admin';

/** The size of uWS's per-loop cork buffer (`LoopData::CORK_BUFFER_SIZE`). */
const UWS_CORK_BUFFER_BYTES = 16 * 1024;

/** `overloaded`, said by the gateway's admission bound rather than a shard queue. */
export const GATEWAY_BUSY = errorReplyWithMessage(
  'overloaded',
  'Too many requests in flight at this gateway; retry shortly with the same idempotency key.',
);

/** What a route with a body accepts before it is admitted (JSON by default). */
export interface BodyRule {
  accepts(contentType: string): boolean;
  unsupported: ErrorReply;
  bytesMax: number;
  tooLarge: ErrorReply;
}

/** What a route asks of the gate; made once per route, when the routes are registered. */
export interface Gate {
  readonly route: number;
  readonly access: Access;
  /** false: no body; true: a JSON body; or the rule of a raw body (an image). */
  readonly body: boolean | BodyRule;
}

export function gate<B extends boolean | BodyRule>(
  route: number,
  access: Access,
  body: B,
): Gate & { readonly body: B } {
  return Object.freeze({ route, access, body });
}

/**
 * The common gate of an engine-bound route: answers at once and returns null when the request
 * may not proceed, else returns the admitted exchange.
 */
export function begin(
  res: HttpResponse,
  req: HttpRequest,
  ctx: GatewayContext,
  g: Gate,
): HttpExchange | null {
  const started = performance.now();
  // The refusals build their record only when they happen: the admitted path allocates none.
  if (malformedLength(req)) {
    return deny(res, req, ctx, refusal(g, started, MALFORMED_REQUEST, null, true));
  }
  if (!ctx.ready) return deny(res, req, ctx, refusal(g, started, errorReply('not_ready'), null));
  let userId: string | null = null;
  let admin = false;
  if (g.access !== 'public') {
    const p = ctx.authenticate(req.getHeader('authorization'));
    if (p === null)
      return deny(res, req, ctx, refusal(g, started, errorReply('unauthorized'), null));
    if (p !== undefined) {
      if (g.access === 'admin' && !p.admin) {
        return deny(res, req, ctx, refusal(g, started, errorReply('forbidden'), p.userId));
      }
      userId = p.userId;
      admin = p.admin;
    }
  }
  if (g.body !== false) {
    const bad = bodyRefusal(req, ctx, g.body === true ? null : g.body);
    if (bad !== null) return deny(res, req, ctx, refusal(g, started, bad.reply, userId, bad.close));
  }
  if (!ctx.admit()) return deny(res, req, ctx, refusal(g, started, GATEWAY_BUSY, userId));
  const x = new HttpExchange(res, ctx, g.route, started, req.getParameter(0) ?? '');
  x.userId = userId;
  x.admin = admin;
  return x;
}

/** Why a request's declared body may not be read (type or length), or null. */
function bodyRefusal(
  req: HttpRequest,
  ctx: GatewayContext,
  rule: BodyRule | null,
): { reply: ErrorReply; close: boolean } | null {
  const ct = req.getHeader('content-type');
  if (rule === null ? !isJsonContentType(ct) : !rule.accepts(ct)) {
    return { reply: rule?.unsupported ?? errorReply('unsupported_media_type'), close: false };
  }
  const length = req.getHeader('content-length');
  if (length !== '' && Number(length) > (rule?.bytesMax ?? ctx.bodyBytesMax)) {
    return { reply: rule?.tooLarge ?? errorReply('payload_too_large'), close: true };
  }
  return null;
}

/**
 * The reply to a malformed Content-Length. uWS.js 20.30 calls the handler, then fails to parse
 * the length and closes the socket at once, dropping what the handler wrote into the socket's
 * cork buffer. A reply longer than that buffer (16 KiB) is written through to the socket
 * instead, so the body is padded with whitespace (which JSON allows) past it.
 */
const MALFORMED_REQUEST: ErrorReply = (() => {
  const reply = errorReply('malformed_request');
  return { ...reply, body: reply.body + ' '.repeat(UWS_CORK_BUFFER_BYTES) };
})();

/**
 * Whether the request's Content-Length is not one HTTP allows. uWS hands such a request to its
 * route, then closes the connection without a word: every route answers it first, whatever its
 * method (see `MALFORMED_REQUEST`).
 */
function malformedLength(req: HttpRequest): boolean {
  const length = req.getHeader('content-length');
  return length !== '' && !isDecimal(length);
}

/**
 * For a route without a gate (health, metrics, the page, 404 and 405): answers a malformed
 * Content-Length with 400 `malformed_request` and returns true, else returns false.
 */
export function refusedMalformedLength(
  res: HttpResponse,
  req: HttpRequest,
  ctx: GatewayContext,
  route: number,
): boolean {
  if (!malformedLength(req)) return false;
  replyNow(res, ctx, route, performance.now(), MALFORMED_REQUEST, true);
  return true;
}

/** A Content-Length as HTTP allows it: decimal digits only (no sign, space or exponent). */
function isDecimal(s: string): boolean {
  if (s.length > 15) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** A refusal by the gate: the reply, for whom, and whether the connection closes after it. */
interface Refusal {
  route: number;
  started: number;
  reply: ErrorReply;
  userId: string | null;
  close: boolean;
}

function refusal(
  g: Gate,
  started: number,
  reply: ErrorReply,
  userId: string | null,
  close = false,
): Refusal {
  return { route: g.route, started, reply, userId, close };
}

/** Answers a request the gate refused, and records it in the audit log. */
function deny(res: HttpResponse, req: HttpRequest, ctx: GatewayContext, r: Refusal): null {
  const { route, started, reply, userId } = r;
  replyNow(res, ctx, route, started, reply, r.close);
  if (ctx.auditing && AUDIT_KINDS[route] !== null) {
    const { sku, reservationId } = auditTargetOf(route, req.getParameter(0) ?? '');
    auditReply(ctx, {
      route,
      outcome: reply.code,
      startedMs: started,
      nowMs: performance.now(),
      sku,
      userId,
      qty: null,
      reservationId,
      idempotencyKey: null,
      detail: null,
    });
  }
  return null;
}
