/**
 * A hash map from byte strings to small integers, with the keys copied into one growable arena.
 *
 * Why not `Map<string, number>`: the shard receives user ids and idempotency keys as UTF-8 bytes
 * in a batch buffer. Turning each into a JS string and hashing it into a Map of millions of
 * entries costs ~700 ns per insert here (allocation, rehash, cache misses on scattered strings).
 * Here a lookup hashes the bytes in place and touches two cache lines: its slot, which holds
 * the hash, the key's place in the arena and the value side by side, and the key bytes. New keys
 * are appended to the arena, so inserts write memory in order.
 *
 *   slots: [hash | ref | value] [hash | ref | value] ...   (ref = arena offset + 1, 0 = empty)
 *   arena: [u16 len | bytes] [u16 len | bytes] ...          (never moves an entry: refs are stable)
 *
 * Keys are never deleted (idempotency keys and per-user counters live as long as the SKU), so
 * the table is plain open addressing with linear probing. Slot numbers are valid until the next
 * insert that grows the table; refs are valid forever.
 */
const STRIDE = 3;

export class ByteMap {
  private slots: Int32Array;
  private mask: number; // slot count - 1 (slot count is a power of two)
  private arena: Uint8Array;
  private arenaUsed = 0;
  size = 0;
  // Where the last `find` that missed stopped: `insertMissed` puts the key there without
  // hashing and probing again (the common find-then-insert of a new buyer costs one probe).
  private missHash = 0;
  private missSlot = -1;

  constructor(capacity = 16) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n * STRIDE);
    this.mask = n - 1;
    this.arena = new Uint8Array(Math.max(256, n * 8));
  }

  /** The slot holding `buf[off, off+len)`, or -1. */
  find(buf: Uint8Array, off: number, len: number): number {
    const h = hashBytes(buf, off, len);
    const slots = this.slots;
    let i = h & this.mask;
    for (;;) {
      const ref = slots[i * STRIDE + 1];
      if (ref === 0) {
        this.missHash = h;
        this.missSlot = i;
        return -1;
      }
      if (slots[i * STRIDE] === h && this.equals(ref, buf, off, len)) return i;
      i = (i + 1) & this.mask;
    }
  }

  /** The slot of the key stored at `ref` (a re-hash of its arena bytes). */
  slotOf(ref: number): number {
    const i = this.find(this.arena, ref + 2, this.refLength(ref));
    if (i < 0) throw new Error(`ByteMap: no key at ref ${ref}`);
    return i;
  }

  /**
   * Inserts the key that the immediately preceding `find` on this map did not find (same
   * arguments, no other insert in between). Returns its slot.
   */
  insertMissed(buf: Uint8Array, off: number, len: number, value: number): number {
    const i = this.missSlot;
    this.missSlot = -1;
    if (i < 0 || this.slots[i * STRIDE + 1] !== 0)
      throw new Error('ByteMap.insertMissed without a missed find');
    if ((this.size + 1) * 2 > this.mask + 1) return this.insert(buf, off, len, value);
    return this.place(i, this.missHash, buf, off, len, value);
  }

  /** Adds a key that is not in the map (checked) and returns its slot. */
  insert(buf: Uint8Array, off: number, len: number, value: number): number {
    if (len > 0xffff) throw new RangeError('ByteMap keys are at most 65535 bytes');
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    if (this.find(buf, off, len) >= 0) throw new Error('ByteMap.insert of a present key');
    return this.place(this.missSlot, this.missHash, buf, off, len, value);
  }

  private place(
    i: number,
    h: number,
    buf: Uint8Array,
    off: number,
    len: number,
    value: number,
  ): number {
    this.missSlot = -1;
    if (this.arenaUsed + 2 + len > this.arena.length) {
      const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + 2 + len));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
    }
    const arena = this.arena;
    const at = this.arenaUsed;
    arena[at] = len & 0xff;
    arena[at + 1] = len >>> 8;
    for (let k = 0; k < len; k++) arena[at + 2 + k] = buf[off + k];
    this.arenaUsed = at + 2 + len;
    const s = i * STRIDE;
    this.slots[s] = h;
    this.slots[s + 1] = at + 1;
    this.slots[s + 2] = value;
    this.size++;
    return i;
  }

  value(slot: number): number {
    return this.slots[slot * STRIDE + 2];
  }

  setValue(slot: number, value: number): void {
    this.slots[slot * STRIDE + 2] = value;
  }

  /** The stable reference of the key in `slot` (survives growth; slots do not). */
  ref(slot: number): number {
    return this.slots[slot * STRIDE + 1] - 1;
  }

  refLength(ref: number): number {
    return this.arena[ref] | (this.arena[ref + 1] << 8);
  }

  /** The key at `ref` as a string (slow path: events, snapshots, diagnostics). */
  refString(ref: number): string {
    const a = this.arena;
    return Buffer.from(a.buffer, a.byteOffset + ref + 2, this.refLength(ref)).toString('utf8');
  }

  /** Copies the key at `ref` into `out` at `at`; returns its length. */
  copyRef(ref: number, out: Uint8Array, at: number): number {
    const len = this.refLength(ref);
    const a = this.arena;
    // A plain loop: keys are short, and subarray() would allocate a view per call.
    for (let k = 0; k < len; k++) out[at + k] = a[ref + 2 + k];
    return len;
  }

  /** Whether the key at `ref` (an arena offset) equals `buf[off, off+len)`. */
  refEquals(ref: number, buf: Uint8Array, off: number, len: number): boolean {
    return this.equals(ref + 1, buf, off, len);
  }

  /** Sum of all values (diagnostics and tests). */
  valueTotal(): number {
    let total = 0;
    for (let s = 0; s < this.slots.length; s += STRIDE)
      if (this.slots[s + 1] !== 0) total += this.slots[s + 2];
    return total;
  }

  private equals(ref1: number, buf: Uint8Array, off: number, len: number): boolean {
    const a = this.arena;
    const at = ref1 - 1;
    if ((a[at] | (a[at + 1] << 8)) !== len) return false;
    for (let k = 0; k < len; k++) if (a[at + 2 + k] !== buf[off + k]) return false;
    return true;
  }

  private grow(): void {
    // Small maps grow fourfold (fewer rehashes on the way up a hot sale), large ones double.
    const n = (this.mask + 1) * (this.mask < 1 << 20 ? 4 : 2);
    const old = this.slots;
    const slots = new Int32Array(n * STRIDE);
    const mask = n - 1;
    for (let j = 0; j < old.length; j += STRIDE) {
      if (old[j + 1] === 0) continue;
      let i = old[j] & mask;
      while (slots[i * STRIDE + 1] !== 0) i = (i + 1) & mask;
      slots[i * STRIDE] = old[j];
      slots[i * STRIDE + 1] = old[j + 1];
      slots[i * STRIDE + 2] = old[j + 2];
    }
    this.slots = slots;
    this.mask = mask;
    this.missSlot = -1;
  }
}

/** FNV-1a over bytes, with a final avalanche so that linear probing sees well-spread low bits. */
export function hashBytes(buf: Uint8Array, off: number, len: number): number {
  let h = 0x811c9dc5;
  for (let k = off, end = off + len; k < end; k++) h = Math.imul(h ^ buf[k], 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h | 0;
}
