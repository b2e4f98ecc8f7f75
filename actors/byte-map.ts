import assert from 'node:assert/strict';

/**
 * A hash map from byte strings to numbers, with the keys copied into one growable arena.
 *
 * Why not `Map<string, number>`: the shard receives user ids and idempotency keys as UTF-8 bytes
 * in a batch buffer. Turning each into a JS string and hashing it into a Map of millions of
 * entries costs ~700 ns per insert here (allocation, rehash, cache misses on scattered strings);
 * hashing the bytes in place into flat typed arrays costs a fraction of that and makes no garbage.
 * Keys are never deleted (idempotency keys and per-user counters live as long as the SKU), so the
 * table is plain open addressing with linear probing.
 */
export class ByteMap {
  // Open-addressing table of (hash, entry + 1) pairs: a probe compares hashes without touching
  // the entries, so a miss costs one cache line and a hit two (the slot and the key bytes).
  private slots: Int32Array;
  private mask: number; // slot count - 1 (slot count is a power of two)
  private meta: Int32Array; // per entry: arena offset, key length
  private numbers: Float64Array;
  private arena: Uint8Array;
  private arenaUsed = 0;
  size = 0;

  constructor(capacity = 16) {
    let n = 16;
    while (n < capacity * 2) n *= 2;
    this.slots = new Int32Array(n * 2);
    this.mask = n - 1;
    this.meta = new Int32Array(n);
    this.numbers = new Float64Array(n >>> 1);
    this.arena = new Uint8Array(Math.max(256, (n >>> 1) * 16));
  }

  // Where the last `find` that missed stopped: `insertMissed` puts the key there without
  // hashing and probing again (the common find-then-insert of a new buyer costs one probe).
  private missHash = 0;
  private missSlot = -1;

  /** Index of the entry for `buf[off, off+len)`, or -1. */
  find(buf: Uint8Array, off: number, len: number): number {
    const h = hashBytes(buf, off, len);
    const slots = this.slots;
    let i = h & this.mask;
    for (;;) {
      const s = slots[2 * i + 1];
      if (s === 0) {
        this.missHash = h;
        this.missSlot = i;
        return -1;
      }
      if (slots[2 * i] === h && this.equals(s - 1, buf, off, len)) return s - 1;
      i = (i + 1) & this.mask;
    }
  }

  /**
   * Inserts the key that the immediately preceding `find` on this map did not find (same
   * arguments, no other insert in between). Returns the new entry index.
   */
  insertMissed(buf: Uint8Array, off: number, len: number, value: number): number {
    if ((this.size + 1) * 2 > this.mask + 1) return this.insert(buf, off, len, value);
    const i = this.missSlot;
    this.missSlot = -1;
    if (i < 0 || this.slots[2 * i + 1] !== 0) throw new Error('ByteMap.insertMissed without a missed find');
    return this.place(i, this.missHash, buf, off, len, value);
  }

  /** Adds a key that is not in the map (checked) and returns its entry index. */
  insert(buf: Uint8Array, off: number, len: number, value: number): number {
    assert.ok(len <= 0xffff, 'ByteMap keys are at most 65535 bytes');
    if ((this.size + 1) * 2 > this.mask + 1) this.grow();
    const h = hashBytes(buf, off, len);
    const slots = this.slots;
    let i = h & this.mask;
    while (slots[2 * i + 1] !== 0) {
      const e = slots[2 * i + 1] - 1;
      assert.ok(!(slots[2 * i] === h && this.equals(e, buf, off, len)), 'ByteMap.insert of a present key');
      i = (i + 1) & this.mask;
    }
    return this.place(i, h, buf, off, len, value);
  }

  private place(i: number, h: number, buf: Uint8Array, off: number, len: number, value: number): number {
    const e = this.size++;
    if (this.arenaUsed + len > this.arena.length) {
      const bigger = new Uint8Array(Math.max(this.arena.length * 2, this.arenaUsed + len));
      bigger.set(this.arena.subarray(0, this.arenaUsed));
      this.arena = bigger;
    }
    const arena = this.arena;
    const at = this.arenaUsed;
    for (let k = 0; k < len; k++) arena[at + k] = buf[off + k];
    this.meta[2 * e] = at;
    this.meta[2 * e + 1] = len;
    this.numbers[e] = value;
    this.arenaUsed = at + len;
    this.slots[2 * i] = h;
    this.slots[2 * i + 1] = e + 1;
    return e;
  }

  value(entry: number): number {
    return this.numbers[entry];
  }

  setValue(entry: number, value: number): void {
    this.numbers[entry] = value;
  }

  /** The key of an entry as a string (slow path: events, snapshots, diagnostics). */
  keyString(entry: number): string {
    const off = this.meta[2 * entry];
    return Buffer.from(this.arena.buffer, this.arena.byteOffset + off, this.meta[2 * entry + 1]).toString(
      'utf8',
    );
  }

  /** Copies an entry's key bytes into `out` at `at`; returns the length. */
  copyKey(entry: number, out: Uint8Array, at: number): number {
    const off = this.meta[2 * entry];
    const len = this.meta[2 * entry + 1];
    out.set(this.arena.subarray(off, off + len), at);
    return len;
  }

  keyLength(entry: number): number {
    return this.meta[2 * entry + 1];
  }

  /** Whether entry `e`'s key equals `buf[off, off+len)`. */
  equals(e: number, buf: Uint8Array, off: number, len: number): boolean {
    if (this.meta[2 * e + 1] !== len) return false;
    const a = this.arena;
    const base = this.meta[2 * e];
    for (let k = 0; k < len; k++) if (a[base + k] !== buf[off + k]) return false;
    return true;
  }

  private grow(): void {
    // Small maps grow fourfold (fewer rehashes on the way up a hot sale), large ones double.
    const n = (this.mask + 1) * (this.mask < 1 << 20 ? 4 : 2);
    const meta = new Int32Array(n);
    meta.set(this.meta);
    const numbers = new Float64Array(n >>> 1);
    numbers.set(this.numbers);
    const old = this.slots;
    const slots = new Int32Array(n * 2);
    const mask = n - 1;
    for (let j = 0; j < old.length; j += 2) {
      if (old[j + 1] === 0) continue;
      let i = old[j] & mask;
      while (slots[2 * i + 1] !== 0) i = (i + 1) & mask;
      slots[2 * i] = old[j];
      slots[2 * i + 1] = old[j + 1];
    }
    this.meta = meta;
    this.numbers = numbers;
    this.slots = slots;
    this.mask = mask;
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
