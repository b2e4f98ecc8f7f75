/**
 * A SKU's reservations, one 32-byte record each in a single growable Float64Array, indexed by
 * reservation number (1, 2, ...). One record per cache-line half: a command on a reservation
 * touches one line, where five parallel arrays touched five.
 *
 *   record r: [ userRef | keyRef | qty * 8 + state | expiresAt ]
 *
 * userRef and keyRef are stable references into the SKU's user and key maps (see ByteMap).
 */
const STRIDE = 4;

export class ReservationTable {
  private rows: Float64Array;
  count = 0;

  constructor(capacity = 16) {
    this.rows = new Float64Array((capacity + 1) * STRIDE);
  }

  add(userRef: number, keyRef: number, qty: number, state: number, expiresAt: number): number {
    const r = ++this.count;
    if ((r + 1) * STRIDE > this.rows.length) {
      const bigger = new Float64Array(this.rows.length * 2);
      bigger.set(this.rows);
      this.rows = bigger;
    }
    const o = r * STRIDE;
    this.rows[o] = userRef;
    this.rows[o + 1] = keyRef;
    this.rows[o + 2] = qty * 8 + state;
    this.rows[o + 3] = expiresAt;
    return r;
  }

  has(r: number): boolean {
    return r >= 1 && r <= this.count && Number.isInteger(r);
  }

  userRef(r: number): number {
    return this.rows[r * STRIDE];
  }

  keyRef(r: number): number {
    return this.rows[r * STRIDE + 1];
  }

  qty(r: number): number {
    return Math.floor(this.rows[r * STRIDE + 2] / 8);
  }

  state(r: number): number {
    return this.rows[r * STRIDE + 2] % 8;
  }

  setState(r: number, state: number): void {
    const o = r * STRIDE + 2;
    this.rows[o] = Math.floor(this.rows[o] / 8) * 8 + state;
  }

  expiresAt(r: number): number {
    return this.rows[r * STRIDE + 3];
  }
}
