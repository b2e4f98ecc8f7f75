import assert from 'node:assert/strict';
import { ByteMap } from './byte-map.js';
import { CounterMove, moveCounters } from './counters.js';
import { ReservationTable } from './reservation-table.js';
import type { EventLog, TransitionEventType } from './event-log.js';
import { CommandCode, ResState, TRANSITION_BY_CODE, stateName } from './lifecycle.js';
import type { ReservationState } from './lifecycle.js';
import { Status } from './status.js';
import type { SkuEvent, SkuSettings, SkuSnapshot, SkuUpdate } from './types.js';

const EVENT_OF_STATE: Record<number, TransitionEventType> = {
  [ResState.confirmed]: 'confirmed',
  [ResState.cancelled]: 'cancelled',
  [ResState.expired]: 'expired',
  [ResState.returned]: 'returned',
};
const STATE_OF_EVENT: Record<TransitionEventType, number> = {
  confirmed: ResState.confirmed,
  cancelled: ResState.cancelled,
  expired: ResState.expired,
  returned: ResState.returned,
};

/** Result of a successful command, indexed by `CommandCode`. */
const SUCCESS_OF_COMMAND: readonly number[] = (() => {
  const out: number[] = [];
  out[CommandCode.confirm] = Status.confirmed;
  out[CommandCode.cancel] = Status.cancelled;
  out[CommandCode.expire] = Status.hold_expired;
  out[CommandCode.return] = Status.returned;
  return out;
})();

const scratch = new Uint8Array(1024);
function encodeScratch(s: string, at: number): number {
  return Buffer.from(scratch.buffer, scratch.byteOffset, scratch.length).write(s, at, 'utf8');
}

/**
 * One SKU's sale: a pure, synchronous state machine with no I/O, no clock and no awaits. Every
 * command takes `now` and an `EventLog`, returns a status code from `status.ts`, and emits the
 * events that describe what changed, each stamped with the SKU's next `seq`. A command that is
 * rejected changes nothing and emits nothing.
 *
 * Units move between three counters; the invariant `available + reserved + sold ===
 * initialStock + restocked` holds after every command (asserted by the property test):
 *
 *   available ──reserve──▶ reserved ──confirm──▶ sold
 *       ▲                     │                   │
 *       └──cancel / expire────┘◀──────return──────┘ (to available)
 *
 * The counters move by `moveCounters` (counters.ts), the one rule the MySQL fold also follows;
 * the actor passes itself, so nothing is allocated per command.
 *
 * Invariant checks are written `if (broken) assert.fail(message)`: `assert.ok(cond, message)`
 * would build its message string on every call of the hot path, failing or not.
 *
 * Reservations live in flat typed arrays indexed by reservation number (1, 2, ...), which is
 * also what makes reservation ids dense, replayable and cheap to route.
 */
export class SkuActor {
  readonly sku: string;
  /** The SKU id as UTF-8, encoded once for the event log. */
  readonly skuBytes: Uint8Array;
  /** Position of this actor in its shard, used by the shard's timer wheel. */
  readonly index: number;

  private perUserLimit: number;
  private holdTtlMs: number;
  private startsAt: number | null;
  private endsAt: number | null;
  private price: number;
  private name: string;
  closed = false;

  available: number;
  reserved = 0;
  sold = 0;
  returned = 0;
  restocked = 0;
  readonly initialStock: number;
  seq = 0;

  /** userId bytes → units the user holds or has bought (held + confirmed, not returned). */
  private readonly users: ByteMap;
  /** idempotency key bytes → reservation number. */
  private readonly keys: ByteMap;

  private readonly res: ReservationTable;

  /** Outputs of the last `reserve` (set instead of allocating a result object). */
  outReservation = 0;
  outExpiresAt = 0;
  outDuplicate = false;
  /** State of the reservation after the last confirm/cancel/return (for `invalid_transition`). */
  outState = 0;

  private constructor(settings: SkuSettings, index: number) {
    this.sku = settings.sku;
    this.skuBytes = new Uint8Array(Buffer.from(settings.sku, 'utf8'));
    this.index = index;
    this.perUserLimit = settings.perUserLimit;
    this.holdTtlMs = settings.holdTtlMs;
    this.startsAt = settings.startsAt;
    this.endsAt = settings.endsAt;
    this.price = settings.price;
    this.name = settings.name;
    this.available = settings.stock;
    this.initialStock = settings.stock;
    // Sized for a small sale up front (no rehash for the first ~256 buyers), small enough
    // that a shard with 10,000 SKUs does not reserve memory it may never use.
    const hint = Math.max(16, Math.min(settings.stock, 256));
    this.users = new ByteMap(hint);
    this.keys = new ByteMap(hint);
    this.res = new ReservationTable(hint);
  }

  /** Creates the actor for a validated definition and emits `sku_defined` (seq 1). */
  static define(settings: SkuSettings, index: number, now: number, log: EventLog): SkuActor {
    const actor = new SkuActor(settings, index);
    log.skuDefined(actor, ++actor.seq, now);
    return actor;
  }

  /** Rebuilds an actor from its `sku_defined` event (recovery). */
  static fromEvent(ev: Extract<SkuEvent, { type: 'sku_defined' }>, index: number): SkuActor {
    assert.equal(ev.seq, 1, `${ev.sku}: sku_defined must be seq 1`);
    const { type: _type, seq: _seq, at: _at, ...settings } = ev;
    const actor = new SkuActor(settings, index);
    actor.seq = 1;
    return actor;
  }

  settings(): SkuSettings {
    return {
      sku: this.sku,
      stock: this.initialStock,
      perUserLimit: this.perUserLimit,
      holdTtlMs: this.holdTtlMs,
      startsAt: this.startsAt,
      endsAt: this.endsAt,
      price: this.price,
      name: this.name,
    };
  }

  /** Applies a validated update (see `checkSkuUpdate`) and emits `sku_updated`. */
  update(update: SkuUpdate, now: number, log: EventLog): number {
    this.applySettings(update);
    log.skuUpdated(this, ++this.seq, now);
    return Status.updated;
  }

  private applySettings(u: SkuUpdate): void {
    if (u.perUserLimit !== undefined) this.perUserLimit = u.perUserLimit;
    if (u.holdTtlMs !== undefined) this.holdTtlMs = u.holdTtlMs;
    if (u.startsAt !== undefined) this.startsAt = u.startsAt;
    if (u.endsAt !== undefined) this.endsAt = u.endsAt;
    if (u.price !== undefined) this.price = u.price;
    if (u.name !== undefined) this.name = u.name;
  }

  /**
   * Reserves `qty` units for the user in `buf[userOff, +userLen)` under the idempotency key in
   * `buf[keyOff, +keyLen)`. Inputs are validated by the caller. On `reserved`, `outReservation`,
   * `outExpiresAt` and `outDuplicate` describe the reservation.
   */
  reserve(
    buf: Uint8Array,
    userOff: number,
    userLen: number,
    keyOff: number,
    keyLen: number,
    qty: number,
    now: number,
    log: EventLog,
  ): number {
    const res = this.res;
    const k = this.keys.find(buf, keyOff, keyLen);
    if (k >= 0) {
      // A retry: the original answer, or a conflict if the retry asks for something else.
      const r = this.keys.value(k);
      if (res.qty(r) !== qty || !this.users.refEquals(res.userRef(r), buf, userOff, userLen)) {
        return Status.idempotency_conflict;
      }
      this.outReservation = r;
      this.outExpiresAt = res.expiresAt(r);
      this.outDuplicate = true;
      return Status.reserved;
    }
    if (this.closed || (this.endsAt !== null && now >= this.endsAt)) return Status.closed;
    if (this.startsAt !== null && now < this.startsAt) return Status.not_open;
    if (this.available < qty) return Status.sold_out;
    let u = this.users.find(buf, userOff, userLen);
    if (this.perUserLimit > 0 && (u >= 0 ? this.users.value(u) : 0) + qty > this.perUserLimit) {
      return Status.limit_exceeded;
    }
    if (u < 0) u = this.users.insertMissed(buf, userOff, userLen, 0);
    // `keys.find` above missed and nothing was inserted into `keys` since.
    const key = this.keys.insertMissed(buf, keyOff, keyLen, 0);
    const r = this.applyReserved(u, key, qty, now + this.holdTtlMs);
    this.outReservation = r;
    this.outExpiresAt = res.expiresAt(r);
    this.outDuplicate = false;
    log.reserved(this, ++this.seq, now, r);
    return Status.reserved;
  }

  /** `reserve` with string arguments (tests, the slow path). */
  reserveStrings(
    userId: string,
    idempotencyKey: string,
    qty: number,
    now: number,
    log: EventLog,
  ): number {
    const userLen = encodeScratch(userId, 0);
    const keyLen = encodeScratch(idempotencyKey, userLen);
    return this.reserve(scratch, 0, userLen, userLen, keyLen, qty, now, log);
  }

  /** Records a hold for the user in `userSlot` under the key in `keySlot` (slots just found). */
  private applyReserved(userSlot: number, keySlot: number, qty: number, expiresAt: number): number {
    const r = this.res.add(
      this.users.ref(userSlot),
      this.keys.ref(keySlot),
      qty,
      ResState.held,
      expiresAt,
    );
    this.users.setValue(userSlot, this.users.value(userSlot) + qty);
    this.keys.setValue(keySlot, r);
    moveCounters(this, CounterMove.reserve, qty);
    if (this.available < 0) assert.fail(`${this.sku}: available went below zero`);
    return r;
  }

  /**
   * confirm, cancel or return reservation `r`, following the transition table. With an owner
   * (`buf[ownerOff, +ownerLen)`, non-empty), only that user's reservation is found: another
   * user's is answered `unknown_reservation`, which tells nothing about whether it exists.
   */
  command(
    r: number,
    command: number,
    now: number,
    log: EventLog,
    buf?: Uint8Array,
    ownerOff = 0,
    ownerLen = 0,
  ): number {
    const res = this.res;
    if (!res.has(r)) return Status.unknown_reservation;
    if (ownerLen > 0 && !this.users.refEquals(res.userRef(r), buf!, ownerOff, ownerLen)) {
      return Status.unknown_reservation;
    }
    // A hold past its deadline is expired even if the timer wheel has not got to it yet.
    if (res.state(r) === ResState.held && res.expiresAt(r) <= now) this.expire(r, now, log);
    const t = TRANSITION_BY_CODE[res.state(r)][command];
    this.outState = res.state(r);
    switch (t.kind) {
      case 'reject':
        return t.status === 'hold_expired' ? Status.hold_expired : Status.invalid_transition;
      case 'ignore':
        return Status.invalid_transition;
      case 'repeat':
        return SUCCESS_OF_COMMAND[command];
      case 'move':
        this.moveTo(r, ResState[t.to]);
        this.outState = res.state(r);
        log.transition(this, ++this.seq, now, EVENT_OF_STATE[res.state(r)], r);
        return SUCCESS_OF_COMMAND[command];
    }
  }

  /** The timer wheel's call: expires `r` if it is still held and its deadline has passed. */
  expire(r: number, now: number, log: EventLog): boolean {
    if (this.res.state(r) !== ResState.held || this.res.expiresAt(r) > now) return false;
    this.moveTo(r, ResState.expired);
    log.transition(this, ++this.seq, now, 'expired', r);
    return true;
  }

  private moveTo(r: number, to: number): void {
    const qty = this.res.qty(r);
    const from = this.res.state(r);
    // Each branch passes its move as a constant, so the inlined switch of `moveCounters` folds.
    if (from === ResState.held && to === ResState.confirmed) {
      moveCounters(this, CounterMove.confirm, qty);
    } else if (from === ResState.held) {
      // cancelled or expired: the units go back on sale and the user may buy again.
      moveCounters(this, CounterMove.release, qty);
      this.giveBack(r, qty);
    } else if (from === ResState.confirmed && to === ResState.returned) {
      moveCounters(this, CounterMove.return, qty);
      this.giveBack(r, qty);
    } else {
      assert.fail(`${this.sku}: no transition from ${stateName(from)} to ${stateName(to)}`);
    }
    this.res.setState(r, to);
    if (this.reserved < 0 || this.sold < 0) assert.fail(`${this.sku}: counters went below zero`);
  }

  /** The user of reservation r holds `qty` fewer units (a rarer path: one re-hash). */
  private giveBack(r: number, qty: number): void {
    const slot = this.users.slotOf(this.res.userRef(r));
    this.users.setValue(slot, this.users.value(slot) - qty);
  }

  restock(qty: number, now: number, log: EventLog): number {
    moveCounters(this, CounterMove.restock, qty);
    log.restocked(this, ++this.seq, now, qty);
    return Status.restocked;
  }

  /** Ends the sale: no new reservations; open holds may still be confirmed, cancelled or expire. */
  close(now: number, log: EventLog): number {
    if (this.closed) return Status.sale_closed;
    this.closed = true;
    log.saleClosed(this, ++this.seq, now);
    return Status.sale_closed;
  }

  /**
   * Recovery: the replay methods apply one recorded event each, with the same mutations the
   * commands use, and check that the event is the next one (`seq`) and consistent with the
   * state (reservation numbers, transitions). Replaying a SKU's events in order rebuilds it
   * exactly. The byte-level `replayReserved` is what the journal replay calls; `applyEvent`
   * takes an event object (tests, tools).
   */
  private nextSeq(seq: number): void {
    if (seq !== this.seq + 1) assert.fail(`${this.sku}: event seq ${seq} after ${this.seq}`);
    this.seq = seq;
  }

  replayReserved(
    buf: Uint8Array,
    userOff: number,
    userLen: number,
    keyOff: number,
    keyLen: number,
    qty: number,
    expiresAt: number,
    reservation: number,
    seq: number,
  ): void {
    this.nextSeq(seq);
    let u = this.users.find(buf, userOff, userLen);
    if (u < 0) u = this.users.insertMissed(buf, userOff, userLen, 0);
    if (this.keys.find(buf, keyOff, keyLen) !== -1) assert.fail(`${this.sku}: key reserved twice`);
    const key = this.keys.insertMissed(buf, keyOff, keyLen, 0);
    const r = this.applyReserved(u, key, qty, expiresAt);
    if (r !== reservation) assert.fail(`${this.sku}: reservation number mismatch`);
  }

  replayTransition(type: TransitionEventType, reservation: number, seq: number): void {
    this.nextSeq(seq);
    if (!this.res.has(reservation)) assert.fail(`${this.sku}: unknown reservation ${reservation}`);
    this.moveTo(reservation, STATE_OF_EVENT[type]);
  }

  replayRestocked(qty: number, seq: number): void {
    this.nextSeq(seq);
    moveCounters(this, CounterMove.restock, qty);
  }

  replayClosed(seq: number): void {
    this.nextSeq(seq);
    this.closed = true;
  }

  replayUpdated(update: SkuUpdate, seq: number): void {
    this.nextSeq(seq);
    this.applySettings(update);
  }

  /** Applies one event object (tests, tools); see the replay methods. */
  applyEvent(ev: SkuEvent): void {
    assert.equal(ev.sku, this.sku);
    switch (ev.type) {
      case 'sku_defined':
        assert.fail(`${this.sku}: sku_defined replayed twice`);
        break;
      case 'sku_updated':
        this.replayUpdated(ev, ev.seq);
        break;
      case 'reserved': {
        const userLen = encodeScratch(ev.userId, 0);
        const keyLen = encodeScratch(ev.idempotencyKey, userLen);
        this.replayReserved(
          scratch,
          0,
          userLen,
          userLen,
          keyLen,
          ev.qty,
          ev.expiresAt,
          ev.reservation,
          ev.seq,
        );
        break;
      }
      case 'confirmed':
      case 'cancelled':
      case 'expired':
      case 'returned':
        this.replayTransition(ev.type, ev.reservation, ev.seq);
        break;
      case 'restocked':
        this.replayRestocked(ev.qty, ev.seq);
        break;
      case 'sale_closed':
        this.replayClosed(ev.seq);
        break;
    }
  }

  snapshot(): SkuSnapshot {
    return {
      ...this.settings(),
      available: this.available,
      reserved: this.reserved,
      sold: this.sold,
      returned: this.returned,
      restocked: this.restocked,
      initialStock: this.initialStock,
      closed: this.closed,
      reservations: this.res.count,
      seq: this.seq,
    };
  }

  get reservationCount(): number {
    return this.res.count;
  }

  reservationState(r: number): ReservationState | null {
    return this.res.has(r) ? stateName(this.res.state(r)) : null;
  }

  isHeld(r: number): boolean {
    return this.res.state(r) === ResState.held;
  }

  reservationQty(r: number): number {
    return this.res.qty(r);
  }

  reservationExpiresAt(r: number): number {
    return this.res.expiresAt(r);
  }

  reservationUser(r: number): string {
    return this.users.refString(this.res.userRef(r));
  }

  reservationKey(r: number): string {
    return this.keys.refString(this.res.keyRef(r));
  }

  /** Copies reservation r's user id bytes into `out` (the binary journal's path). */
  copyReservationUser(r: number, out: Uint8Array, at: number): number {
    return this.users.copyRef(this.res.userRef(r), out, at);
  }

  copyReservationKey(r: number, out: Uint8Array, at: number): number {
    return this.keys.copyRef(this.res.keyRef(r), out, at);
  }

  /** Units a user currently holds or has bought. */
  userUnits(userId: string): number {
    const len = encodeScratch(userId, 0);
    const u = this.users.find(scratch, 0, len);
    return u < 0 ? 0 : this.users.value(u);
  }

  get userCount(): number {
    return this.users.size;
  }

  /** Sum of all users' units; equals `reserved + sold` (checked by tests). */
  userUnitsTotal(): number {
    return this.users.valueTotal();
  }
}
