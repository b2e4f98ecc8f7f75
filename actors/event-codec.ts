import type { ActorView, EventLog, TransitionEventType } from './event-log.js';
import { StockadeError } from './errors.js';
import type { SkuEvent } from './types.js';

/**
 * The binary form of events: what the journal stores and what recovery replays. One payload is
 * the events of one group commit:
 *
 *   payload := u8 version=1 | u32 count | event*
 *   event   := u8 type | u8 skuLen | sku | f64 seq | f64 at | body
 *
 *   type 1 sku_defined  body: u32 stock | u32 perUserLimit | u32 holdTtlMs | f64 startsAt
 *                             | f64 endsAt | f64 price | u16 nameLen | name   (NaN time = null)
 *   type 2 sku_updated  body: as sku_defined without stock
 *   type 3 reserved     body: f64 reservation | u32 qty | f64 expiresAt | u8 userLen | userId
 *                             | u8 keyLen | idempotencyKey
 *   type 4..7 confirmed, cancelled, expired, returned
 *                       body: f64 reservation | u32 qty
 *   type 8 restocked    body: u32 qty
 *   type 9 sale_closed  body: (none)
 *
 * All numbers little endian; strings UTF-8. The format is documented in the README; tools such
 * as `stockade tail` and the projections read it.
 */
export const EVENT_FORMAT_VERSION = 1;

export const EventType = {
  sku_defined: 1,
  sku_updated: 2,
  reserved: 3,
  confirmed: 4,
  cancelled: 5,
  expired: 6,
  returned: 7,
  restocked: 8,
  sale_closed: 9,
} as const;

const TYPE_NAMES = ['', ...Object.keys(EventType)] as SkuEvent['type'][];
const HEADER_BYTES = 5;

/** Writes events in the binary form into a growable buffer; `take()` hands over a payload. */
export class BinaryEventLog implements EventLog {
  private buf = new Uint8Array(64 * 1024);
  private view = new DataView(this.buf.buffer);
  private pos = HEADER_BYTES;
  count = 0;

  get bytes(): number {
    return this.pos - HEADER_BYTES;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const bigger = new Uint8Array(size);
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  private head(type: number, a: ActorView, seq: number, at: number, body: number): void {
    this.ensure(2 + 256 + 16 + body);
    const buf = this.buf;
    buf[this.pos++] = type;
    const sku = a.skuBytes;
    buf[this.pos++] = sku.length;
    for (let k = 0; k < sku.length; k++) buf[this.pos + k] = sku[k];
    this.pos += sku.length;
    this.view.setFloat64(this.pos, seq, true);
    this.view.setFloat64(this.pos + 8, at, true);
    this.pos += 16;
    this.count++;
  }

  private u32(v: number): void {
    this.view.setUint32(this.pos, v, true);
    this.pos += 4;
  }

  private f64(v: number | null): void {
    this.view.setFloat64(this.pos, v === null ? NaN : v, true);
    this.pos += 8;
  }

  private settings(a: ActorView, withStock: boolean): void {
    const s = a.settings();
    if (withStock) this.u32(s.stock);
    this.u32(s.perUserLimit);
    this.u32(s.holdTtlMs);
    this.f64(s.startsAt);
    this.f64(s.endsAt);
    this.f64(s.price);
    const n = Buffer.from(this.buf.buffer).write(s.name, this.pos + 2, 'utf8');
    this.view.setUint16(this.pos, n, true);
    this.pos += 2 + n;
  }

  skuDefined(a: ActorView, seq: number, at: number): void {
    this.head(EventType.sku_defined, a, seq, at, 40 + 2 + 4 * 200);
    this.settings(a, true);
  }

  skuUpdated(a: ActorView, seq: number, at: number): void {
    this.head(EventType.sku_updated, a, seq, at, 36 + 2 + 4 * 200);
    this.settings(a, false);
  }

  reserved(a: ActorView, seq: number, at: number, r: number): void {
    this.head(EventType.reserved, a, seq, at, 20 + 2 + 255 * 2);
    this.f64(r);
    this.u32(a.reservationQty(r));
    this.f64(a.reservationExpiresAt(r));
    const u = a.copyReservationUser(r, this.buf, this.pos + 1);
    this.buf[this.pos] = u;
    this.pos += 1 + u;
    const k = a.copyReservationKey(r, this.buf, this.pos + 1);
    this.buf[this.pos] = k;
    this.pos += 1 + k;
  }

  transition(a: ActorView, seq: number, at: number, type: TransitionEventType, r: number): void {
    this.head(EventType[type], a, seq, at, 12);
    this.f64(r);
    this.u32(a.reservationQty(r));
  }

  restocked(a: ActorView, seq: number, at: number, qty: number): void {
    this.head(EventType.restocked, a, seq, at, 4);
    this.u32(qty);
  }

  saleClosed(a: ActorView, seq: number, at: number): void {
    this.head(EventType.sale_closed, a, seq, at, 0);
  }

  /** The events written since the last take, as one payload (a copy), or null if none. */
  take(): Uint8Array | null {
    if (this.count === 0) return null;
    this.buf[0] = EVENT_FORMAT_VERSION;
    this.view.setUint32(1, this.count, true);
    const out = this.buf.slice(0, this.pos);
    this.pos = HEADER_BYTES;
    this.count = 0;
    return out;
  }
}

/**
 * Visits each event of a payload without decoding strings: the callbacks get offsets into
 * `p`. This is the replay path (millions of events per second); `decodeEvents` builds objects.
 */
export interface EventVisitor {
  defined(ev: Extract<SkuEvent, { type: 'sku_defined' }>): void;
  updated(ev: Extract<SkuEvent, { type: 'sku_updated' }>): void;
  reserved(
    p: Uint8Array,
    skuOff: number,
    skuLen: number,
    seq: number,
    at: number,
    reservation: number,
    qty: number,
    expiresAt: number,
    userOff: number,
    userLen: number,
    keyOff: number,
    keyLen: number,
  ): void;
  transition(
    p: Uint8Array,
    skuOff: number,
    skuLen: number,
    seq: number,
    at: number,
    type: number,
    reservation: number,
    qty: number,
  ): void;
  restocked(
    p: Uint8Array,
    skuOff: number,
    skuLen: number,
    seq: number,
    at: number,
    qty: number,
  ): void;
  closed(p: Uint8Array, skuOff: number, skuLen: number, seq: number, at: number): void;
}

/** A payload that does not decode: the journal holds what Stockade never wrote. */
export class EventFormatError extends StockadeError<'journal_corrupt'> {
  constructor(message: string) {
    super('journal_corrupt', message);
    this.name = 'EventFormatError';
  }
}

const utf8 = (p: Uint8Array, off: number, len: number) =>
  Buffer.from(p.buffer, p.byteOffset + off, len).toString('utf8');
const nullable = (v: number) => (Number.isNaN(v) ? null : v);

/** Walks a payload; throws EventFormatError on anything malformed. Returns the event count. */
export function visitEvents(p: Uint8Array, v: EventVisitor): number {
  const cursor = new PayloadCursor(p);
  const count = cursor.header();
  for (let i = 0; i < count; i++) cursor.visitNext(v);
  cursor.end();
  return count;
}

/**
 * Where `visitEvents` is in a payload, and the head of the event it is on: one per payload,
 * reused for every event (the replay path allocates nothing per event).
 */
class PayloadCursor {
  private readonly view: DataView;
  private o = HEADER_BYTES;
  private skuOff = 0;
  private skuLen = 0;
  private seq = 0;
  private at = 0;

  constructor(private readonly p: Uint8Array) {
    this.view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  }

  /** Checks the version; returns the event count. */
  header(): number {
    const p = this.p;
    if (p.length < HEADER_BYTES || p[0] !== EVENT_FORMAT_VERSION) {
      throw new EventFormatError(`unknown event payload version ${p[0]}`);
    }
    return this.view.getUint32(1, true);
  }

  visitNext(v: EventVisitor): void {
    const { p, view } = this;
    let o = this.o;
    if (o + 18 > p.length) throw new EventFormatError('event payload truncated');
    const type = p[o];
    this.skuLen = p[o + 1];
    this.skuOff = o + 2;
    o = this.skuOff + this.skuLen;
    this.seq = view.getFloat64(o, true);
    this.at = view.getFloat64(o + 8, true);
    this.o = o + 16;
    if (type === EventType.reserved) this.reserved(v);
    else if (type >= EventType.confirmed && type <= EventType.returned) this.transition(v, type);
    else if (type === EventType.restocked) {
      v.restocked(p, this.skuOff, this.skuLen, this.seq, this.at, view.getUint32(this.o, true));
      this.o += 4;
    } else if (type === EventType.sale_closed) {
      v.closed(p, this.skuOff, this.skuLen, this.seq, this.at);
    } else if (type === EventType.sku_defined || type === EventType.sku_updated) {
      this.settings(v, type === EventType.sku_defined);
    } else {
      throw new EventFormatError(`unknown event type ${type}`);
    }
  }

  private reserved(v: EventVisitor): void {
    const { p, view, o } = this;
    const reservation = view.getFloat64(o, true);
    const qty = view.getUint32(o + 8, true);
    const expiresAt = view.getFloat64(o + 12, true);
    const userLen = p[o + 20];
    const userOff = o + 21;
    const keyLen = p[userOff + userLen];
    const keyOff = userOff + userLen + 1;
    this.o = keyOff + keyLen;
    const { skuOff, skuLen, seq, at } = this;
    v.reserved(
      p,
      skuOff,
      skuLen,
      seq,
      at,
      reservation,
      qty,
      expiresAt,
      userOff,
      userLen,
      keyOff,
      keyLen,
    );
  }

  private transition(v: EventVisitor, type: number): void {
    const { p, view, o } = this;
    const reservation = view.getFloat64(o, true);
    const qty = view.getUint32(o + 8, true);
    this.o = o + 12;
    v.transition(p, this.skuOff, this.skuLen, this.seq, this.at, type, reservation, qty);
  }

  /** `sku_defined` or `sku_updated`: rare, so decoded into an object. */
  private settings(v: EventVisitor, defined: boolean): void {
    const { p, view } = this;
    let o = this.o;
    const stock = defined ? view.getUint32(o, true) : 0;
    if (defined) o += 4;
    const nameLen = view.getUint16(o + 32, true);
    const base = {
      sku: utf8(p, this.skuOff, this.skuLen),
      seq: this.seq,
      at: this.at,
      perUserLimit: view.getUint32(o, true),
      holdTtlMs: view.getUint32(o + 4, true),
      startsAt: nullable(view.getFloat64(o + 8, true)),
      endsAt: nullable(view.getFloat64(o + 16, true)),
      price: view.getFloat64(o + 24, true),
      name: utf8(p, o + 34, nameLen),
    };
    this.o = o + 34 + nameLen;
    if (defined) v.defined({ type: 'sku_defined', ...base, stock });
    else v.updated({ type: 'sku_updated', ...base });
  }

  /** Nothing may follow the last event. */
  end(): void {
    const trailing = this.p.length - this.o;
    if (trailing !== 0) throw new EventFormatError(`event payload has ${trailing} trailing bytes`);
  }
}

/** Decodes a payload into event objects (tools, subscribers, tests). */
export function decodeEvents(p: Uint8Array): SkuEvent[] {
  const out: SkuEvent[] = [];
  visitEvents(p, {
    defined: (ev) => out.push(ev),
    updated: (ev) => out.push(ev),
    reserved: (b, so, sl, seq, at, reservation, qty, expiresAt, uo, ul, ko, kl) =>
      out.push({
        type: 'reserved',
        sku: utf8(b, so, sl),
        seq,
        at,
        reservation,
        userId: utf8(b, uo, ul),
        qty,
        idempotencyKey: utf8(b, ko, kl),
        expiresAt,
      }),
    transition: (b, so, sl, seq, at, type, reservation, qty) =>
      out.push({
        type: TYPE_NAMES[type] as TransitionEventType,
        sku: utf8(b, so, sl),
        seq,
        at,
        reservation,
        qty,
      }),
    restocked: (b, so, sl, seq, at, qty) =>
      out.push({ type: 'restocked', sku: utf8(b, so, sl), seq, at, qty }),
    closed: (b, so, sl, seq, at) =>
      out.push({ type: 'sale_closed', sku: utf8(b, so, sl), seq, at }),
  });
  return out;
}
