import type { SkuEvent, SkuSettings } from './types.js';

export type TransitionEventType = 'confirmed' | 'cancelled' | 'expired' | 'returned';

/** What an event log reads from the actor that emits an event (`ActorView` is one). */
export interface ActorView {
  readonly sku: string;
  /** The SKU id's UTF-8 bytes. */
  readonly skuBytes: Uint8Array;
  readonly initialStock: number;
  settings(): SkuSettings;
  reservationQty(r: number): number;
  reservationExpiresAt(r: number): number;
  reservationUser(r: number): string;
  reservationKey(r: number): string;
  /** Copies reservation r's user id bytes to `out` at `at`; returns how many. */
  copyReservationUser(r: number, out: Uint8Array, at: number): number;
  copyReservationKey(r: number, out: Uint8Array, at: number): number;
}

/**
 * Where an actor puts the events it emits. The actor calls one method per event and passes
 * itself, so each sink pulls only what it needs: the journal copies key bytes straight from the
 * actor's arenas, a subscriber gets objects, and the `nullEventLog` costs nothing.
 */
export interface EventLog {
  skuDefined(actor: ActorView, seq: number, at: number): void;
  skuUpdated(actor: ActorView, seq: number, at: number): void;
  reserved(actor: ActorView, seq: number, at: number, reservation: number): void;
  transition(
    actor: ActorView,
    seq: number,
    at: number,
    type: TransitionEventType,
    reservation: number,
  ): void;
  restocked(actor: ActorView, seq: number, at: number, qty: number): void;
  saleClosed(actor: ActorView, seq: number, at: number): void;
}

const noop = (): void => {};

/** Drops every event: the engine with no journal and no subscriber. */
export const nullEventLog: EventLog = Object.freeze({
  skuDefined: noop,
  skuUpdated: noop,
  reserved: noop,
  transition: noop,
  restocked: noop,
  saleClosed: noop,
});

/** Collects events as plain objects (subscribers, tests, the slow path). */
export class CollectingEventLog implements EventLog {
  events: SkuEvent[] = [];

  take(): SkuEvent[] {
    const out = this.events;
    this.events = [];
    return out;
  }

  skuDefined(a: ActorView, seq: number, at: number): void {
    const s = a.settings();
    this.events.push({
      type: 'sku_defined',
      sku: a.sku,
      seq,
      at,
      stock: a.initialStock,
      perUserLimit: s.perUserLimit,
      holdTtlMs: s.holdTtlMs,
      startsAt: s.startsAt,
      endsAt: s.endsAt,
      price: s.price,
      name: s.name,
    });
  }

  skuUpdated(a: ActorView, seq: number, at: number): void {
    const s = a.settings();
    this.events.push({
      type: 'sku_updated',
      sku: a.sku,
      seq,
      at,
      perUserLimit: s.perUserLimit,
      holdTtlMs: s.holdTtlMs,
      startsAt: s.startsAt,
      endsAt: s.endsAt,
      price: s.price,
      name: s.name,
    });
  }

  reserved(a: ActorView, seq: number, at: number, reservation: number): void {
    this.events.push({
      type: 'reserved',
      sku: a.sku,
      seq,
      at,
      reservation,
      userId: a.reservationUser(reservation),
      qty: a.reservationQty(reservation),
      idempotencyKey: a.reservationKey(reservation),
      expiresAt: a.reservationExpiresAt(reservation),
    });
  }

  transition(
    a: ActorView,
    seq: number,
    at: number,
    type: TransitionEventType,
    reservation: number,
  ): void {
    this.events.push({
      type,
      sku: a.sku,
      seq,
      at,
      reservation,
      qty: a.reservationQty(reservation),
    });
  }

  restocked(a: ActorView, seq: number, at: number, qty: number): void {
    this.events.push({ type: 'restocked', sku: a.sku, seq, at, qty });
  }

  saleClosed(a: ActorView, seq: number, at: number): void {
    this.events.push({ type: 'sale_closed', sku: a.sku, seq, at });
  }
}
