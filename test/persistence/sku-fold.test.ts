// The pure event → row folding of the MySQL projector, checked against the engine's own actor.
import t from 'tap';
import { CollectingEventLog, SkuActor, settingsOf } from '../../actors/index.js';
import type { SkuEvent } from '../../actors/index.js';
import { FoldError, foldSku, sameCounters } from '../../persistence/stores/index.js';
import type { ReservationRow } from '../../persistence/stores/index.js';

t.test("folding the actor's own events gives its snapshot", async (t) => {
  const log = new CollectingEventLog();
  const settings = settingsOf({ sku: 'mug', stock: 10, holdTtlMs: 100, price: 5 }, 100);
  const actor = SkuActor.define(settings, 0, 0, log);
  for (let k = 0; k < 6; k++)
    actor.reserveStrings(`u${k}`, `key-${k}`, 1 + (k % 2), 1_000 + k, log);
  actor.restock(4, 2_000, log);
  const reservations = new Map<string, ReservationRow>();
  const row = foldSku(null, log.events, reservations)!;
  const snap = actor.snapshot();
  t.match(row, {
    stock: snap.initialStock + snap.restocked,
    available: snap.available,
    reserved: snap.reserved,
    sold: snap.sold,
    version: snap.seq,
    price: 5,
  });
  t.equal(reservations.size, 6, 'one row per reservation');
  t.ok([...reservations.values()].every((r) => r.status === 'held' && r.userId !== null));
});

t.test('rules per event type', async (t) => {
  const at = 1_000;
  const ev = (seq: number, e: Record<string, unknown>) =>
    ({ sku: 'cap', seq, at: at + seq, ...e }) as unknown as SkuEvent;
  const defined = ev(1, {
    type: 'sku_defined',
    stock: 5,
    perUserLimit: 0,
    holdTtlMs: 100,
    startsAt: null,
    endsAt: null,
    price: 7,
    name: 'Cap',
  });
  const events = [
    defined,
    ev(2, {
      type: 'reserved',
      reservation: 1,
      userId: 'u',
      qty: 2,
      idempotencyKey: 'a',
      expiresAt: 9,
    }),
    ev(3, {
      type: 'reserved',
      reservation: 2,
      userId: 'v',
      qty: 1,
      idempotencyKey: 'b',
      expiresAt: 9,
    }),
    ev(4, { type: 'confirmed', reservation: 1, qty: 2 }),
    ev(5, { type: 'expired', reservation: 2, qty: 1 }),
    ev(6, { type: 'returned', reservation: 1, qty: 2 }),
    ev(7, { type: 'restocked', qty: 3 }),
    ev(8, { type: 'sale_closed' }),
  ];
  const res = new Map<string, ReservationRow>();
  const row = foldSku(null, events, res)!;
  t.match(row, {
    stock: 8,
    available: 8,
    reserved: 0,
    sold: 0,
    returned: 2,
    restocked: 3,
    closed: true,
    version: 8,
    updatedAt: at + 8,
  });
  t.match(res.get('cap:1'), { status: 'returned', lastSeq: 6, userId: 'u', createdAt: at + 2 });
  t.match(res.get('cap:2'), { status: 'expired', lastSeq: 5, idempotencyKey: 'b' });

  // Split in two batches: the second one only changes status, knowing nothing else.
  const res1 = new Map<string, ReservationRow>();
  const half = foldSku(null, events.slice(0, 4), res1)!;
  const res2 = new Map<string, ReservationRow>();
  const whole = foldSku(half, events.slice(4), res2)!;
  t.ok(sameCounters(whole, row), 'two batches fold to the same row as one');
  t.match(res2.get('cap:1'), { status: 'returned', userId: null, createdAt: null });
  t.equal(half.version, 4, 'the start row is not changed');

  t.equal(foldSku(row, events, new Map()), row, 'a replay is skipped whole');
  const partial = foldSku(half, events, new Map())!;
  t.ok(sameCounters(partial, row), 'events at or below the version are skipped');
  t.ok(sameCounters(foldSku(null, events, null, 4)!, half), 'upTo stops at a seq');
  t.throws(() => foldSku(half, events.slice(5), null), FoldError, 'a gap is refused');
  t.throws(() => foldSku(null, events.slice(1), null), FoldError, 'no definition is refused');
});
