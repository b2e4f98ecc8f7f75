import { ByteMap } from './byte-map.js';
import { EventType, visitEvents } from './event-codec.js';
import type { EventVisitor } from './event-codec.js';
import type { TransitionEventType } from './event-log.js';
import { Op, RESULT_STRIDE, packResult } from './codec.js';
import type { EventLog } from './event-log.js';
import { CommandCode } from './lifecycle.js';
import { SkuActor } from './sku-actor.js';
import { Status, InvalidFieldIndex } from './status.js';
import { TimerWheel } from './timer-wheel.js';
import type { SkuDefinition, SkuSnapshot, SkuUpdate, SkuEvent } from './types.js';
import {
  checkSkuDefinition,
  checkSkuUpdate,
  settingsOf,
  USER_ID_BYTES_MAX,
  IDEMPOTENCY_KEY_BYTES_MAX,
} from './validate.js';

export interface ShardOptions {
  qtyMax: number;
  holdTtlMsDefault: number;
  timerTickMs: number;
}

export interface ControlResult {
  status: number;
  field?: string;
  snapshot?: SkuSnapshot;
}

const TRANSITION_TYPES: Record<number, TransitionEventType> = {
  [EventType.confirmed]: 'confirmed',
  [EventType.cancelled]: 'cancelled',
  [EventType.expired]: 'expired',
  [EventType.returned]: 'returned',
};

const COMMAND_OF_OP: Record<number, number> = {
  [Op.confirm]: CommandCode.confirm,
  [Op.cancel]: CommandCode.cancel,
  [Op.return]: CommandCode.return,
};

/**
 * The SKU actors one shard worker owns, plus its hold-expiry timer wheel. Pure and synchronous:
 * the worker feeds it decoded batches and the time, and it never does I/O. Requests for one SKU
 * are applied in the order they arrive, which is what serializes every decrement without a lock.
 */
export class Shard {
  private readonly skuIndex = new ByteMap();
  private readonly actors: SkuActor[] = [];
  private readonly wheel: TimerWheel;
  private readonly skuScratch = new Uint8Array(256);
  log: EventLog;
  commandsApplied = 0;
  expiredTotal = 0;

  constructor(
    private readonly options: ShardOptions,
    log: EventLog,
    nowMs: number,
  ) {
    this.log = log;
    this.wheel = new TimerWheel(options.timerTickMs, 1024, nowMs);
  }

  private find(sku: string): SkuActor | undefined {
    const len = Buffer.from(this.skuScratch.buffer).write(sku, 0, 'utf8');
    const i = this.skuIndex.find(this.skuScratch, 0, len);
    return i < 0 ? undefined : this.actors[this.skuIndex.value(i)];
  }

  define(def: SkuDefinition, now: number): ControlResult {
    const bad = checkSkuDefinition(def);
    if (bad) return { status: Status.invalid, field: bad };
    if (this.find(def.sku)) return { status: Status.sku_exists };
    const actor = SkuActor.define(
      settingsOf(def, this.options.holdTtlMsDefault),
      this.actors.length,
      now,
      this.log,
    );
    this.register(actor);
    return { status: Status.defined, snapshot: actor.snapshot() };
  }

  private register(actor: SkuActor): void {
    const len = Buffer.from(this.skuScratch.buffer).write(actor.sku, 0, 'utf8');
    this.skuIndex.insert(this.skuScratch, 0, len, this.actors.length);
    this.actors.push(actor);
  }

  update(sku: string, update: SkuUpdate, now: number): ControlResult {
    const actor = this.find(sku);
    if (!actor) return { status: Status.unknown_sku };
    const bad = checkSkuUpdate(update, actor.settings());
    if (bad) return { status: Status.invalid, field: bad };
    actor.update(update, now, this.log);
    return { status: Status.updated, snapshot: actor.snapshot() };
  }

  get(sku: string): SkuSnapshot | null {
    return this.find(sku)?.snapshot() ?? null;
  }

  actor(sku: string): SkuActor | undefined {
    return this.find(sku);
  }

  get skuCount(): number {
    return this.actors.length;
  }

  get holdsScheduled(): number {
    return this.wheel.size;
  }

  /** Applies a recorded event object (tests, tools), re-arming the expiry timer of holds. */
  replay(ev: SkuEvent): void {
    if (ev.type === 'sku_defined') {
      this.register(SkuActor.fromEvent(ev, this.actors.length));
      return;
    }
    const actor = this.find(ev.sku);
    if (!actor) throw new Error(`replay: event for undefined SKU ${ev.sku}`);
    actor.applyEvent(ev);
    if (ev.type === 'reserved') this.wheel.schedule(actor.index, ev.reservation, ev.expiresAt);
  }

  /**
   * Recovery: applies every event of a journal payload, straight from its bytes. Holds are
   * re-armed on the timer wheel; the first tick after recovery expires those whose deadline
   * passed while the shard was down. Returns the number of events applied.
   */
  replayPayload(payload: Uint8Array): number {
    return visitEvents(payload, this.replayVisitor);
  }

  private actorAt(p: Uint8Array, skuOff: number, skuLen: number): SkuActor {
    const e = this.skuIndex.find(p, skuOff, skuLen);
    if (e < 0) {
      const sku = Buffer.from(p.buffer, p.byteOffset + skuOff, skuLen).toString('utf8');
      throw new Error(`replay: event for SKU ${sku}, which was never defined`);
    }
    return this.actors[this.skuIndex.value(e)];
  }

  private readonly replayVisitor: EventVisitor = {
    defined: (ev) => {
      if (this.find(ev.sku)) throw new Error(`replay: SKU ${ev.sku} defined twice`);
      this.register(SkuActor.fromEvent(ev, this.actors.length));
    },
    updated: (ev) => {
      const actor = this.find(ev.sku);
      if (!actor) throw new Error(`replay: update of undefined SKU ${ev.sku}`);
      actor.replayUpdated(ev, ev.seq);
    },
    reserved: (p, so, sl, seq, _at, reservation, qty, expiresAt, uo, ul, ko, kl) => {
      const actor = this.actorAt(p, so, sl);
      actor.replayReserved(p, uo, ul, ko, kl, qty, expiresAt, reservation, seq);
      this.wheel.schedule(actor.index, reservation, expiresAt);
    },
    transition: (p, so, sl, seq, _at, type, reservation) =>
      this.actorAt(p, so, sl).replayTransition(TRANSITION_TYPES[type], reservation, seq),
    restocked: (p, so, sl, seq, _at, qty) => this.actorAt(p, so, sl).replayRestocked(qty, seq),
    closed: (p, so, sl, seq) => this.actorAt(p, so, sl).replayClosed(seq),
  };

  /**
   * Expires the holds whose deadline has passed; returns how many it expired (entries of holds
   * already confirmed or cancelled are dropped without counting).
   */
  tick(now: number): number {
    let expired = 0;
    this.wheel.advance(now, (a, r) => {
      const actor = this.actors[a];
      if (actor.isHeld(r) && actor.reservationExpiresAt(r) > now) return false; // not due yet
      if (actor.expire(r, now, this.log)) expired++;
      return true;
    });
    this.expiredTotal += expired;
    return expired;
  }

  /**
   * Applies every request of a batch in order and returns one result triple per request (see
   * codec.ts). Strings are never decoded: SKUs, user ids and keys are looked up as bytes.
   */
  applyBatch(bytes: Uint8Array, count: number, now: number, out: Float64Array): void {
    if (out.length < count * RESULT_STRIDE)
      throw new RangeError('applyBatch: results buffer too small');
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let lastSkuOff = -1;
    let lastSkuLen = 0;
    let actor: SkuActor | undefined;
    let p = 0;
    for (let i = 0, o = 0; i < count; i++, o += RESULT_STRIDE) {
      const op = bytes[p++];
      const skuLen = bytes[p++];
      const skuOff = p;
      p += skuLen;
      // Consecutive requests for the same SKU (the hot case) skip the hash lookup.
      if (
        lastSkuOff < 0 ||
        skuLen !== lastSkuLen ||
        !sameBytes(bytes, skuOff, lastSkuOff, skuLen)
      ) {
        const e = this.skuIndex.find(bytes, skuOff, skuLen);
        actor = e < 0 ? undefined : this.actors[this.skuIndex.value(e)];
        lastSkuOff = skuOff;
        lastSkuLen = skuLen;
      }
      if (op === Op.reserve) p = this.applyReserve(bytes, view, p, actor, now, out, o);
      else if (op === Op.confirm || op === Op.cancel || op === Op.return) {
        p = this.applyCommand(op, bytes, view, p, actor, now, out, o);
      } else if (op === Op.restock) {
        const qty = view.getUint32(p, true);
        p += 4;
        if (actor === undefined) out[o] = Status.unknown_sku;
        else if (qty < 1 || qty > 0x7fffffff - actor.available) {
          out[o] = packResult(Status.invalid, InvalidFieldIndex.stock);
        } else {
          out[o] = actor.restock(qty, now, this.log);
          out[o + 1] = actor.available;
        }
      } else if (op === Op.close) {
        if (actor === undefined) out[o] = Status.unknown_sku;
        else out[o] = actor.close(now, this.log);
      } else {
        throw new Error(`shard: unknown op ${op} at byte ${p - skuLen - 2}`);
      }
    }
    this.commandsApplied += count;
  }
  // The request handlers below take positional arguments, not a record: they run once per
  // request on the engine's hottest path, where a record would be an allocation each.

  /** One reservation request at byte `p`; writes its result at `out[o]`, returns the next p. */
  private applyReserve(
    bytes: Uint8Array,
    view: DataView,
    p: number,
    actor: SkuActor | undefined,
    now: number,
    out: Float64Array,
    o: number,
  ): number {
    const qty = view.getUint32(p, true);
    const userLen = bytes[p + 4];
    const userOff = p + 5;
    const keyLen = bytes[userOff + userLen];
    const keyOff = userOff + userLen + 1;
    let status: number;
    let aux = 0;
    if (qty < 1 || qty > this.options.qtyMax) {
      status = Status.invalid;
      aux = InvalidFieldIndex.qty;
    } else if (userLen === 0 || userLen > USER_ID_BYTES_MAX) {
      status = Status.invalid;
      aux = InvalidFieldIndex.userId;
    } else if (keyLen === 0 || keyLen > IDEMPOTENCY_KEY_BYTES_MAX) {
      status = Status.invalid;
      aux = InvalidFieldIndex.idempotencyKey;
    } else if (actor === undefined) {
      status = Status.unknown_sku;
    } else {
      status = actor.reserve(bytes, userOff, userLen, keyOff, keyLen, qty, now, this.log);
      if (status === Status.reserved) {
        out[o + 1] = actor.outReservation;
        out[o + 2] = actor.outExpiresAt;
        if (actor.outDuplicate) aux = 1;
        else this.wheel.schedule(actor.index, actor.outReservation, actor.outExpiresAt);
      }
    }
    out[o] = packResult(status, aux);
    return keyOff + keyLen;
  }

  /** A confirm, cancel or return at byte `p`; as `applyReserve`. */
  private applyCommand(
    op: number,
    bytes: Uint8Array,
    view: DataView,
    p: number,
    actor: SkuActor | undefined,
    now: number,
    out: Float64Array,
    o: number,
  ): number {
    const r = view.getFloat64(p, true);
    const ownerLen = bytes[p + 8];
    const ownerOff = p + 9;
    if (actor === undefined) {
      out[o] = Status.unknown_sku;
    } else {
      const status = actor.command(r, COMMAND_OF_OP[op], now, this.log, bytes, ownerOff, ownerLen);
      out[o] = packResult(status, actor.outState);
      out[o + 1] = r;
    }
    return ownerOff + ownerLen;
  }
}

function sameBytes(b: Uint8Array, x: number, y: number, len: number): boolean {
  for (let k = 0; k < len; k++) if (b[x + k] !== b[y + k]) return false;
  return true;
}
