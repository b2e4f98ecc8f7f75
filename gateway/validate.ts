/**
 * Request bodies → typed requests, or the first bad field. Bad input never reaches the engine:
 * the limits here mirror the engine's own (`actors/validate.ts`), which checks again.
 */
import type { ReserveRequest, SkuDefinition, SkuUpdate } from '../engine/index.js';

export const SKU_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** User ids and idempotency keys: 1 to 128 UTF-8 bytes, as the engine's wire codec takes. */
export const TOKEN_BYTES_MAX = 128;
const STOCK_MAX = 2 ** 31 - 1;
const HOLD_TTL_MS_MAX = 7 * 86_400_000;
const NAME_LENGTH_MAX = 200;
const TIME_MAX = 8.64e15;

/** Either a value or the name of the first field that is missing or wrong. */
export type Checked<T> = { ok: true; value: T } | { ok: false; field: string };

const bad = (field: string): { ok: false; field: string } => ({ ok: false, field });

export function isSkuId(s: unknown): s is string {
  return typeof s === 'string' && SKU_ID_PATTERN.test(s);
}

export function isToken(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > TOKEN_BYTES_MAX)
    return false;
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f) return Buffer.byteLength(value, 'utf8') <= TOKEN_BYTES_MAX;
  }
  return true;
}

function isInt(v: unknown, min: number, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** Parses JSON text into a plain object; null when it is not JSON or not an object. */
export function parseObject(text: string): Record<string, unknown> | null {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : null;
}

/**
 * A purchase: `{ userId?, qty, idempotencyKey }`. `tokenUser` is the user from the bearer token;
 * without one (`--auth none`) the body's `userId` is required.
 */
export function checkReserve(
  sku: string,
  body: Record<string, unknown>,
  tokenUser: string | null,
  qtyMax: number,
): Checked<ReserveRequest> {
  if (!isSkuId(sku)) return bad('sku');
  let userId: unknown = tokenUser;
  if (userId === null) userId = body.userId;
  if (!isToken(userId)) return bad('userId');
  if (!isInt(body.qty, 1, qtyMax)) return bad('qty');
  const idempotencyKey = body.idempotencyKey;
  if (!isToken(idempotencyKey)) return bad('idempotencyKey');
  return { ok: true, value: { sku, userId, qty: body.qty, idempotencyKey } };
}

const SETTINGS = ['perUserLimit', 'holdTtlMs', 'startsAt', 'endsAt', 'price', 'name'] as const;
const DEFINITION_KEYS = new Set<string>(['stock', ...SETTINGS]);

function isTime(v: unknown): boolean {
  return v === null || isInt(v, 0, TIME_MAX);
}

function checkSetting(key: (typeof SETTINGS)[number], v: unknown): boolean {
  switch (key) {
    case 'perUserLimit':
      return isInt(v, 0, STOCK_MAX);
    case 'holdTtlMs':
      return isInt(v, 1, HOLD_TTL_MS_MAX);
    case 'startsAt':
    case 'endsAt':
      return isTime(v);
    case 'price':
      return isInt(v, 0, Number.MAX_SAFE_INTEGER);
    case 'name':
      return typeof v === 'string' && v.length <= NAME_LENGTH_MAX;
  }
}

/**
 * The body of `PUT /v1/skus/{sku}`: `stock` (required when the SKU is new) and any settings.
 * Unknown keys are rejected so a typo (`perUserLimt`) does not silently do nothing.
 */
export function checkSkuBody(
  sku: string,
  body: Record<string, unknown>,
): Checked<{ definition: SkuDefinition | null; update: SkuUpdate; stock: number | null }> {
  if (!isSkuId(sku)) return bad('sku');
  for (const key of Object.keys(body)) if (!DEFINITION_KEYS.has(key)) return bad(key);
  const update: SkuUpdate = {};
  for (const key of SETTINGS) {
    const v = body[key];
    if (v === undefined) continue;
    if (!checkSetting(key, v)) return bad(key);
    (update as Record<string, unknown>)[key] = v;
  }
  if (update.startsAt != null && update.endsAt != null && update.endsAt <= update.startsAt) {
    return bad('endsAt');
  }
  if (body.stock !== undefined && !isInt(body.stock, 0, STOCK_MAX)) return bad('stock');
  const stock = body.stock === undefined ? null : body.stock;
  const definition = stock === null ? null : { sku, stock, ...update };
  return { ok: true, value: { definition, update, stock } };
}

/** The body of `POST /v1/skus/{sku}/restock`: `{ qty }`, a positive integer. */
export function checkRestock(sku: string, body: Record<string, unknown>): Checked<number> {
  if (!isSkuId(sku)) return bad('sku');
  if (!isInt(body.qty, 1, STOCK_MAX)) return bad('qty');
  return { ok: true, value: body.qty };
}

/** A reservation id from the path (`<sku>:<n>`, possibly percent-encoded); null when malformed. */
export function checkReservationId(raw: string): string | null {
  let id = raw;
  if (id.includes('%')) {
    try {
      id = decodeURIComponent(id);
    } catch {
      return null;
    }
  }
  const colon = id.lastIndexOf(':');
  if (colon <= 0 || !isSkuId(id.slice(0, colon))) return null;
  return /^[1-9]\d{0,14}$/.test(id.slice(colon + 1)) ? id : null;
}
