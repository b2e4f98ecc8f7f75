/**
 * One HTTP request that is answered later than its handler returns: it owns the uWS response,
 * registers `onAborted` (uWS terminates the process if an async response has none), reads the
 * body within `bodyBytesMax` and `bodyTimeoutMs`, and writes the reply corked. Every reply goes
 * through `send`, which writes nothing once the client is gone and records the metrics.
 *
 *   handler ─▶ new HttpExchange (onAborted) ─▶ onData … isLast ─▶ parse ─▶ engine ─▶ send (cork)
 */
import { performance } from 'node:perf_hooks';
import type { HttpResponse } from '@trufflesuite/uws-js-unofficial';
import type { ReserveRequest } from '../engine/index.js';
import { AUDIT_KINDS, auditReply, auditTargetOf } from './audit.js';
import type { ReserveOutcome, ReserveWaiter } from './engine-link.js';
import type { GatewayContext } from './context.js';
import { errorReply } from './errors.js';
import type { ErrorReply } from './errors.js';
import { OUTCOMES, OUTCOME_ABORTED, OUTCOME_OK, ROUTES, outcomeOf } from './metrics.js';
import { parseObject } from './validate.js';

export const JSON_TYPE = 'application/json';
export const STATUS_200 = '200 OK';
export const STATUS_201 = '201 Created';

export type BodyHandler = (x: HttpExchange, body: Record<string, unknown>) => void;

/** The bound of a raw body and the reply past it. */
export interface RawBodyRule {
  bytesMax: number;
  tooLarge: ErrorReply;
}

interface RawBodyRead {
  rule: RawBodyRule;
  then: (body: Buffer) => void;
}

const PAYLOAD_TOO_LARGE = errorReply('payload_too_large');

/** Exchanges whose body is still arriving, for the `bodyTimeoutMs` sweep. */
const reading = new Set<HttpExchange>();
let sweeper: NodeJS.Timeout | null = null;

function sweep(): void {
  const now = performance.now();
  for (const x of reading) {
    if (now - x.startedMs > x.ctx.config.gateway.bodyTimeoutMs)
      x.fail(errorReply('request_timeout'), true);
  }
  if (reading.size === 0 && sweeper !== null) {
    clearInterval(sweeper);
    sweeper = null;
  }
}

export class HttpExchange implements ReserveWaiter {
  aborted = false;
  done = false;
  private chunks: Buffer[] | null = null;
  private received = 0;
  private onJson: BodyHandler | null = null;
  /** A raw body being read (`readBody`); null for a JSON body. */
  private raw: RawBodyRead | null = null;
  /** The route's path parameter (SKU id or reservation id), read before the handler returned. */
  param: string;
  /** The user from the token, or null with `auth: none` (then the body names the user). */
  userId: string | null = null;
  /** The token carries `role: "admin"` (admins may act on any user's reservation). */
  admin = false;
  /** Quantity of a reservation in flight (for the reply), or restocked; for the audit log. */
  qty = 0;
  /** The validated reservation, once the body was read (for the audit log). */
  request: ReserveRequest | null = null;
  /** The engine's success status (`reserved`, `confirmed`, …), the audit entry's outcome. */
  result: string | null = null;
  reservationId: string | null = null;
  /** The field or state of the error reply being sent (audit log). */
  detail: string | null = null;
  /** Set once the reply's audit entry is recorded: exactly one entry per request. */
  audited = false;
  /** Called when the client goes away first (e.g. to abort an image's moderation). */
  onAbort: (() => void) | null = null;
  /** An admitted image upload (`GatewayContext.admitUpload`), released with the request. */
  upload = false;

  constructor(
    readonly res: HttpResponse,
    readonly ctx: GatewayContext,
    readonly route: number,
    readonly startedMs: number,
    param: string,
  ) {
    this.param = param;
    res.onAborted(() => this.onAborted());
  }

  get gone(): boolean {
    return this.aborted;
  }

  /** Dropped before the engine saw it: `onAborted` has already counted and released it. */
  abandon(): void {}

  private onAborted(): void {
    this.aborted = true;
    this.onAbort?.();
    if (this.done) return;
    this.done = true;
    reading.delete(this);
    this.ctx.metrics.observe(this.route, OUTCOME_ABORTED, performance.now() - this.startedMs);
    this.ctx.release(this.upload);
  }

  /** Reads the JSON body, then calls `then` with it (a parsed object), or answers 400/413/408. */
  readJson(then: BodyHandler): void {
    this.onJson = then;
    this.res.onData((chunk, isLast) => this.onData(chunk, isLast));
  }

  /**
   * Reads a raw body (an image) of at most `rule.bytesMax` bytes, then calls `then` with a copy
   * that owns its whole ArrayBuffer (so it can be transferred to another thread). Past the bound
   * it answers `rule.tooLarge` and closes the connection; a body that stalls past
   * `bodyTimeoutMs` gets 408, as a JSON body does.
   */
  readBody(rule: RawBodyRule, then: (body: Buffer) => void): void {
    this.raw = { rule, then };
    this.res.onData((chunk, isLast) => this.onData(chunk, isLast));
  }

  private onData(chunk: ArrayBuffer, isLast: boolean): void {
    if (this.done) return;
    const raw = this.raw;
    this.received += chunk.byteLength;
    if (this.received > (raw === null ? this.ctx.bodyBytesMax : raw.rule.bytesMax)) {
      this.fail(raw === null ? PAYLOAD_TOO_LARGE : raw.rule.tooLarge, true);
      return;
    }
    if (!isLast) {
      // A body in several chunks is watched by the timeout sweep. One that has not started
      // arriving needs no watch: uWS closes a connection that sends nothing for 10 s.
      if (this.chunks === null) {
        reading.add(this);
        sweeper ??= setInterval(sweep, 250).unref();
      }
      // uWS neuters the chunk when this callback returns: keep a copy.
      (this.chunks ??= []).push(Buffer.from(chunk.slice(0)));
      return;
    }
    reading.delete(this);
    // The common case, a body in one chunk: a JSON body decodes straight from uWS's buffer.
    const bytes =
      this.chunks === null
        ? Buffer.from(raw === null ? chunk : chunk.slice(0))
        : Buffer.concat([...this.chunks, Buffer.from(chunk)]);
    this.chunks = null;
    if (raw !== null) return raw.then(bytes);
    const body = parseObject(bytes.toString('utf8'));
    if (body === null) this.fail(errorReply('malformed_json'));
    else this.onJson!(this, body);
  }

  /** The result of a reservation: 201 with the reservation, or the rejection's error reply. */
  settle(r: ReserveOutcome): void {
    if (r.status === 'reserved') {
      this.result = 'reserved';
      this.reservationId = r.reservationId;
      const body =
        `{"status":"reserved","reservationId":"${r.reservationId}","sku":"${r.sku}","qty":${r.qty},` +
        `"expiresAt":${r.expiresAt},"duplicate":${r.duplicate}}`;
      this.send(STATUS_201, body, OUTCOME_OK, false, false);
    } else {
      this.fail(errorReply(r.status, r.field, r.state));
    }
  }

  fail(reply: ErrorReply, closeConnection = false): void {
    this.detail = reply.detail;
    this.send(reply.status, reply.body, outcomeOf(reply.code), reply.retryAfter, closeConnection);
  }

  ok(status: string, body: string, contentType = JSON_TYPE): void {
    this.send(status, body, OUTCOME_OK, false, false, contentType);
  }

  send(
    status: string,
    body: string,
    outcome: number,
    retryAfter: boolean,
    closeConnection: boolean,
    contentType = JSON_TYPE,
  ): void {
    if (this.done) {
      // The client left first: the decision the engine made anyway is still recorded.
      if (this.ctx.auditing && !this.audited) this.audit(outcome);
      return;
    }
    this.done = true;
    reading.delete(this);
    const res = this.res;
    res.cork(() => {
      res.writeStatus(status).writeHeader('Content-Type', contentType);
      if (retryAfter) res.writeHeader('Retry-After', '1');
      res.end(body, closeConnection || this.ctx.draining);
    });
    const ms = performance.now() - this.startedMs;
    this.ctx.metrics.observe(this.route, outcome, ms);
    if (this.ctx.logRequests)
      this.ctx.log.debug({ route: ROUTES[this.route], status, ms }, 'request');
    // After the reply is on its way: the entry costs the client nothing.
    if (this.ctx.auditing && !this.audited) this.audit(outcome);
    this.ctx.release(this.upload);
  }

  /** Records this reply's audit entry (for the routes that are audited). */
  private audit(outcome: number): void {
    this.audited = true;
    const kind = AUDIT_KINDS[this.route];
    if (kind === null) return;
    const r = this.request;
    // A transition's id as decoded by the route, or as sent when it did not decode.
    const target = auditTargetOf(this.route, this.reservationId ?? this.param);
    const id = this.reservationId ?? target.reservationId;
    auditReply(this.ctx, {
      route: this.route,
      outcome: outcome === OUTCOME_OK && this.result !== null ? this.result : OUTCOMES[outcome],
      startedMs: this.startedMs,
      nowMs: performance.now(),
      sku: r !== null ? r.sku : target.sku,
      userId: r !== null ? r.userId : this.userId,
      qty: r !== null ? r.qty : this.qty > 0 ? this.qty : null,
      reservationId: id,
      idempotencyKey: r !== null ? r.idempotencyKey : null,
      detail: this.detail,
    });
  }
}

/**
 * Answers at once from inside a route handler (no exchange, nothing admitted). uWS corks the
 * synchronous part of a handler, so no explicit cork is needed here.
 */
export function replyNow(
  res: HttpResponse,
  ctx: GatewayContext,
  route: number,
  startedMs: number,
  reply: ErrorReply,
  closeConnection = false,
): void {
  res.writeStatus(reply.status).writeHeader('Content-Type', JSON_TYPE);
  if (reply.retryAfter) res.writeHeader('Retry-After', '1');
  res.end(reply.body, closeConnection || ctx.draining);
  ctx.metrics.observe(route, outcomeOf(reply.code), performance.now() - startedMs);
}

/** Checks the request's content type: JSON (any charset) or nothing else. */
export function isJsonContentType(ct: string): boolean {
  if (ct.length < 16) return false;
  const head = ct.length === 16 ? ct : ct.slice(0, 16);
  if (head !== JSON_TYPE && head.toLowerCase() !== JSON_TYPE) return false;
  if (ct.length === 16) return true;
  const next = ct.charCodeAt(16);
  return next === 59 /* ; */ || next === 32; /* space */
}
