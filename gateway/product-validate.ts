/**
 * Bodies of the product routes → typed input, or the first bad field (422 `invalid`), and the
 * sale-gate fields of `PUT /v1/skus/{sku}`. Nothing invalid reaches MySQL.
 */
import type { ProductInput } from './catalog-link.js';
import { isSkuId } from './validate.js';
import type { Checked } from './validate.js';

const NAME_LENGTH_MAX = 255;
/** Characters; TEXT holds 65,535 bytes, and 4 bytes per character must still fit. */
const DESCRIPTION_LENGTH_MAX = 16_000;
const IMAGE_URLS_MAX = 32;
const URL_LENGTH_MAX = 2048;
const PRICE_MAX = 1e15;
const VERSION_MAX = Number.MAX_SAFE_INTEGER;

const PRODUCT_KEYS = new Set(['name', 'description', 'price', 'imageUrls', 'sku', 'version']);

const bad = (field: string): { ok: false; field: string } => ({ ok: false, field });

/** Product ids: the same alphabet and length as SKU ids (the `products.id` column). */
export const isProductId = isSkuId;

function isHttpUrl(v: unknown): boolean {
  if (typeof v !== 'string' || v.length === 0 || v.length > URL_LENGTH_MAX) return false;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return false;
  }
  return u.protocol === 'https:' || u.protocol === 'http:';
}

/**
 * The body of `PUT /v1/products/{id}`: `{ name, description?, price?, imageUrls?, sku?,
 * version? }`. PUT replaces: an absent optional field is cleared. Unknown keys are refused, so
 * a typo does not silently clear a field.
 */
export function checkProductBody(
  id: string,
  body: Record<string, unknown>,
): Checked<{ input: ProductInput; version: number | null }> {
  if (!isProductId(id)) return bad('id');
  for (const key of Object.keys(body)) if (!PRODUCT_KEYS.has(key)) return bad(key);
  const { name, description, price, imageUrls, sku, version } = body;
  if (typeof name !== 'string' || name.trim().length === 0 || name.length > NAME_LENGTH_MAX)
    return bad('name');
  if (description != null) {
    if (typeof description !== 'string' || description.length > DESCRIPTION_LENGTH_MAX)
      return bad('description');
  }
  if (price != null) {
    if (typeof price !== 'number' || !Number.isFinite(price) || price < 0 || price > PRICE_MAX)
      return bad('price');
  }
  const urls: string[] = [];
  if (imageUrls != null) {
    if (!Array.isArray(imageUrls) || imageUrls.length > IMAGE_URLS_MAX) return bad('imageUrls');
    for (const u of imageUrls as unknown[]) {
      if (!isHttpUrl(u)) return bad('imageUrls');
      urls.push(u as string);
    }
  }
  if (sku != null && !isSkuId(sku)) return bad('sku');
  if (version != null) {
    if (typeof version !== 'number' || !Number.isInteger(version)) return bad('version');
    if (version < 0 || version > VERSION_MAX) return bad('version');
  }
  const input: ProductInput = {
    name,
    description: description ?? null,
    price: price ?? null,
    imageUrls: urls,
    sku: sku ?? null,
  };
  return { ok: true, value: { input, version: version ?? null } };
}

export interface SaleGateFields {
  /** The SKU body without the gate's fields, for `checkSkuBody`. */
  body: Record<string, unknown>;
  productId: string | null;
  override: boolean;
}

/**
 * Takes `productId` and `moderationOverride` out of a `PUT /v1/skus/{sku}` body. They belong to
 * the sale gate (cli/catalog-service.ts), not to the engine's SKU definition.
 */
export function takeSaleGate(body: Record<string, unknown>): Checked<SaleGateFields> {
  const { productId, moderationOverride, ...rest } = body;
  if (productId !== undefined && productId !== null && !isProductId(productId))
    return bad('productId');
  if (moderationOverride !== undefined && typeof moderationOverride !== 'boolean')
    return bad('moderationOverride');
  return {
    ok: true,
    value: { body: rest, productId: productId ?? null, override: moderationOverride === true },
  };
}
