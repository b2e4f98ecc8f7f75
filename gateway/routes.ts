/**
 * The HTTP routes. Each engine-bound handler runs the same gate first (`begin`, gate.ts).
 * Handlers read everything they need from the request (parameters, headers) before they
 * return, because uWS's request object is only valid inside the handler.
 */
import { performance } from 'node:perf_hooks';
import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import type { GatewayContext } from './context.js';
import { GATEWAY_BUSY, begin, gate, refusedMalformedLength } from './gate.js';
import { CATALOG_ALLOWED, gateSkuPut, registerCatalogRoutes } from './catalog-routes.js';
import { dashboardHtml } from './dashboard.js';
import { codeOfError } from './engine-link.js';
import { errorReply, errorReplyWithMessage } from './errors.js';
import type { GatewayCode } from './errors.js';
import { HttpExchange, STATUS_200, STATUS_201, replyNow } from './http-exchange.js';
import { RouteId, outcomeOf, prometheusText } from './metrics.js';
import {
  checkReservationId,
  checkReserve,
  checkRestock,
  checkSkuBody,
  isSkuId,
} from './validate.js';

function isRejection(r: object): r is { status: GatewayCode; field?: string; state?: string } {
  return 'retriable' in r;
}

/** Answers an exchange from an engine call: 2xx with the JSON result, or the rejection. */
function answer(
  x: HttpExchange,
  p: Promise<object | null>,
  status: (r: { status: string }) => string,
): void {
  p.then(
    (r) => {
      if (r === null) x.fail(errorReply('unknown_sku'));
      else if (isRejection(r)) x.fail(errorReply(r.status, r.field, r.state));
      else {
        x.result = (r as { status: string }).status;
        x.ok(status(r as { status: string }), JSON.stringify(r));
      }
    },
    (err: unknown) => {
      const code = codeOfError(err);
      if (code === 'internal') x.ctx.log.error({ err }, 'engine call failed');
      x.fail(errorReply(code));
    },
  );
}

const ok200 = (): string => STATUS_200;

function onReserveBody(x: HttpExchange, body: Record<string, unknown>): void {
  const c = checkReserve(x.param, body, x.userId, x.ctx.qtyMax);
  if (!c.ok) return x.fail(errorReply('invalid', c.field));
  x.request = c.value;
  const allowed = x.ctx.limiter.take(c.value.userId, performance.now());
  if (allowed === true) return x.ctx.link.reserve(c.value, x);
  if (allowed === false) return x.fail(errorReply('rate_limited'));
  allowed.then(
    (yes) => {
      // The client may have left while the limiter answered (onAborted ran and released the
      // admission): then nothing is reserved, so no stock is held for nobody.
      if (x.done) return;
      if (yes) x.ctx.link.reserve(c.value, x);
      else x.fail(errorReply('rate_limited'));
    },
    (err: unknown) => {
      x.ctx.log.error({ err }, 'rate limiter failed');
      x.fail(errorReply('internal'));
    },
  );
}

function onPutBody(x: HttpExchange, body: Record<string, unknown>): void {
  // The sale gate (catalog-routes.ts) first: a product not yet allowed by moderation keeps
  // its sale from being defined or changed.
  gateSkuPut(
    x,
    body,
    (b) => checkSkuBody(x.param, b),
    ({ definition, update, stock }) =>
      answer(x, x.ctx.link.putSku(definition, x.param, update, stock), (r) =>
        r.status === 'defined' ? STATUS_201 : STATUS_200,
      ),
  );
}

function onRestockBody(x: HttpExchange, body: Record<string, unknown>): void {
  const c = checkRestock(x.param, body);
  if (!c.ok) return x.fail(errorReply('invalid', c.field));
  x.qty = c.value;
  answer(x, x.ctx.link.restock(x.param, c.value), ok200);
}

type ReservationMethod = 'confirm' | 'cancel' | 'returnOrder';

function reservationCommand(ctx: GatewayContext, route: number, method: ReservationMethod) {
  const g = gate(route, 'user', false);
  return (res: HttpResponse, req: HttpRequest): void => {
    const x = begin(res, req, ctx, g);
    if (!x) return;
    const id = checkReservationId(x.param);
    if (id === null) return x.fail(errorReply('invalid', 'reservationId'));
    x.reservationId = id;
    // A buyer acts only on their own reservations; an admin (or auth none) on any.
    const owner = x.userId !== null && !x.admin ? x.userId : undefined;
    answer(x, ctx.link[method](id, owner), ok200);
  };
}

/** The routes and the methods each takes, for the 405 answers. */
const ALLOWED: [string, string][] = [
  ['/v1/skus/:sku/reservations', 'POST'],
  ['/v1/reservations/:id/confirm', 'POST'],
  ['/v1/reservations/:id/cancel', 'POST'],
  ['/v1/orders/:id/return', 'POST'],
  ['/v1/skus/:sku', 'GET, PUT'],
  ['/v1/skus/:sku/restock', 'POST'],
  ['/v1/skus/:sku/close', 'POST'],
  ['/v1/cluster', 'GET'],
  ['/healthz', 'GET'],
  ['/readyz', 'GET'],
  ['/metrics', 'GET'],
  ['/', 'GET'],
];

const RESERVE = gate(RouteId.reserve, 'user', true);
const GET_SKU = gate(RouteId.get_sku, 'public', false);
const PUT_SKU = gate(RouteId.put_sku, 'admin', true);
const RESTOCK = gate(RouteId.restock, 'admin', true);
const CLOSE = gate(RouteId.close, 'admin', false);
const CLUSTER = gate(RouteId.cluster, 'admin', false);

export function registerHttpRoutes(app: TemplatedApp, ctx: GatewayContext): void {
  app.post('/v1/skus/:sku/reservations', (res, req) => {
    begin(res, req, ctx, RESERVE)?.readJson(onReserveBody);
  });
  app.post('/v1/reservations/:id/confirm', reservationCommand(ctx, RouteId.confirm, 'confirm'));
  app.post('/v1/reservations/:id/cancel', reservationCommand(ctx, RouteId.cancel, 'cancel'));
  app.post('/v1/orders/:id/return', reservationCommand(ctx, RouteId.return, 'returnOrder'));
  app.get('/v1/skus/:sku', (res, req) => {
    const x = begin(res, req, ctx, GET_SKU);
    if (!x) return;
    if (!isSkuId(x.param)) return x.fail(errorReply('invalid', 'sku'));
    answer(x, ctx.link.getSku(x.param), ok200);
  });
  app.put('/v1/skus/:sku', (res, req) => {
    begin(res, req, ctx, PUT_SKU)?.readJson(onPutBody);
  });
  app.post('/v1/skus/:sku/restock', (res, req) => {
    begin(res, req, ctx, RESTOCK)?.readJson(onRestockBody);
  });
  app.post('/v1/skus/:sku/close', (res, req) => {
    const x = begin(res, req, ctx, CLOSE);
    if (!x) return;
    if (!isSkuId(x.param)) return x.fail(errorReply('invalid', 'sku'));
    answer(x, ctx.link.closeSale(x.param), ok200);
  });
  app.get('/v1/cluster', (res, req) => {
    const x = begin(res, req, ctx, CLUSTER);
    if (!x) return;
    const view = ctx.link.clusterView().then((v) => v ?? { enabled: false });
    answer(x, view, ok200);
  });
  registerCatalogRoutes(app, ctx);
  registerOpsRoutes(app, ctx);
  for (const [pattern, allow] of [...ALLOWED, ...CATALOG_ALLOWED]) {
    const reply = errorReplyWithMessage('method_not_allowed', `This route takes ${allow}.`);
    app.any(pattern, (res, req) => {
      if (refusedMalformedLength(res, req, ctx, RouteId.unmatched)) return;
      res
        .writeStatus(reply.status)
        .writeHeader('Content-Type', 'application/json')
        .writeHeader('Allow', allow);
      res.end(reply.body);
      ctx.metrics.observe(RouteId.unmatched, outcomeOf('method_not_allowed'), 0);
    });
  }
  app.any('/*', (res, req) => {
    if (refusedMalformedLength(res, req, ctx, RouteId.unmatched)) return;
    replyNow(res, ctx, RouteId.unmatched, performance.now(), errorReply('not_found'));
  });
}

/** Health, readiness, metrics and the dashboard page. */
function registerOpsRoutes(app: TemplatedApp, ctx: GatewayContext): void {
  app.get('/healthz', (res, req) => {
    if (refusedMalformedLength(res, req, ctx, RouteId.healthz)) return;
    res.writeHeader('Content-Type', 'application/json').end('{"status":"ok"}');
    ctx.metrics.observe(RouteId.healthz, 0, 0);
  });
  app.get('/readyz', (res, req) => {
    if (refusedMalformedLength(res, req, ctx, RouteId.readyz)) return;
    if (!ctx.ready)
      return replyNow(res, ctx, RouteId.readyz, performance.now(), errorReply('not_ready'));
    res.writeHeader('Content-Type', 'application/json').end('{"status":"ready"}');
    ctx.metrics.observe(RouteId.readyz, 0, 0);
  });
  app.get('/metrics', (res, req) => {
    if (refusedMalformedLength(res, req, ctx, RouteId.metrics)) return;
    if (!ctx.admit()) return replyNow(res, ctx, RouteId.metrics, performance.now(), GATEWAY_BUSY);
    const x = new HttpExchange(res, ctx, RouteId.metrics, performance.now(), '');
    ctx.link.clusterMetrics().then(
      ({ metrics, gauges }) =>
        x.ok(STATUS_200, prometheusText(metrics, gauges), 'text/plain; version=0.0.4'),
      (err: unknown) => x.fail(errorReply(codeOfError(err))),
    );
  });
  const page = dashboardHtml();
  app.get('/', (res, req) => {
    if (refusedMalformedLength(res, req, ctx, RouteId.dashboard)) return;
    res
      .writeHeader('Content-Type', 'text/html; charset=utf-8')
      .writeHeader('Cache-Control', 'no-store')
      .end(page);
    ctx.metrics.observe(RouteId.dashboard, 0, 0);
  });
}
