/**
 * Outcome codes of every command, as small integers on the wire and in the actor's hot path, and
 * as stable strings in the public API. The order is part of the wire format: append only.
 */
export const STATUS_NAMES = [
  'reserved',
  'sold_out',
  'limit_exceeded',
  'not_open',
  'closed',
  'unknown_sku',
  'invalid',
  'idempotency_conflict',
  'overloaded',
  'confirmed',
  'cancelled',
  'hold_expired',
  'returned',
  'unknown_reservation',
  'invalid_transition',
  'restocked',
  'sale_closed',
  'shard_unavailable',
  'defined',
  'updated',
  'sku_exists',
  'journal_unavailable',
] as const;

export type StatusName = (typeof STATUS_NAMES)[number];

/** `Status.sold_out === 1`, etc. */
export const Status = Object.freeze(
  Object.fromEntries(STATUS_NAMES.map((name, i) => [name, i])) as { [K in StatusName]: number },
);

/** Fields a request can be `invalid` on; the index travels in the result's aux byte. */
export const INVALID_FIELDS = [
  'sku',
  'userId',
  'qty',
  'idempotencyKey',
  'reservationId',
  'stock',
  'perUserLimit',
  'holdTtlMs',
  'startsAt',
  'endsAt',
  'price',
  'name',
  'window',
] as const;

export type InvalidField = (typeof INVALID_FIELDS)[number];

export const InvalidFieldIndex = Object.freeze(
  Object.fromEntries(INVALID_FIELDS.map((name, i) => [name, i])) as { [K in InvalidField]: number },
);
