import type { RowDataPacket } from 'mysql2/promise';
import type { ReservationRow, SkuRow } from './sku-fold.js';

/**
 * SQL text for the projector's writes, built by hand rather than through `format` with
 * placeholders: a batch writes tens of thousands of values, and numbers need no escaping.
 * Every string goes through the driver's `escape`; every number is checked to be finite.
 */
export type Escape = (value: string) => string;

/** Largest epoch ms a DATETIME holds (9999-12-31 23:59:59.999); later times are clamped. */
const DATETIME_MS_MAX = 253_402_300_799_999;

export const SKU_COLUMNS =
  'id, name, price, stock, available, reserved, sold, returned, restocked, closed, ' +
  'starts_at, ends_at, per_user_limit, hold_ttl_ms, version, updated_at';

const RESERVATION_COLUMNS =
  'id, sku, user_id, qty, status, idempotency_key, expires_at, created_at, updated_at, last_seq';

/**
 * The upsert of reservation rows. A row changes only for an event later than the one that last
 * changed it (`last_seq`), so re-applying a batch changes nothing; the columns a status change
 * does not know (null in its row) keep what the `reserved` event wrote. MySQL assigns left to
 * right, so `last_seq` is compared before it is updated, last.
 */
const RESERVATION_UPSERT_TAIL =
  ' ON DUPLICATE KEY UPDATE ' +
  'status = IF(VALUES(last_seq) > last_seq, VALUES(status), status), ' +
  'updated_at = IF(VALUES(last_seq) > last_seq, VALUES(updated_at), updated_at), ' +
  'user_id = COALESCE(user_id, VALUES(user_id)), ' +
  'idempotency_key = COALESCE(idempotency_key, VALUES(idempotency_key)), ' +
  'expires_at = COALESCE(expires_at, VALUES(expires_at)), ' +
  'created_at = COALESCE(created_at, VALUES(created_at)), ' +
  'last_seq = GREATEST(last_seq, VALUES(last_seq))';

export function num(v: number | null): string {
  if (v === null) return 'NULL';
  if (!Number.isFinite(v)) throw new RangeError(`not a finite number: ${v}`);
  return String(v);
}

/** Epoch ms as a UTC DATETIME(3) literal. */
export function datetime(ms: number | null): string {
  return ms === null ? 'NULL' : `'${utcDatetime(ms)}'`;
}

/** Epoch ms as a DATETIME(3) value in UTC, `YYYY-MM-DD hh:mm:ss.mmm` (a query parameter). */
export function utcDatetime(ms: number): string {
  const d = new Date(Math.min(Math.max(ms, 0), DATETIME_MS_MAX)).toISOString();
  return `${d.slice(0, 10)} ${d.slice(11, 23)}`;
}

/** A DATETIME(3) read back as a string (the pool sets `dateStrings`) to epoch ms. */
export function parseDatetime(v: unknown): number | null {
  if (v === null || v === undefined) return null;
  const text = typeof v === 'string' ? v : v instanceof Date ? v.toISOString() : '';
  return Date.parse(`${text.replace(' ', 'T').replace(/Z$/, '')}Z`);
}

function skuValues(r: SkuRow, esc: Escape): string {
  return (
    `${esc(r.id)}, ${esc(r.name)}, ${num(r.price)}, ${num(r.stock)}, ${num(r.available)}, ` +
    `${num(r.reserved)}, ${num(r.sold)}, ${num(r.returned)}, ${num(r.restocked)}, ` +
    `${r.closed ? 1 : 0}, ${datetime(r.startsAt)}, ${datetime(r.endsAt)}, ` +
    `${num(r.perUserLimit)}, ${num(r.holdTtlMs)}, ${num(r.version)}, ${datetime(r.updatedAt)}`
  );
}

/** Inserts a SKU's first row; affects 0 rows (and changes nothing) if the row exists. */
export function insertSkuSql(r: SkuRow, esc: Escape): string {
  const values = skuValues(r, esc);
  return `INSERT INTO skus (${SKU_COLUMNS}) VALUES (${values}) ON DUPLICATE KEY UPDATE id = id`;
}

/** The CAS write: affects 1 row only if the row is still at `expectedVersion`. */
export function updateSkuSql(r: SkuRow, expectedVersion: number, esc: Escape): string {
  return (
    `UPDATE skus SET name = ${esc(r.name)}, price = ${num(r.price)}, stock = ${num(r.stock)}, ` +
    `available = ${num(r.available)}, reserved = ${num(r.reserved)}, sold = ${num(r.sold)}, ` +
    `returned = ${num(r.returned)}, restocked = ${num(r.restocked)}, ` +
    `closed = ${r.closed ? 1 : 0}, starts_at = ${datetime(r.startsAt)}, ` +
    `ends_at = ${datetime(r.endsAt)}, per_user_limit = ${num(r.perUserLimit)}, ` +
    `hold_ttl_ms = ${num(r.holdTtlMs)}, version = ${num(r.version)}, ` +
    `updated_at = ${datetime(r.updatedAt)} ` +
    `WHERE id = ${esc(r.id)} AND version = ${num(expectedVersion)}`
  );
}

export function upsertReservationsSql(rows: readonly ReservationRow[], esc: Escape): string {
  const values: string[] = new Array<string>(rows.length);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i];
    values[i] =
      `(${esc(r.id)}, ${esc(r.sku)}, ${r.userId === null ? 'NULL' : esc(r.userId)}, ` +
      `${num(r.qty)}, '${r.status}', ` +
      `${r.idempotencyKey === null ? 'NULL' : esc(r.idempotencyKey)}, ` +
      `${datetime(r.expiresAt)}, ${datetime(r.createdAt)}, ${datetime(r.updatedAt)}, ` +
      `${num(r.lastSeq)})`;
  }
  const head = `INSERT INTO reservations (${RESERVATION_COLUMNS}) VALUES `;
  return `${head}${values.join(', ')}${RESERVATION_UPSERT_TAIL}`;
}

export function skuRowOf(r: RowDataPacket): SkuRow {
  return {
    id: String(r.id),
    name: String(r.name),
    price: r.price === null ? null : Number(r.price),
    stock: Number(r.stock),
    available: Number(r.available),
    reserved: Number(r.reserved),
    sold: Number(r.sold),
    returned: Number(r.returned),
    restocked: Number(r.restocked),
    closed: Number(r.closed) !== 0,
    startsAt: parseDatetime(r.starts_at),
    endsAt: parseDatetime(r.ends_at),
    perUserLimit: Number(r.per_user_limit),
    holdTtlMs: Number(r.hold_ttl_ms),
    version: Number(r.version),
    updatedAt: parseDatetime(r.updated_at) ?? 0,
  };
}
