/**
 * The WebSocket API on `/v1/ws`. JSON text messages:
 *
 *   → {"type":"reserve","id":"c1","sku":"demo","qty":1,"idempotencyKey":"k1","userId"?:"u1"}
 *   ← {"type":"reserved","id":"c1","reservationId":"demo:1",...}
 *     or {"type":"error","id":"c1","error":{...}}
 *   → {"type":"subscribe","sku":"demo"}   (or "*" for every SKU)   ← {"type":"stock",...} ≤ N/s
 *   → {"type":"unsubscribe","sku":"demo"}
 *   → {"type":"subscribe_stats"}          ← {"type":"stats",...} once a second
 *
 * The user is the token's `sub` (a `?token=` query parameter or an Authorization header at the
 * upgrade, since browsers cannot set headers on a WebSocket); with `auth: none`, the message's
 * `userId`. Subscriptions need no token, but only SKUs that exist can be followed (`unknown_sku`
 * otherwise), at most 64 per socket and `gateway.skusTrackedMax` per gateway thread. A socket whose
 * send buffer passes
 * `wsBackpressureBytesMax` is closed (uWS `closeOnBackpressureLimit`): a slow consumer is
 * dropped rather than buffered without bound.
 */
import { performance } from 'node:perf_hooks';
import { uws } from './uws.js';
import type { TemplatedApp, WebSocket } from '@trufflesuite/uws-js-unofficial';
import type { ReserveRequest } from '../engine/index.js';
import { auditReply } from './audit.js';
import type { Principal } from './auth.js';
import type { GatewayContext } from './context.js';
import type { ReserveOutcome, ReserveWaiter } from './engine-link.js';
import { errorReply, errorReplyWithMessage } from './errors.js';
import type { ErrorReply, GatewayCode } from './errors.js';
import { OUTCOME_ABORTED, OUTCOME_OK, RouteId, outcomeOf } from './metrics.js';
import { codeOfError, refusal } from './engine-link.js';
import type { StockFeed } from './stock-feed.js';
import { ALL_SKUS } from './stock-feed.js';
import { checkReserve, isSkuId, parseObject } from './validate.js';

/** Bound on the topics one socket may subscribe to. */
const TOPICS_PER_SOCKET_MAX = 64;

/** The gateway thread already follows `skusMax` SKUs for its subscribers. */
const FEED_FULL = errorReplyWithMessage(
  'overloaded',
  'This gateway follows as many SKUs for subscribers as it may (gateway.skusTrackedMax); retry later.',
);

export class WsSession {
  open = true;
  readonly topics = new Set<string>();
  stats = false;
  /**
   * The socket's subscribe and unsubscribe messages, answered one after the other in the order
   * they came (a subscribe waits on the engine; an unsubscribe sent after it must not overtake
   * it), and how many wait (bounded by `CONTROL_PENDING_MAX`).
   */
  control: Promise<void> = Promise.resolve();
  controlPending = 0;
  /** A plain field, not a getter: uWS copies a socket's user data by its own properties. */
  readonly userId: string | null;
  /** The token's principal, rechecked on every purchase: a socket outlives its token. */
  constructor(readonly principal: Principal | null) {
    this.userId = principal?.userId ?? null;
  }
}

type Socket = WebSocket<WsSession>;

function idJson(id: unknown): string {
  if (typeof id === 'number' && Number.isFinite(id)) return String(id);
  if (typeof id === 'string' && id.length <= 128) return JSON.stringify(id);
  return 'null';
}

function send(ws: Socket, session: WsSession, msg: string): void {
  if (!session.open) return;
  ws.cork(() => ws.send(msg, false, false));
}

function sendError(ws: Socket, session: WsSession, id: string, reply: ErrorReply): void {
  // reply.body is `{"error":{...}}`: splice the type and id in front of it.
  send(ws, session, `{"type":"error","id":${id},${reply.body.slice(1)}`);
}

/** One purchase over a socket, waiting for its result. */
class WsRequest implements ReserveWaiter {
  constructor(
    readonly ws: Socket,
    readonly session: WsSession,
    readonly id: string,
    readonly ctx: GatewayContext,
    readonly startedMs: number,
    readonly request: ReserveRequest,
  ) {}

  settle(r: ReserveOutcome): void {
    const now = performance.now();
    const ms = now - this.startedMs;
    this.ctx.release();
    // Recorded even when the socket closed meanwhile (the engine decided all the same), and
    // after the reply is sent, so the entry costs the client nothing.
    if (!this.session.open) {
      if (this.ctx.auditing) this.audit(r, now);
      this.ctx.metrics.observe(RouteId.ws_reserve, OUTCOME_ABORTED, ms);
      return;
    }
    if (r.status === 'reserved') {
      send(
        this.ws,
        this.session,
        `{"type":"reserved","id":${this.id},"reservationId":"${r.reservationId}","sku":"${r.sku}",` +
          `"qty":${r.qty},"expiresAt":${r.expiresAt},"duplicate":${r.duplicate}}`,
      );
      this.ctx.metrics.observe(RouteId.ws_reserve, OUTCOME_OK, ms);
    } else {
      sendError(this.ws, this.session, this.id, errorReply(r.status, r.field, r.state));
      this.ctx.metrics.observe(RouteId.ws_reserve, outcomeOf(r.status), ms);
    }
    if (this.ctx.auditing) this.audit(r, now);
  }

  get gone(): boolean {
    return !this.session.open;
  }

  /** The socket closed before the request reached the engine: no decision, no entry. */
  abandon(): void {
    this.ctx.release();
    const ms = performance.now() - this.startedMs;
    this.ctx.metrics.observe(RouteId.ws_reserve, OUTCOME_ABORTED, ms);
  }

  private audit(r: ReserveOutcome, now: number): void {
    const q = this.request;
    const ok = r.status === 'reserved';
    auditReply(this.ctx, {
      route: RouteId.ws_reserve,
      outcome: r.status,
      startedMs: this.startedMs,
      nowMs: now,
      sku: q.sku,
      userId: q.userId,
      qty: q.qty,
      reservationId: ok ? r.reservationId : null,
      idempotencyKey: q.idempotencyKey,
      detail: ok ? null : (r.field ?? r.state ?? null),
    });
  }
}

/** A purchase message the gateway refused before the engine saw it. */
interface WsRefusal {
  id: string;
  started: number;
  code: GatewayCode;
  field?: string;
  /** The message as sent, for the audit entry (absent when it did not parse). */
  request?: Record<string, unknown>;
}

function refuse(ws: Socket, s: WsSession, ctx: GatewayContext, r: WsRefusal): void {
  sendError(ws, s, r.id, errorReply(r.code, r.field));
  const now = performance.now();
  ctx.metrics.observe(RouteId.ws_reserve, outcomeOf(r.code), now - r.started);
  if (ctx.auditing) auditRefusal(ctx, s, r, now);
}

/** The audit entry of a purchase message the gateway refused before the engine saw it. */
function auditRefusal(ctx: GatewayContext, s: WsSession, r: WsRefusal, now: number): void {
  const { started, code, request: m } = r;
  const detail = r.field ?? null;
  // The message's fields as sent (the refusal may be that they are invalid), when they are
  // strings and numbers of sane length.
  const str = (v: unknown) => (typeof v === 'string' && v.length <= 128 ? v : null);
  const userId = s.userId ?? (ctx.authNone && m !== undefined ? str(m.userId) : null);
  const qty = m !== undefined && typeof m.qty === 'number' ? m.qty : null;
  auditReply(ctx, {
    route: RouteId.ws_reserve,
    outcome: code,
    startedMs: started,
    nowMs: now,
    sku: m !== undefined ? str(m.sku) : null,
    userId,
    qty,
    reservationId: null,
    idempotencyKey: m !== undefined ? str(m.idempotencyKey) : null,
    detail,
  });
}

function onReserve(
  ws: Socket,
  s: WsSession,
  ctx: GatewayContext,
  m: Record<string, unknown>,
  id: string,
): void {
  const started = performance.now();
  if (!ctx.ready) return refuse(ws, s, ctx, { id, started, code: 'not_ready', request: m });
  if (!ctx.authNone && (s.principal === null || !ctx.verifier!.stillValid(s.principal))) {
    return refuse(ws, s, ctx, { id, started, code: 'unauthorized', request: m });
  }
  const sku = typeof m.sku === 'string' ? m.sku : '';
  const c = checkReserve(sku, m, s.userId, ctx.qtyMax);
  if (!c.ok)
    return refuse(ws, s, ctx, { id, started, code: 'invalid', field: c.field, request: m });
  const allowed = ctx.limiter.take(c.value.userId, started);
  if (allowed === false) {
    return refuse(ws, s, ctx, { id, started, code: 'rate_limited', request: m });
  }
  if (!ctx.admit()) return refuse(ws, s, ctx, { id, started, code: 'overloaded', request: m });
  const waiter = new WsRequest(ws, s, id, ctx, started, c.value);
  if (allowed === true) return ctx.link.reserve(c.value, waiter);
  allowed.then(
    (yes) => {
      // A socket that closed while the limiter answered gets nothing reserved for it.
      if (!s.open) return waiter.abandon();
      if (yes) ctx.link.reserve(c.value, waiter);
      else waiter.settle(refusal('rate_limited', true));
    },
    () => waiter.settle(refusal('internal', true)),
  );
}

/** A socket's own subscriptions past `TOPICS_PER_SOCKET_MAX`. */
const TOO_MANY_TOPICS = errorReplyWithMessage(
  'invalid',
  `A socket may follow at most ${TOPICS_PER_SOCKET_MAX} SKUs (\`*\` counts as one).`,
  'sku',
);

/**
 * The uWS topics of a socket: `stock/*` alone while it follows every SKU, else one per SKU it
 * follows, so that no update reaches it twice (the feed publishes each to both topics).
 */
function follow(ws: Socket, s: WsSession, sku: string): void {
  if (sku === ALL_SKUS) {
    for (const one of s.topics) ws.unsubscribe(`stock/${one}`);
    ws.subscribe(`stock/${ALL_SKUS}`);
  } else if (!s.topics.has(ALL_SKUS)) {
    ws.subscribe(`stock/${sku}`);
  }
  s.topics.add(sku);
}

function unfollow(ws: Socket, s: WsSession, sku: string): void {
  s.topics.delete(sku);
  if (sku === ALL_SKUS) {
    ws.unsubscribe(`stock/${ALL_SKUS}`);
    for (const one of s.topics) ws.subscribe(`stock/${one}`);
  } else if (!s.topics.has(ALL_SKUS)) {
    ws.unsubscribe(`stock/${sku}`);
  }
}

/** A message that is not a purchase, being answered: its socket, App and arrival. */
interface Incoming {
  ws: Socket;
  s: WsSession;
  ctx: GatewayContext;
  feed: StockFeed;
  /** The message's `id`, as JSON. */
  id: string;
  started: number;
}

/** Answers a message that is not a purchase, and counts it (route `ws_message`). */
function answer(msg: Incoming, reply: ErrorReply | null, ok?: string): void {
  if (reply !== null) sendError(msg.ws, msg.s, msg.id, reply);
  else if (ok !== undefined) send(msg.ws, msg.s, ok);
  const outcome = reply === null ? OUTCOME_OK : outcomeOf(reply.code);
  msg.ctx.metrics.observe(RouteId.ws_message, outcome, performance.now() - msg.started);
}

/**
 * Makes the socket follow `sku`: returns the SKUs it followed before (whose snapshots it has),
 * or the refusal past a bound. A repeat subscribe is answered again but counted once (the feed
 * polls a SKU until its count returns to zero, which one unsubscribe or the close achieves).
 */
function startFollowing(msg: Incoming, sku: string): Set<string> | ErrorReply {
  const { ws, s, feed } = msg;
  const had = new Set(s.topics);
  if (had.delete(sku)) return had; // a repeat gets its snapshot again
  if (s.topics.size >= TOPICS_PER_SOCKET_MAX) return TOO_MANY_TOPICS;
  if (!feed.hasRoomFor(sku)) return FEED_FULL;
  follow(ws, s, sku);
  feed.added(sku);
  return had;
}

/**
 * Follows a SKU that exists (or `*`): a made-up SKU is refused with `unknown_sku` before it is
 * followed, so nobody can make the feed poll ids that mean nothing. Bounded per socket and, in
 * SKUs followed, per gateway thread (the feed's `skusMax`).
 */
async function onSubscribe(msg: Incoming, m: Record<string, unknown>): Promise<void> {
  const sku = m.sku;
  if (sku !== ALL_SKUS && !isSkuId(sku)) return answer(msg, errorReply('invalid', 'sku'));
  try {
    // A SKU on a shard that is down is refused (shard_unavailable), not taken for unknown.
    if (sku !== ALL_SKUS && (await msg.ctx.link.getSkus([sku]))[0] === null) {
      return answer(msg, errorReply('unknown_sku'));
    }
  } catch (err) {
    return answer(msg, errorReply(codeOfError(err)));
  }
  if (!msg.s.open) return;
  const had = startFollowing(msg, sku);
  if (!(had instanceof Set)) return answer(msg, had);
  answer(msg, null, `{"type":"subscribed","id":${msg.id},"sku":${JSON.stringify(sku)}}`);
  // The subscription stands from here: if the first snapshots fail, the next poll publishes.
  const deliver = (snapshot: string) => send(msg.ws, msg.s, snapshot);
  await msg.feed
    .sendFirstSnapshots(sku, had, deliver)
    .catch((err: unknown) => msg.ctx.log.warn({ err }, 'stock feed: first snapshots'));
}

function onUnsubscribe(msg: Incoming, m: Record<string, unknown>): void {
  const sku = typeof m.sku === 'string' ? m.sku : '';
  if (msg.s.open && msg.s.topics.has(sku)) {
    unfollow(msg.ws, msg.s, sku);
    msg.feed.removed(sku);
  }
  answer(msg, null);
}

/**
 * A socket's subscribe and unsubscribe messages waiting their turn, at most: room for a client
 * that subscribes to all it may follow at once, and then some.
 */
const CONTROL_PENDING_MAX = 2 * TOPICS_PER_SOCKET_MAX;

const CONTROL_FULL = errorReplyWithMessage(
  'overloaded',
  `At most ${CONTROL_PENDING_MAX} subscribe and unsubscribe messages may wait on one socket; wait for their answers.`,
);

/**
 * Runs a subscribe or unsubscribe after the socket's earlier ones, admitted like a request (it
 * counts toward `gateway.inflightMax`, and a busy gateway refuses it with `overloaded`).
 */
function inTurn(msg: Incoming, run: () => void | Promise<void>): void {
  const { s, ctx } = msg;
  if (s.controlPending >= CONTROL_PENDING_MAX) return answer(msg, CONTROL_FULL);
  if (!ctx.admit()) return answer(msg, errorReply('overloaded'));
  s.controlPending++;
  s.control = s.control.then(run).finally(() => {
    s.controlPending--;
    ctx.release();
  });
}

function onMessage(ws: Socket, ctx: GatewayContext, feed: StockFeed, message: ArrayBuffer): void {
  const s = ws.getUserData();
  const started = performance.now();
  const m = parseObject(Buffer.from(message).toString('utf8'));
  if (m === null) {
    answer({ ws, s, ctx, feed, id: 'null', started }, errorReply('malformed_json'));
    // Which kind of message it was cannot be told; it is recorded as a purchase attempt, as
    // over HTTP, only once past authentication: an anonymous socket (a subscriber) sending
    // garbage is not a purchase and must not crowd real entries out of the bounded log.
    if (ctx.auditing && (s.userId !== null || ctx.authNone)) {
      auditRefusal(ctx, s, { id: 'null', started, code: 'malformed_json' }, performance.now());
    }
    return;
  }
  const id = idJson(m.id);
  if (m.type === 'reserve') return onReserve(ws, s, ctx, m, id);
  const msg: Incoming = { ws, s, ctx, feed, id, started };
  switch (m.type) {
    case 'subscribe':
      return inTurn(msg, () => onSubscribe(msg, m));
    case 'unsubscribe':
      return inTurn(msg, () => onUnsubscribe(msg, m));
    case 'subscribe_stats':
      if (!s.stats && ws.subscribe('stats')) {
        s.stats = true;
        feed.statsAdded();
      }
      return answer(msg, null);
    default:
      return answer(msg, errorReply('invalid', 'type'));
  }
}

export function registerWsRoutes(
  app: TemplatedApp,
  ctx: GatewayContext,
  feed: StockFeed,
  sockets: Set<Socket>,
): void {
  const g = ctx.config.gateway;
  app.ws<WsSession>('/v1/ws', {
    compression: uws().DISABLED,
    maxPayloadLength: ctx.bodyBytesMax,
    idleTimeout: g.wsIdleTimeoutS,
    maxBackpressure: g.wsBackpressureBytesMax,
    closeOnBackpressureLimit: 1,
    sendPingsAutomatically: true,
    upgrade: (res, req, context) => {
      const started = performance.now();
      const refuse = (code: GatewayCode) => {
        const r = errorReply(code);
        res.writeStatus(r.status).writeHeader('Content-Type', 'application/json').end(r.body);
        ctx.metrics.observe(RouteId.ws_upgrade, outcomeOf(code), performance.now() - started);
      };
      if (ctx.draining) return refuse('not_ready');
      if (sockets.size >= g.wsConnectionsMax) return refuse('overloaded');
      let principal: Principal | null = null;
      if (!ctx.authNone) {
        const token = req.getQuery('token');
        const header = req.getHeader('authorization');
        const p = token
          ? ctx.verifier!.verify(token)
          : header
            ? ctx.verifier!.verifyHeader(header)
            : undefined;
        // A token that is present but bad is refused outright; no token means read-only.
        if (p === null) return refuse('unauthorized');
        principal = p ?? null;
      }
      res.upgrade(
        new WsSession(principal),
        req.getHeader('sec-websocket-key'),
        req.getHeader('sec-websocket-protocol'),
        req.getHeader('sec-websocket-extensions'),
        context,
      );
      ctx.metrics.observe(RouteId.ws_upgrade, OUTCOME_OK, performance.now() - started);
    },
    open: (ws) => {
      sockets.add(ws);
      ctx.metrics.wsConnections = sockets.size;
    },
    message: (ws, message) => onMessage(ws, ctx, feed, message),
    close: (ws) => {
      const s = ws.getUserData();
      s.open = false;
      sockets.delete(ws);
      ctx.metrics.wsConnections = sockets.size;
      for (const sku of s.topics) feed.removed(sku);
      if (s.stats) feed.statsRemoved();
    },
  });
}
