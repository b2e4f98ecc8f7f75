/**
 * Request bodies → typed requests, or the first bad field. Bad input never reaches the engine,
 * and it is judged by the engine's own rules (imported, never copied: a copy drifts), so every
 * gateway thread refuses exactly what the engine would.
 */
import {
  HOLD_TTL_MS_MAX,
  IDEMPOTENCY_KEY_BYTES_MAX,
  STOCK_MAX,
  TIME_MAX,
  USER_ID_BYTES_MAX,
  isValidName,
  isValidSkuId,
  isValidToken,
} from '../engine/index.js';
import type { ReserveRequest, SkuDefinition, SkuUpdate } from '../engine/index.js';

/** Either a value or the name of the first field that is missing or wrong. */
export type Checked<T> = { ok: true; value: T } | { ok: false; field: string };

const bad = (field: string): { ok: false; field: string } => ({ ok: false, field });

export const isSkuId = isValidSkuId;

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
  if (!isValidToken(userId, USER_ID_BYTES_MAX)) return bad('userId');
  if (!isInt(body.qty, 1, qtyMax)) return bad('qty');
  const idempotencyKey = body.idempotencyKey;
  if (!isValidToken(idempotencyKey, IDEMPOTENCY_KEY_BYTES_MAX)) return bad('idempotencyKey');
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
      return isValidName(v);
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
