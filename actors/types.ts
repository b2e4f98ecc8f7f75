import type { StatusName, InvalidField } from './status.js';
import type { ReservationState } from './lifecycle.js';

/** What a sale is: its stock, limits, window and price. Times are epoch milliseconds. */
export interface SkuDefinition {
  /** SKU id: 1 to 64 characters of `A-Z a-z 0-9 . _ -`. */
  sku: string;
  /** Units for sale at the start. */
  stock: number;
  /** Units one user may hold or have bought at once; 0 means no limit. */
  perUserLimit?: number;
  /** How long a reservation holds its units before it expires, unless confirmed. */
  holdTtlMs?: number;
  /** The sale opens at this time (reservations before it are `not_open`); `null` = now. */
  startsAt?: number | null;
  /** The sale closes at this time (reservations after it are `closed`); `null` = never. */
  endsAt?: number | null;
  /** Price in minor units (cents), for the read side; the engine does not charge. */
  price?: number;
  /** Display name, for the read side. */
  name?: string;
}

/** Settings that `updateSku` may change; stock changes go through `restock`. */
export type SkuUpdate = Partial<Omit<SkuDefinition, 'sku' | 'stock'>>;

/** A SKU definition with every default filled in. */
export interface SkuSettings {
  readonly sku: string;
  readonly stock: number;
  readonly perUserLimit: number;
  readonly holdTtlMs: number;
  readonly startsAt: number | null;
  readonly endsAt: number | null;
  readonly price: number;
  readonly name: string;
}

/** The live state of one SKU, as `getSku` returns it. */
export interface SkuSnapshot extends SkuSettings {
  /** Units still available to reserve. */
  readonly available: number;
  /** Units held by open reservations. */
  readonly reserved: number;
  /** Units sold (confirmed) and not returned. */
  readonly sold: number;
  readonly returned: number;
  readonly restocked: number;
  readonly initialStock: number;
  readonly closed: boolean;
  /** Reservations ever made (the last reservation number). */
  readonly reservations: number;
  /** The SKU's event sequence number: the count of events it has emitted. */
  readonly seq: number;
}

interface EventBase {
  readonly sku: string;
  readonly seq: number;
  /** When the decision was made (epoch ms). */
  readonly at: number;
}

/** Every state change of a SKU is one of these; replaying them in order rebuilds the SKU. */
export type SkuEvent =
  | (EventBase & { readonly type: 'sku_defined' } & Omit<SkuSettings, 'sku'>)
  | (EventBase & { readonly type: 'sku_updated' } & Omit<SkuSettings, 'sku' | 'stock'>)
  | (EventBase & {
      readonly type: 'reserved';
      readonly reservation: number;
      readonly userId: string;
      readonly qty: number;
      readonly idempotencyKey: string;
      readonly expiresAt: number;
    })
  | (EventBase & {
      readonly type: 'confirmed' | 'cancelled' | 'expired' | 'returned';
      readonly reservation: number;
      readonly qty: number;
    })
  | (EventBase & { readonly type: 'restocked'; readonly qty: number })
  | (EventBase & { readonly type: 'sale_closed' });

export type SkuEventType = SkuEvent['type'];

export type { StatusName, InvalidField, ReservationState };
