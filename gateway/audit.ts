/**
 * The gateway's audit entries. Every reply of a purchase, transition or admin route passes
 * through one of three places — `HttpExchange.send` (admitted HTTP requests), `begin`'s early
 * refusals in routes.ts (not ready, auth, content type, admission), and `WsRequest.settle` /
 * `refuse` in ws-routes.ts — and each calls `auditReply` once, guarded by `ctx.auditing`, so a
 * gateway without an audit log builds nothing.
 *
 * A gateway worker thread cannot hand objects to the main thread's sink directly; it records
 * into an `AuditForwarder`, which sends the entries of one event-loop turn as one message
 * (bounded: past `max` pending entries they are dropped and counted, like the sink itself).
 */
import type { AuditKind, AuditSink, GatewayAuditEntry } from './ports.js';
import { ROUTES, RouteId } from './metrics.js';

/** The audit kind of each route (by `RouteId`), or null for routes that are not audited. */
export const AUDIT_KINDS: readonly (AuditKind | null)[] = ROUTES.map((r) => {
  switch (r) {
    case 'reserve':
    case 'ws_reserve':
      return 'reservation';
    case 'confirm':
    case 'cancel':
    case 'return':
      return 'transition';
    case 'put_sku':
    case 'restock':
    case 'close':
      return 'admin';
    default:
      return null;
  }
});

/** The SKU of a reservation id (`<sku>:<n>`), or null when it is not one. */
function skuOfReservation(id: string): string | null {
  const at = id.lastIndexOf(':');
  return at > 0 ? id.slice(0, at) : null;
}

/**
 * What a route's path parameter names, for its audit entry: a transition's is a reservation
 * id (and the SKU is read from it), any other route's a SKU.
 */
export function auditTargetOf(
  route: number,
  param: string,
): { sku: string | null; reservationId: string | null } {
  return AUDIT_KINDS[route] === 'transition'
    ? { sku: skuOfReservation(param), reservationId: param }
    : { sku: param, reservationId: null };
}

/** One reply to record: what the route answered, about what, and when. */
export interface AuditedReply {
  /** The route's `RouteId`. */
  route: number;
  /** `reserved`, `confirmed`, … or the error code answered. */
  outcome: string;
  /** When the request arrived and when it was answered (`performance.now()`). */
  startedMs: number;
  nowMs: number;
  sku: string | null;
  userId: string | null;
  qty: number | null;
  reservationId: string | null;
  idempotencyKey: string | null;
  /** The invalid field or the reservation's state, when the answer names one. */
  detail: string | null;
}

/**
 * Records one reply with the sink and thread of `ctx`: one object of one shape (every field
 * set) per entry.
 */
export function auditReply(ctx: { audit: AuditSink; thread: number }, r: AuditedReply): void {
  const entry: GatewayAuditEntry = {
    kind: AUDIT_KINDS[r.route]!,
    outcome: r.outcome,
    at: Date.now(),
    sku: r.sku,
    userId: r.userId,
    route: ROUTES[r.route],
    transport: r.route === RouteId.ws_reserve ? 'ws' : 'http',
    thread: ctx.thread,
    qty: r.qty,
    reservationId: r.reservationId,
    idempotencyKey: r.idempotencyKey,
    latencyUs: Math.round((r.nowMs - r.startedMs) * 1000),
    detail: r.detail,
  };
  ctx.audit.record(entry);
}

/**
 * The sink of a gateway worker thread: collects the entries of one event-loop turn and posts
 * them to the main thread as one message, where they go to the real sink. At most `max`
 * entries are held here or in messages the main thread has not taken yet (it adds what it took
 * to `taken[0]`, shared memory: no message back); past that, entries are dropped and counted,
 * as the real sink does past its own buffer, so a busy main thread never makes the port's
 * queue grow without bound.
 */
export class AuditForwarder implements AuditSink {
  private pending: GatewayAuditEntry[] = [];
  /** Entries posted so far (32-bit, wrapping like `taken[0]`). */
  private posted = 0;
  private scheduled = false;
  /** Entries dropped here since the last message (sent along, to be counted once). */
  private dropped = 0;

  constructor(
    private readonly post: (entries: GatewayAuditEntry[], dropped: number) => void,
    private readonly max: number,
    private readonly taken: Int32Array,
  ) {}

  record(entry: GatewayAuditEntry): void {
    if (this.held >= this.max) {
      this.dropped++;
      return;
    }
    this.pending.push(entry);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  readonly flush = (): void => {
    this.scheduled = false;
    if (this.pending.length === 0 && this.dropped === 0) return;
    const entries = this.pending;
    const dropped = this.dropped;
    this.pending = [];
    this.dropped = 0;
    this.posted = (this.posted + entries.length) | 0;
    this.post(entries, dropped);
  };

  /** Entries held here or in flight to the main thread. */
  get held(): number {
    return this.pending.length + ((this.posted - Atomics.load(this.taken, 0)) | 0);
  }
}
