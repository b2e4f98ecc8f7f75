/**
 * The product and moderation routes, and the sale gate of `PUT /v1/skus/{sku}`. They run the
 * same gate as every route (`begin` in gate.ts: length → ready → auth → content type → length
 * → admission) and answer through an `HttpExchange` (onAborted, corked reply), from the calls
 * of `ctx.catalog` (a CatalogLink, gateway/catalog-link.ts) — on the main thread directly, on a
 * gateway worker thread forwarded to the main thread.
 *
 * Image uploads are raw bytes (`Content-Type: image/jpeg | image/png | image/webp`), bounded by
 * `moderation.maxBytes` rather than `gateway.bodyBytesMax`: by `Content-Length` before the body
 * is read, and again as it streams (413 `image_too_large`, connection closed).
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from '@trufflesuite/uws-js-unofficial';
import type { CatalogReply } from './catalog-link.js';
import type { GatewayContext } from './context.js';
import { errorJson, errorReply, errorReplyWithMessage } from './errors.js';
import type { ErrorReply } from './errors.js';
import { STATUS_200, STATUS_201 } from './http-exchange.js';
import type { HttpExchange } from './http-exchange.js';
import { RouteId } from './metrics.js';
import { acceptsContentType } from '../moderation/index.js';
import { checkProductBody, isProductId, takeSaleGate } from './product-validate.js';
import { begin, gate } from './gate.js';
import type { BodyRule, Gate } from './gate.js';

/** The error reply of a catalog refusal, with its own message when it has one. */
function catalogError(r: Extract<CatalogReply, { ok: false }>): ErrorReply {
  const field = r.field ?? undefined;
  const base = errorReply(r.code, field);
  if (r.message === null) return base;
  return { ...base, body: errorJson(r.code, { field, message: r.message }) };
}

/** Answers an exchange from a catalog call. */
function reply(x: HttpExchange, p: Promise<CatalogReply>): void {
  p.then(
    (r) => {
      if (r.ok) x.ok(r.created ? STATUS_201 : STATUS_200, r.body);
      else x.fail(catalogError(r));
    },
    (err: unknown) => {
      x.ctx.log.error({ err }, 'catalog call failed');
      x.fail(errorReply('internal'));
    },
  );
}

/** The upload rule: an image type, at most `moderation.maxBytes`. */
function imageRule(ctx: GatewayContext): BodyRule {
  return {
    accepts: acceptsContentType,
    unsupported: errorReply('image_unsupported_type'),
    bytesMax: ctx.config.moderation.maxBytes,
    tooLarge: errorReply('image_too_large'),
  };
}

function onProductBody(x: HttpExchange, body: Record<string, unknown>): void {
  const c = checkProductBody(x.param, body);
  if (!c.ok) return x.fail(errorReply('invalid', c.field));
  reply(x, x.ctx.catalog.putProduct(x.param, c.value.input, c.value.version, x.userId));
}

const UPLOADS_BUSY = errorReplyWithMessage(
  'moderation_overloaded',
  'Too many image uploads in progress at this gateway; retry shortly.',
);

/** Starts an image upload route (`g.body` is its image rule); null when the gate answered. */
function beginUpload(
  res: HttpResponse,
  req: HttpRequest,
  ctx: GatewayContext,
  g: Gate & { readonly body: BodyRule },
): { x: HttpExchange; contentType: string; rule: BodyRule } | null {
  // Read before the handler returns: uWS's request object is only valid until then.
  const contentType = req.getHeader('content-type');
  const rule = g.body;
  const x = begin(res, req, ctx, g);
  if (x === null) return null;
  if (!ctx.admitUpload()) {
    x.fail(UPLOADS_BUSY);
    return null;
  }
  x.upload = true;
  return { x, contentType, rule };
}

const GET_PRODUCT = gate(RouteId.get_product, 'public', false);
const PUT_PRODUCT = gate(RouteId.put_product, 'admin', true);

export function registerCatalogRoutes(app: TemplatedApp, ctx: GatewayContext): void {
  const images = imageRule(ctx);
  const moderateImage = gate(RouteId.moderate_image, 'user', images);
  const productImage = gate(RouteId.product_image, 'admin', images);
  app.get('/v1/products/:id', (res, req) => {
    const x = begin(res, req, ctx, GET_PRODUCT);
    if (!x) return;
    if (!isProductId(x.param)) return x.fail(errorReply('invalid', 'id'));
    reply(x, ctx.catalog.getProduct(x.param));
  });
  app.put('/v1/products/:id', (res, req) => {
    begin(res, req, ctx, PUT_PRODUCT)?.readJson(onProductBody);
  });
  app.post('/v1/moderation/images', (res, req) => {
    const u = beginUpload(res, req, ctx, moderateImage);
    if (!u) return;
    const { x, contentType } = u;
    x.readBody(u.rule, (image) => {
      // A client that leaves frees its place in the moderation queue (main thread only).
      const abort = new AbortController();
      x.onAbort = () => abort.abort();
      reply(x, ctx.catalog.moderateImage(image, contentType, x.userId, abort.signal));
    });
  });
  app.post('/v1/products/:id/images', (res, req) => {
    const u = beginUpload(res, req, ctx, productImage);
    if (!u) return;
    const { x, contentType } = u;
    if (!isProductId(x.param)) return x.fail(errorReply('invalid', 'id'), true);
    x.readBody(u.rule, (image) =>
      reply(x, ctx.catalog.addProductImage(x.param, image, contentType, x.userId)),
    );
  });
}

/** Routes and methods for the 405 answers (see routes.ts). */
export const CATALOG_ALLOWED: [string, string][] = [
  ['/v1/products/:id', 'GET, PUT'],
  ['/v1/moderation/images', 'POST'],
  ['/v1/products/:id/images', 'POST'],
];

/**
 * The sale gate of `PUT /v1/skus/{sku}`: takes `productId` and `moderationOverride` out of the
 * body, checks the rest with `check`, and calls `define` once the gate lets the sale through.
 * Without products (or with `products.requireModeration` off) and no `productId`, the gate
 * costs nothing: not even a call to the main thread.
 */
export function gateSkuPut<T>(
  x: HttpExchange,
  body: Record<string, unknown>,
  check: (body: Record<string, unknown>) => { ok: true; value: T } | { ok: false; field: string },
  define: (value: T) => void,
): void {
  const g = takeSaleGate(body);
  if (!g.ok) return x.fail(errorReply('invalid', g.field));
  const c = check(g.value.body);
  if (!c.ok) return x.fail(errorReply('invalid', c.field));
  const { productId, override } = g.value;
  if (productId === null && !x.ctx.catalog.gatesSales) return define(c.value);
  x.ctx.catalog.gateSale(x.param, productId, override, x.userId).then(
    (r) => (r.ok ? define(c.value) : x.fail(catalogError(r))),
    (err: unknown) => {
      x.ctx.log.error({ err }, 'sale gate failed');
      x.fail(errorReply('internal'));
    },
  );
}
