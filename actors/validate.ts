import type { InvalidField, SkuDefinition, SkuSettings, SkuUpdate } from './types.js';

/** Limits on identifiers and quantities. They bound every buffer the wire codec writes. */
export const SKU_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
export const SKU_ID_LENGTH_MAX = 64;
export const USER_ID_BYTES_MAX = 128;
export const IDEMPOTENCY_KEY_BYTES_MAX = 128;
export const STOCK_MAX = 2 ** 31 - 1;
export const HOLD_TTL_MS_MAX = 7 * 86_400_000;
export const NAME_LENGTH_MAX = 200;
/** The latest time a sale window may name (ms since the epoch): JavaScript's Date range. */
export const TIME_MAX = 8.64e15;

export function isValidSkuId(sku: unknown): sku is string {
  return typeof sku === 'string' && SKU_ID_PATTERN.test(sku);
}

/**
 * A user id or idempotency key: a non-empty, well-formed string (no lone surrogate, which UTF-8
 * would turn into U+FFFD, so that two different keys became one) of at most `maxBytes` UTF-8
 * bytes.
 */
export function isValidToken(value: unknown, maxBytes: number): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxBytes) return false;
  // Fast path: an ASCII string's length is its byte length.
  for (let i = 0; i < value.length; i++) {
    if (value.charCodeAt(i) > 0x7f)
      return value.isWellFormed() && Buffer.byteLength(value, 'utf8') <= maxBytes;
  }
  return true;
}

/** A SKU's display name: a well-formed string (see `isValidToken`) of at most 200 UTF-16 units. */
export function isValidName(name: unknown): name is string {
  return typeof name === 'string' && name.length <= NAME_LENGTH_MAX && name.isWellFormed();
}

export function isValidQty(qty: unknown, qtyMax: number): qty is number {
  return typeof qty === 'number' && Number.isInteger(qty) && qty >= 1 && qty <= qtyMax;
}

const isInt = (v: unknown, min: number, max: number): boolean =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const isTime = (v: unknown): boolean => v === null || v === undefined || isInt(v, 0, TIME_MAX);

function checkSettings(d: SkuUpdate): InvalidField | null {
  if (d.perUserLimit !== undefined && !isInt(d.perUserLimit, 0, STOCK_MAX)) return 'perUserLimit';
  if (d.holdTtlMs !== undefined && !isInt(d.holdTtlMs, 1, HOLD_TTL_MS_MAX)) return 'holdTtlMs';
  if (!isTime(d.startsAt)) return 'startsAt';
  if (!isTime(d.endsAt)) return 'endsAt';
  if (d.price !== undefined && !isInt(d.price, 0, Number.MAX_SAFE_INTEGER)) return 'price';
  if (d.name !== undefined && !isValidName(d.name)) return 'name';
  return null;
}

/** The first invalid field of a definition, or null. */
export function checkSkuDefinition(d: SkuDefinition): InvalidField | null {
  if (typeof d !== 'object' || d === null) return 'sku';
  if (!isValidSkuId(d.sku)) return 'sku';
  if (!isInt(d.stock, 0, STOCK_MAX)) return 'stock';
  const bad = checkSettings(d);
  if (bad) return bad;
  if (d.startsAt != null && d.endsAt != null && d.endsAt <= d.startsAt) return 'window';
  return null;
}

/** The first invalid field of an update applied to `current`, or null. */
export function checkSkuUpdate(update: SkuUpdate, current: SkuSettings): InvalidField | null {
  if (typeof update !== 'object' || update === null) return 'sku';
  for (const key of Object.keys(update)) {
    if (key === 'sku' || key === 'stock') return key;
  }
  const bad = checkSettings(update);
  if (bad) return bad;
  const startsAt = update.startsAt === undefined ? current.startsAt : update.startsAt;
  const endsAt = update.endsAt === undefined ? current.endsAt : update.endsAt;
  if (startsAt != null && endsAt != null && endsAt <= startsAt) return 'window';
  return null;
}

/** Fills the defaults of a valid definition. */
export function settingsOf(d: SkuDefinition, holdTtlMsDefault: number): SkuSettings {
  return {
    sku: d.sku,
    stock: d.stock,
    perUserLimit: d.perUserLimit ?? 0,
    holdTtlMs: d.holdTtlMs ?? holdTtlMsDefault,
    startsAt: d.startsAt ?? null,
    endsAt: d.endsAt ?? null,
    price: d.price ?? 0,
    name: d.name ?? d.sku,
  };
}
