/**
 * The compact binary form of a batch of requests to one shard, and of its results. A batch
 * travels as one transferred ArrayBuffer, so crossing threads costs one postMessage per batch
 * and no structured clone of objects.
 *
 * Request records (little endian, strings are u8 length + UTF-8 bytes):
 *
 *   reserve:  u8 op=1 | str sku | u32 qty | str userId | str idempotencyKey
 *   confirm:  u8 op=2 | str sku | f64 reservation | str owner   (also cancel=3, return=4;
 *             owner is the acting user, checked against the reservation's; empty = no check)
 *   restock:  u8 op=5 | str sku | u32 qty
 *   close:    u8 op=6 | str sku
 *
 * Results: a Float64Array with three numbers per request, in request order:
 *
 *   [ status | aux << 8,  value,  expiresAt ]
 *
 * where `status` is an index into STATUS_NAMES, `aux` is the invalid field, the reservation
 * state or the duplicate flag, and `value` is the reservation number or the new stock.
 */
import { IDEMPOTENCY_KEY_BYTES_MAX, USER_ID_BYTES_MAX } from './validate.js';

export const Op = { reserve: 1, confirm: 2, cancel: 3, return: 4, restock: 5, close: 6 } as const;
export type OpCode = (typeof Op)[keyof typeof Op];

/** Numbers per request in a result buffer. */
export const RESULT_STRIDE = 3;

/** Largest record: op + sku + qty + userId + key, each string at most 255 bytes. */
const RECORD_BYTES_MAX = 1 + 256 + 4 + 256 + 256;

export class BatchWriter {
  private buf: Uint8Array;
  private view: DataView;
  pos = 0;
  count = 0;

  constructor(buffer: ArrayBuffer = new ArrayBuffer(64 * 1024)) {
    this.buf = new Uint8Array(buffer);
    this.view = new DataView(buffer);
  }

  private ensure(): void {
    if (this.pos + RECORD_BYTES_MAX <= this.buf.length) return;
    const bigger = new Uint8Array(this.buf.length * 2);
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /**
   * Writes a string as u8 length + UTF-8 and returns its byte length, or -1 (writing nothing
   * useful) when it is empty or longer than `maxBytes`. Validating while encoding saves the
   * caller a second pass over every user id and key.
   */
  private str(s: string, maxBytes: number): number {
    const n = s.length;
    if (n === 0 || n > maxBytes) return -1;
    const buf = this.buf;
    const lenAt = this.pos;
    let p = lenAt + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        // Rare: non-ASCII text goes through the UTF-8 encoder (at most 4 bytes per UTF-16 unit
        // pair, so 255 bytes of room is enough for any string that passes the check below).
        // A lone surrogate would be encoded as U+FFFD, making distinct strings the same bytes.
        if (!s.isWellFormed()) return -1;
        const bytes = Buffer.byteLength(s, 'utf8');
        if (bytes > maxBytes) return -1;
        p = lenAt + 1 + Buffer.from(buf.buffer, buf.byteOffset).write(s, lenAt + 1, 'utf8');
        break;
      }
      buf[p++] = c;
    }
    buf[lenAt] = p - lenAt - 1;
    this.pos = p;
    return p - lenAt - 1;
  }

  /**
   * Appends a reserve request. Returns 0, or -1 if `userId` and -2 if `idempotencyKey` is empty
   * or longer than its byte limit, in which case nothing is appended. The SKU id and qty are
   * checked by the caller.
   */
  reserve(sku: string, qty: number, userId: unknown, idempotencyKey: unknown): number {
    this.ensure();
    const start = this.pos;
    this.buf[this.pos++] = Op.reserve;
    this.str(sku, 255);
    this.view.setUint32(this.pos, qty, true);
    this.pos += 4;
    if (typeof userId !== 'string' || this.str(userId, USER_ID_BYTES_MAX) < 0) {
      this.pos = start;
      return -1;
    }
    if (
      typeof idempotencyKey !== 'string' ||
      this.str(idempotencyKey, IDEMPOTENCY_KEY_BYTES_MAX) < 0
    ) {
      this.pos = start;
      return -2;
    }
    this.count++;
    return 0;
  }

  /** Appends a confirm, cancel or return; `owner` ('' for none) was checked by the caller. */
  reservationCommand(op: OpCode, sku: string, reservation: number, owner = ''): void {
    this.ensure();
    this.buf[this.pos++] = op;
    this.str(sku, 255);
    this.view.setFloat64(this.pos, reservation, true);
    this.pos += 8;
    if (owner === '') this.buf[this.pos++] = 0;
    else this.str(owner, USER_ID_BYTES_MAX);
    this.count++;
  }

  restock(sku: string, qty: number): void {
    this.ensure();
    this.buf[this.pos++] = Op.restock;
    this.str(sku, 255);
    this.view.setUint32(this.pos, qty, true);
    this.pos += 4;
    this.count++;
  }

  close(sku: string): void {
    this.ensure();
    this.buf[this.pos++] = Op.close;
    this.str(sku, 255);
    this.count++;
  }

  /**
   * Hands over the written bytes (to be transferred) and continues in `next`, a buffer the
   * caller recycled from an earlier batch, so a steady stream of batches allocates nothing.
   */
  take(next: ArrayBuffer): { buffer: ArrayBuffer; bytes: number; count: number } {
    const out = { buffer: this.buf.buffer as ArrayBuffer, bytes: this.pos, count: this.count };
    this.buf = new Uint8Array(next);
    this.view = new DataView(next);
    this.pos = 0;
    this.count = 0;
    return out;
  }
}

export function packResult(status: number, aux: number): number {
  return status | (aux << 8);
}
