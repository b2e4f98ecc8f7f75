import { CounterMove, moveCounters, reservationId } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';

/**
 * The pure half of the MySQL projector: journal events folded into the rows they leave in
 * `skus` and `reservations`. No I/O here, so the rules are tested without a database.
 *
 * A row's `version` is the seq of the last event applied to it. Folding skips every event whose
 * seq is not above the row's version (a replay, or a batch another writer already applied) and
 * refuses a gap: the events of a SKU carry seq 1, 2, 3... with none missing, so an event more
 * than one above the version means the row does not reflect the journal.
 */
export interface SkuRow {
  readonly id: string;
  name: string;
  price: number | null;
  /** Initial stock plus restocked. */
  stock: number;
  available: number;
  reserved: number;
  sold: number;
  returned: number;
  restocked: number;
  closed: boolean;
  startsAt: number | null;
  endsAt: number | null;
  perUserLimit: number;
  holdTtlMs: number;
  version: number;
  /** `at` of the last event applied (epoch ms). */
  updatedAt: number;
}

export type ReservationStatus = 'held' | 'confirmed' | 'cancelled' | 'expired' | 'returned';

/**
 * The row one batch writes for a reservation. A reservation made in an earlier batch gets a
 * status change only: its user, key, expiry and creation time are null here and left as they
 * are by the upsert (see projector.ts).
 */
export interface ReservationRow {
  readonly id: string;
  readonly sku: string;
  userId: string | null;
  qty: number;
  status: ReservationStatus;
  idempotencyKey: string | null;
  expiresAt: number | null;
  createdAt: number | null;
  updatedAt: number;
  lastSeq: number;
}

/** Thrown when events cannot be folded onto a row (a gap in seq, no `sku_defined`). */
export class FoldError extends Error {
  constructor(
    readonly sku: string,
    message: string,
  ) {
    super(`${sku}: ${message}`);
    this.name = 'FoldError';
  }
}

/**
 * Folds `events` (one SKU's, in journal order) onto `start` (its row, or null when there is
 * none) and returns the resulting row, a new object; `start` itself is not changed. Returns
 * `start` when every event was at or below its version. Reservation rows go into
 * `reservations` (by id; later events of the same reservation update the same row object).
 * `upTo` stops after the event with that seq (for comparing a row written by another writer).
 */
export function foldSku(
  start: SkuRow | null,
  events: readonly SkuEvent[],
  reservations: Map<string, ReservationRow> | null,
  upTo = Infinity,
): SkuRow | null {
  let row = start;
  let copied = false;
  for (const ev of events) {
    if (ev.seq > upTo) break;
    if (row !== null && ev.seq <= row.version) continue;
    if (row === null) {
      if (ev.type !== 'sku_defined') {
        throw new FoldError(ev.sku, `event ${ev.type} #${ev.seq} before the SKU was defined`);
      }
      row = definedRow(ev);
      copied = true;
    } else {
      if (ev.seq !== row.version + 1) {
        throw new FoldError(ev.sku, `event #${ev.seq} follows version ${row.version}`);
      }
      if (!copied) {
        row = { ...row };
        copied = true;
      }
      applyEvent(row, ev, reservations);
    }
    row.version = ev.seq;
    row.updatedAt = ev.at;
  }
  return row;
}

function definedRow(ev: Extract<SkuEvent, { type: 'sku_defined' }>): SkuRow {
  return {
    id: ev.sku,
    name: ev.name,
    price: ev.price,
    stock: ev.stock,
    available: ev.stock,
    reserved: 0,
    sold: 0,
    returned: 0,
    restocked: 0,
    closed: false,
    startsAt: ev.startsAt,
    endsAt: ev.endsAt,
    perUserLimit: ev.perUserLimit,
    holdTtlMs: ev.holdTtlMs,
    version: ev.seq,
    updatedAt: ev.at,
  };
}

/**
 * One event's effect on a row. The counters move by `moveCounters`, the rule the actor itself
 * follows; only `stock` (initial plus restocked), which the actor does not keep, is moved here.
 */
function applyEvent(
  row: SkuRow,
  ev: SkuEvent,
  reservations: Map<string, ReservationRow> | null,
): void {
  switch (ev.type) {
    case 'sku_defined':
      throw new FoldError(ev.sku, `sku_defined #${ev.seq} on a SKU defined already`);
    case 'sku_updated':
      row.name = ev.name;
      row.price = ev.price;
      row.startsAt = ev.startsAt;
      row.endsAt = ev.endsAt;
      row.perUserLimit = ev.perUserLimit;
      row.holdTtlMs = ev.holdTtlMs;
      return;
    case 'reserved':
      moveCounters(row, CounterMove.reserve, ev.qty);
      reservations?.set(reservationId(ev.sku, ev.reservation), {
        id: reservationId(ev.sku, ev.reservation),
        sku: ev.sku,
        userId: ev.userId,
        qty: ev.qty,
        status: 'held',
        idempotencyKey: ev.idempotencyKey,
        expiresAt: ev.expiresAt,
        createdAt: ev.at,
        updatedAt: ev.at,
        lastSeq: ev.seq,
      });
      return;
    case 'confirmed':
      moveCounters(row, CounterMove.confirm, ev.qty);
      break;
    case 'cancelled':
    case 'expired':
      moveCounters(row, CounterMove.release, ev.qty);
      break;
    case 'returned':
      moveCounters(row, CounterMove.return, ev.qty);
      break;
    case 'restocked':
      row.stock += ev.qty;
      moveCounters(row, CounterMove.restock, ev.qty);
      return;
    case 'sale_closed':
      row.closed = true;
      return;
  }
  if (reservations) transition(reservations, ev);
}

function transition(
  reservations: Map<string, ReservationRow>,
  ev: Extract<SkuEvent, { type: 'confirmed' | 'cancelled' | 'expired' | 'returned' }>,
): void {
  const id = reservationId(ev.sku, ev.reservation);
  const r = reservations.get(id);
  if (r) {
    r.status = ev.type;
    r.updatedAt = ev.at;
    r.lastSeq = ev.seq;
    return;
  }
  reservations.set(id, {
    id,
    sku: ev.sku,
    userId: null,
    qty: ev.qty,
    status: ev.type,
    idempotencyKey: null,
    expiresAt: null,
    createdAt: null,
    updatedAt: ev.at,
    lastSeq: ev.seq,
  });
}

/** Whether two rows agree on everything the events decide (all but `updatedAt`). */
export function sameCounters(a: SkuRow, b: SkuRow): boolean {
  return (
    a.version === b.version &&
    a.stock === b.stock &&
    a.available === b.available &&
    a.reserved === b.reserved &&
    a.sold === b.sold &&
    a.returned === b.returned &&
    a.restocked === b.restocked &&
    a.closed === b.closed
  );
}
