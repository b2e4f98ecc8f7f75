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

/**
 * The common gate of an engine-bound route: answers at once and returns null when the request
 * may not proceed, else returns the admitted exchange.
 */
export function begin(
  res: HttpResponse,
  req: HttpRequest,
  ctx: GatewayContext,
  route: number,
  access: Access,
  withBody: boolean | BodyRule,
): HttpExchange | null {
  const started = performance.now();
  if (!ctx.ready) return deny(res, req, ctx, route, started, errorReply('not_ready'), null);
  let userId: string | null = null;
  let admin = false;
  if (access !== 'public') {
    const p = ctx.authenticate(req.getHeader('authorization'));
    if (p === null) return deny(res, req, ctx, route, started, errorReply('unauthorized'), null);
    if (p !== undefined) {
      if (access === 'admin' && !p.admin)
        return deny(res, req, ctx, route, started, errorReply('forbidden'), p.userId);
      userId = p.userId;
      admin = p.admin;
    }
  }
  if (withBody) {
    const rule = withBody === true ? null : withBody;
    const ct = req.getHeader('content-type');
    if (rule === null ? !isJsonContentType(ct) : !rule.accepts(ct)) {
      const reply = rule?.unsupported ?? errorReply('unsupported_media_type');
      return deny(res, req, ctx, route, started, reply, userId);
    }
    const length = req.getHeader('content-length');
    // uWS hands the request over, then closes the connection without a word: answer first.
    if (length !== '' && !isDecimal(length)) {
      return deny(res, req, ctx, route, started, MALFORMED_REQUEST, userId, true);
    }
    if (length !== '' && Number(length) > (rule?.bytesMax ?? ctx.bodyBytesMax)) {
      const reply = rule?.tooLarge ?? errorReply('payload_too_large');
      return deny(res, req, ctx, route, started, reply, userId, true);
    }
  }
  if (!ctx.admit()) return deny(res, req, ctx, route, started, GATEWAY_BUSY, userId);
  const x = new HttpExchange(res, ctx, route, started, req.getParameter(0) ?? '');
  x.userId = userId;
  x.admin = admin;
  return x;
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

/** A Content-Length as HTTP allows it: decimal digits only (no sign, space or exponent). */
function isDecimal(s: string): boolean {
  if (s.length > 15) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Answers a request the gate refused, and records it in the audit log. */
function deny(
  res: HttpResponse,
  req: HttpRequest,
  ctx: GatewayContext,
  route: number,
  started: number,
  reply: ErrorReply,
  userId: string | null,
  closeConnection = false,
): null {
  replyNow(res, ctx, route, started, reply, closeConnection);
  if (ctx.auditing && AUDIT_KINDS[route] !== null) {
    const { sku, reservationId: id } = auditTargetOf(route, req.getParameter(0) ?? '');
    const now = performance.now();
    const code = reply.code;
    auditReply(ctx.audit, ctx.thread, started, now, route, code, sku, userId, null, id, null, null);
  }
  return null;
}

