/**
 * Splits an event payload (the binary form in actors/event-codec.ts) into one payload per SKU,
 * the unit the Kafka journal stores as one message keyed by SKU, and checks such a payload when
 * it is read back.
 *
 *   payload := u8 version=1 | u32 count | event*          (little endian)
 *   event   := u8 type | u8 skuLen | sku | f64 seq | f64 at | body
 *
 * Only the lengths of the event bodies are known here, not their meaning: persistence/ may not
 * import actors/ (DESIGN.md, folders), so this walker repeats the layout's sizes, and
 * test/persistence/split-by-sku.test.ts checks it against the real encoder on every event type.
 * docs/journal-format.md documents the layout for readers outside Stockade.
 */
export const PAYLOAD_VERSION = 1;
export const PAYLOAD_HEADER_BYTES = 5;
/** type, skuLen, then f64 seq and f64 at after the SKU bytes. */
const EVENT_HEAD_BYTES = 2 + 16;

/** Body sizes by event type (1..9); -1: the body has variable-length parts, see `eventEnd`. */
const FIXED_BODY_BYTES = [-2, -1, -1, -1, 12, 12, 12, 12, 4, 0];

/**
 * Offset just past the event that starts at `o`, or -1 if the event runs past `end` or has an
 * unknown type. Never reads outside `[o, end)`.
 */
export function eventEnd(p: Uint8Array, o: number, end: number): number {
  if (o + EVENT_HEAD_BYTES > end) return -1;
  const type = p[o];
  const body = o + EVENT_HEAD_BYTES + p[o + 1];
  if (type < 1 || type > 9 || body > end) return -1;
  const fixed = FIXED_BODY_BYTES[type];
  if (fixed >= 0) return body + fixed <= end ? body + fixed : -1;
  if (type === 3) {
    // reserved: f64 reservation | u32 qty | f64 expiresAt | u8 userLen | user | u8 keyLen | key
    if (body + 21 > end) return -1;
    const key = body + 21 + p[body + 20];
    if (key + 1 > end) return -1;
    const e = key + 1 + p[key];
    return e <= end ? e : -1;
  }
  // sku_defined (u32 stock first) and sku_updated: ... | u16 nameLen | name
  const nameLenAt = body + (type === 1 ? 36 : 32);
  if (nameLenAt + 2 > end) return -1;
  const e = nameLenAt + 2 + (p[nameLenAt] | (p[nameLenAt + 1] << 8));
  return e <= end ? e : -1;
}

export interface SkuPayload {
  /** The SKU id's UTF-8 bytes. */
  key: Buffer;
  /** A payload (same format as the input) holding only this SKU's events, in order. */
  value: Buffer;
  events: number;
}

interface Group {
  key: Buffer;
  bytes: number;
  events: number;
  /** Where its events are being copied to, during the second pass. */
  at: number;
  value: Buffer | null;
}

/**
 * One payload per SKU, in order of each SKU's first event; each keeps its SKU's events in
 * their original order. A SKU whose events would make a value longer than `valueBytesMax` gets
 * several consecutive payloads (each a prefix-closed run of its events). Throws a RangeError on
 * a malformed payload: the caller handed the journal something that is not an event payload.
 */
export function splitBySku(p: Uint8Array, valueBytesMax = 2 ** 31): SkuPayload[] {
  const count = payloadCount(p);
  const ends = new Int32Array(count);
  const owner = new Int32Array(count);
  const groups: Group[] = [];
  const bySku = new Map<string, number>();
  let o = PAYLOAD_HEADER_BYTES;
  let prev = -1;
  for (let i = 0; i < count; i++) {
    const e = eventEnd(p, o, p.length);
    if (e < 0) throw new RangeError(`event payload: event ${i} at byte ${o} is malformed`);
    const skuLen = p[o + 1];
    // Runs of one SKU are the common case (a hot SKU): compare with the previous event first.
    let g = prev >= 0 && sameSku(p, o, groups[prev].key) ? prev : -1;
    if (g < 0) {
      const sku = Buffer.from(p.buffer, p.byteOffset + o + 2, skuLen).toString('latin1');
      g = bySku.get(sku) ?? -1;
      if (g < 0) g = addGroup(groups, bySku, sku);
    }
    if (groups[g].bytes + (e - o) > valueBytesMax - PAYLOAD_HEADER_BYTES && groups[g].events > 0) {
      // Too big for one message: this SKU continues in a new payload, after the full one.
      g = addGroup(groups, bySku, groups[g].key.toString('latin1'));
    }
    groups[g].bytes += e - o;
    groups[g].events++;
    ends[i] = e;
    owner[i] = g;
    prev = g;
    o = e;
  }
  if (o !== p.length) throw new RangeError(`event payload has ${p.length - o} trailing bytes`);
  if (groups.length === 1) return [{ key: groups[0].key, value: asBuffer(p), events: count }];
  return copyGroups(p, groups, ends, owner);
}

function payloadCount(p: Uint8Array): number {
  if (p.length < PAYLOAD_HEADER_BYTES || p[0] !== PAYLOAD_VERSION) {
    throw new RangeError(`event payload: ${p.length} bytes, version ${p[0]}`);
  }
  const count = (p[1] | (p[2] << 8) | (p[3] << 16)) + p[4] * 2 ** 24;
  if (count === 0 || count > p.length) throw new RangeError(`event payload: count ${count}`);
  return count;
}

function addGroup(groups: Group[], bySku: Map<string, number>, sku: string): number {
  groups.push({ key: Buffer.from(sku, 'latin1'), bytes: 0, events: 0, at: 0, value: null });
  bySku.set(sku, groups.length - 1);
  return groups.length - 1;
}

function sameSku(p: Uint8Array, o: number, key: Buffer): boolean {
  const n = p[o + 1];
  if (n !== key.length) return false;
  for (let i = 0; i < n; i++) if (p[o + 2 + i] !== key[i]) return false;
  return true;
}

function copyGroups(
  p: Uint8Array,
  groups: Group[],
  ends: Int32Array,
  owner: Int32Array,
): SkuPayload[] {
  let total = 0;
  for (const g of groups) total += PAYLOAD_HEADER_BYTES + g.bytes;
  // One allocation for all the values; each is a view of its own slice.
  const all = Buffer.allocUnsafe(total);
  let at = 0;
  for (const g of groups) {
    all[at] = PAYLOAD_VERSION;
    all.writeUInt32LE(g.events, at + 1);
    g.value = all.subarray(at, at + PAYLOAD_HEADER_BYTES + g.bytes);
    g.at = at + PAYLOAD_HEADER_BYTES;
    at += PAYLOAD_HEADER_BYTES + g.bytes;
  }
  let start = PAYLOAD_HEADER_BYTES;
  for (let i = 0; i < ends.length; i++) {
    const g = groups[owner[i]];
    all.set(p.subarray(start, ends[i]), g.at);
    g.at += ends[i] - start;
    start = ends[i];
  }
  return groups.map((g) => ({ key: g.key, value: g.value!, events: g.events }));
}

function asBuffer(p: Uint8Array): Buffer {
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength);
}

/**
 * Checks a payload read back from a message keyed `key`: the version, the count, every event
 * within bounds and of a known type, every event for that SKU, no trailing bytes. Returns what
 * is wrong, or null if nothing is.
 */
export function checkSkuPayload(p: Uint8Array, key: Uint8Array | null): string | null {
  if (p.length < PAYLOAD_HEADER_BYTES) return `${p.length} bytes, shorter than a payload header`;
  if (p[0] !== PAYLOAD_VERSION) return `unknown payload version ${p[0]}`;
  if (!key || key.length === 0 || key.length > 255) return 'no SKU key';
  const count = (p[1] | (p[2] << 8) | (p[3] << 16)) + p[4] * 2 ** 24;
  if (count === 0) return 'no events';
  let o = PAYLOAD_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const e = eventEnd(p, o, p.length);
    if (e < 0) return `event ${i} at byte ${o} is malformed or truncated`;
    const sameKey = p[o + 1] === key.length && bytesEqual(p, o + 2, key);
    if (!sameKey) return `event ${i} is for another SKU`;
    o = e;
  }
  return o === p.length ? null : `${p.length - o} trailing bytes`;
}

function bytesEqual(p: Uint8Array, at: number, key: Uint8Array): boolean {
  for (let i = 0; i < key.length; i++) if (p[at + i] !== key[i]) return false;
  return true;
}
