// The Kafka journal's payload walker (persistence/split-by-sku.ts) against the real encoder and
// decoder in actors/: it repeats the event layout's sizes, so this is what keeps them in step.
import t from 'tap';
import {
  BinaryEventLog,
  RESERVATION_COMMANDS,
  SkuActor,
  decodeEvents,
  settingsOf,
} from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { checkSkuPayload, splitBySku } from '../../persistence/journal/split-by-sku.js';
import { perSku, saleCommits } from './journal-helpers.js';

const cmd = (name: (typeof RESERVATION_COMMANDS)[number]) => RESERVATION_COMMANDS.indexOf(name);

/** Every event type, for three SKUs, interleaved, with long and non-ASCII strings. */
function everyEventType(): Uint8Array {
  const log = new BinaryEventLog();
  const skus = ['a', 'b'.repeat(64), 'ç-☃'];
  const actors = skus.map((sku, i) => {
    const def = { sku, stock: 100, name: `n${'é'.repeat(i * 40)}`, startsAt: 5, endsAt: null };
    return SkuActor.define(settingsOf(def, 1000), i, 10, log);
  });
  for (const [i, a] of actors.entries()) {
    a.update({ price: 12.5, name: 'x'.repeat(300), perUserLimit: 4 }, 11, log);
    a.reserveStrings('u'.repeat(200 + i), `key-${i}`, 2, 12, log); // reservation 1
    a.reserveStrings('v', 'k2', 1, 12, log); // 2
    a.reserveStrings('w', 'k3', 1, 12, log); // 3
    a.reserveStrings('z', 'k4', 1, 12, log); // 4
    a.command(1, cmd('confirm'), 13, log);
    a.command(1, cmd('return'), 14, log);
    a.command(2, cmd('cancel'), 15, log);
    a.expire(3, 5_000, log);
    a.restock(7, 16, log);
    a.close(17, log);
  }
  return log.take()!;
}

t.test('splits a payload into one valid payload per SKU, every event type, in order', async (t) => {
  const payload = everyEventType();
  const all = decodeEvents(payload);
  t.same(
    new Set(all.map((e) => e.type)),
    new Set(
      ['sku_defined', 'sku_updated', 'reserved', 'confirmed', 'returned', 'cancelled'].concat([
        'expired',
        'restocked',
        'sale_closed',
      ]),
    ),
    'the fixture has every event type',
  );
  const parts = splitBySku(payload);
  const want = perSku(all);
  const keys = parts.map((p) => p.key.toString('utf8'));
  t.same(keys, [...want.keys()], 'one part per SKU, in first-seen order');
  for (const p of parts) {
    const sku = p.key.toString('utf8');
    t.same(decodeEvents(p.value), want.get(sku), `${sku}: its events, decodable on their own`);
    t.equal(p.events, want.get(sku)!.length);
    t.equal(checkSkuPayload(p.value, p.key), null, `${sku}: checks out`);
  }
});

t.test('a single-SKU payload is passed through without a copy', async (t) => {
  const c = saleCommits(['hot'], 3).commit(200);
  const [only, ...rest] = splitBySku(c.payload);
  t.equal(rest.length, 0);
  t.equal(only.value.buffer, c.payload.buffer, 'same memory');
  t.same(decodeEvents(only.value), c.events);
});

t.test('a SKU larger than valueBytesMax is cut into consecutive payloads', async (t) => {
  const c = saleCommits(['hot', 'cold'], 5).commit(3_000);
  const parts = splitBySku(c.payload, 4_096);
  t.ok(parts.length > 10, `${parts.length} parts`);
  t.ok(
    parts.every((p) => p.value.length <= 4_096),
    'each within the bound',
  );
  const again: SkuEvent[] = parts.flatMap((p) => decodeEvents(p.value));
  t.same(perSku(again), perSku(c.events), 'per SKU, the same events in the same order');
});

t.test('checkSkuPayload finds what is wrong and never throws', async (t) => {
  const [first] = splitBySku(everyEventType());
  const v = first.value;
  t.match(checkSkuPayload(v, Buffer.from('zz')), /another SKU/);
  t.match(checkSkuPayload(v.subarray(0, v.length - 1), first.key), /malformed or truncated/);
  t.match(checkSkuPayload(Buffer.concat([v, Buffer.from([0])]), first.key), /1 trailing bytes/);
  const badType = Buffer.from(v);
  badType[5] = 42;
  t.match(checkSkuPayload(badType, first.key), /event 0 .* malformed/);
  const badVersion = Buffer.from(v);
  badVersion[0] = 2;
  t.match(checkSkuPayload(badVersion, first.key), /unknown payload version 2/);
  t.match(checkSkuPayload(v, null), /no SKU key/);
  // Random damage: any answer but a crash or a read out of bounds.
  let seed = 7;
  for (let i = 0; i < 2_000; i++) {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
    const damaged = Buffer.from(v.subarray(0, seed % (v.length + 1)));
    if (damaged.length > 0) damaged[seed % damaged.length] ^= 1 + (seed >>> 24);
    const r = checkSkuPayload(damaged, first.key);
    if (r === null) t.doesNotThrow(() => decodeEvents(damaged), 'if it checks out, it decodes');
  }
});

t.test('a malformed payload is a RangeError, before anything is sent', async (t) => {
  const p = saleCommits(['a', 'b'], 1).commit(10).payload;
  t.throws(() => splitBySku(p.subarray(0, p.length - 3)), RangeError);
  t.throws(() => splitBySku(new Uint8Array([2, 1, 0, 0, 0])), /version 2/);
  t.throws(() => splitBySku(new Uint8Array([1, 0, 0, 0, 0])), /count 0/);
});
