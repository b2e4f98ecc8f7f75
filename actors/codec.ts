/**
 * The compact binary form of a batch of requests to one shard, and of its results. A batch
 * travels as one transferred ArrayBuffer, so crossing threads costs one postMessage per batch
 * and no structured clone of objects.
 *
 * Request records (little endian, strings are u8 length + UTF-8 bytes):
 *
 *   reserve:  u8 op=1 | str sku | u32 qty | str userId | str idempotencyKey
 *   confirm:  u8 op=2 | str sku | f64 reservation      (also cancel=3, return=4)
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

  constructor(private readonly initialBytes = 64 * 1024) {
    this.buf = new Uint8Array(initialBytes);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(): void {
    if (this.pos + RECORD_BYTES_MAX <= this.buf.length) return;
    const bigger = new Uint8Array(this.buf.length * 2);
    bigger.set(this.buf.subarray(0, this.pos));
    this.buf = bigger;
    this.view = new DataView(bigger.buffer);
  }

  /** Writes a string as u8 length + UTF-8; callers have checked it is at most 255 bytes. */
  private str(s: string): void {
    const buf = this.buf;
    const lenAt = this.pos;
    let p = lenAt + 1;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0x7f) {
        // Rare: non-ASCII text goes through the UTF-8 encoder.
        p = lenAt + 1 + Buffer.from(buf.buffer, buf.byteOffset).write(s, lenAt + 1, 'utf8');
        break;
      }
      buf[p++] = c;
    }
    buf[lenAt] = p - lenAt - 1;
    this.pos = p;
  }

  reserve(sku: string, qty: number, userId: string, idempotencyKey: string): void {
    this.ensure();
    this.buf[this.pos++] = Op.reserve;
    this.str(sku);
    this.view.setUint32(this.pos, qty, true);
    this.pos += 4;
    this.str(userId);
    this.str(idempotencyKey);
    this.count++;
  }

  reservationCommand(op: OpCode, sku: string, reservation: number): void {
    this.ensure();
    this.buf[this.pos++] = op;
    this.str(sku);
    this.view.setFloat64(this.pos, reservation, true);
    this.pos += 8;
    this.count++;
  }

  restock(sku: string, qty: number): void {
    this.ensure();
    this.buf[this.pos++] = Op.restock;
    this.str(sku);
    this.view.setUint32(this.pos, qty, true);
    this.pos += 4;
    this.count++;
  }

  close(sku: string): void {
    this.ensure();
    this.buf[this.pos++] = Op.close;
    this.str(sku);
    this.count++;
  }

  /** Hands over the written bytes (to be transferred) and starts a fresh buffer. */
  take(): { buffer: ArrayBuffer; bytes: number; count: number } {
    const out = { buffer: this.buf.buffer as ArrayBuffer, bytes: this.pos, count: this.count };
    this.buf = new Uint8Array(this.initialBytes);
    this.view = new DataView(this.buf.buffer);
    this.pos = 0;
    this.count = 0;
    return out;
  }
}

export function packResult(status: number, aux: number): number {
  return status | (aux << 8);
}
