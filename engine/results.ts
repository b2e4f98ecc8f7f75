import {
  INVALID_FIELDS,
  STATUS_NAMES,
  RESERVATION_STATES,
  reservationId,
} from '../actors/index.js';
import type { InvalidField, ReservationState, SkuSnapshot } from '../actors/index.js';
import { ERROR_CATALOGUE } from './errors.js';
import type { ErrorCode } from './errors.js';

/** A request to reserve units of one SKU. */
export interface ReserveRequest {
  sku: string;
  userId: string;
  /** Units to reserve: an integer from 1 to `engine.qtyMax`. */
  qty: number;
  /** Client-chosen key, unique per purchase attempt; a retry with it returns the first answer. */
  idempotencyKey: string;
}

/** A business rejection or a retriable refusal; never thrown, always returned. */
export interface Rejection {
  readonly status: ErrorCode;
  readonly retriable: boolean;
  /** For `invalid`: the offending field. */
  readonly field?: InvalidField;
  /** For `invalid_transition`: the reservation's current state. */
  readonly state?: ReservationState;
}

export interface Reserved {
  readonly status: 'reserved';
  /** `<sku>:<number>`; pass it to confirm, cancel and returnOrder. */
  readonly reservationId: string;
  readonly sku: string;
  readonly qty: number;
  /** When the hold lapses unless confirmed (epoch ms). */
  readonly expiresAt: number;
  /** True when this answer repeats an earlier one for the same idempotency key. */
  readonly duplicate: boolean;
}

export type ReserveResult = Reserved | Rejection;

export interface ReservationChanged {
  readonly status: 'confirmed' | 'cancelled' | 'returned';
  readonly reservationId: string;
  readonly state: ReservationState;
}

export type ConfirmResult = ReservationChanged | Rejection;

export interface Restocked {
  readonly status: 'restocked';
  readonly sku: string;
  /** Units available after the restock. */
  readonly available: number;
}

export interface SaleClosed {
  readonly status: 'sale_closed';
  readonly sku: string;
}

export interface SkuDefined {
  readonly status: 'defined' | 'updated';
  readonly sku: SkuSnapshot;
}

export type RestockResult = Restocked | Rejection;
export type CloseResult = SaleClosed | Rejection;
export type DefineResult = SkuDefined | Rejection;

/** Rejections are immutable and shared: one object per (status, field/state), made up front. */
const plain = new Map<string, Rejection>();
for (const code of Object.keys(ERROR_CATALOGUE) as ErrorCode[]) {
  plain.set(code, Object.freeze({ status: code, retriable: ERROR_CATALOGUE[code].retriable }));
}
const invalidByField = INVALID_FIELDS.map((field) =>
  Object.freeze({ status: 'invalid' as const, retriable: false, field }),
);
const transitionByState = [undefined, ...RESERVATION_STATES].map((state) =>
  Object.freeze({ status: 'invalid_transition' as const, retriable: false, state }),
);

export function rejection(code: ErrorCode): Rejection {
  return plain.get(code)!;
}

export function invalid(field: InvalidField): Rejection {
  return invalidByField[INVALID_FIELDS.indexOf(field)];
}

/** The shared rejection for a wire status code and its aux byte. */
export function rejectionOf(status: number, aux: number): Rejection {
  const name = STATUS_NAMES[status];
  if (name === 'invalid') return invalidByField[aux] ?? plain.get('invalid')!;
  if (name === 'invalid_transition') return transitionByState[aux];
  const r = plain.get(name);
  if (!r) throw new Error(`status ${name} is not a rejection`);
  return r;
}

export function isRejection(r: { status: string }): r is Rejection {
  return Object.hasOwn(ERROR_CATALOGUE, r.status);
}

export { reservationId };
export { parseReservationId } from '../actors/index.js';

export function stateNameOrNull(code: number): ReservationState | undefined {
  return RESERVATION_STATES[code - 1];
}
