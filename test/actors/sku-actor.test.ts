import t from 'tap';
import { Status, nullEventLog } from '../../actors/index.js';
import { makeActor, name, replay, invariantViolations } from './helpers.js';

t.test('define emits sku_defined at seq 1 with every default filled', async (t) => {
  const { actor, log } = makeActor({ stock: 5 }, 100);
  const [ev] = log.take();
  t.match(ev, {
    type: 'sku_defined',
    sku: 'tee',
    seq: 1,
    at: 100,
    stock: 5,
    perUserLimit: 0,
    holdTtlMs: 60_000,
  });
  t.match(actor.snapshot(), { available: 5, reserved: 0, sold: 0, seq: 1, closed: false });
});

t.test('reserve holds units and emits one reserved event', async (t) => {
  const { actor, log } = makeActor({ stock: 5, holdTtlMs: 1000 });
  log.take();
  t.equal(name(actor.reserveStrings('u1', 'k1', 2, 10, log)), 'reserved');
  t.equal(actor.outReservation, 1);
  t.equal(actor.outExpiresAt, 1010);
  t.equal(actor.outDuplicate, false);
  t.match(actor.snapshot(), { available: 3, reserved: 2, sold: 0, seq: 2 });
  t.same(log.take(), [
    {
      type: 'reserved',
      sku: 'tee',
      seq: 2,
      at: 10,
      reservation: 1,
      userId: 'u1',
      qty: 2,
      idempotencyKey: 'k1',
      expiresAt: 1010,
    },
  ]);
});

t.test('a repeated idempotency key returns the original result and emits nothing', async (t) => {
  const { actor, log } = makeActor({ stock: 5 });
  actor.reserveStrings('u1', 'k1', 2, 10, log);
  log.take();
  t.equal(name(actor.reserveStrings('u1', 'k1', 2, 20, log)), 'reserved');
  t.equal(actor.outReservation, 1);
  t.equal(actor.outDuplicate, true);
  t.equal(actor.outExpiresAt, 10 + 60_000, 'the original expiry, not a new one');
  t.same(log.take(), []);
  t.equal(actor.snapshot().available, 3, 'no second hold');
});

t.test('the same key with another qty or user is idempotency_conflict', async (t) => {
  const { actor, log } = makeActor({ stock: 5 });
  actor.reserveStrings('u1', 'k1', 2, 0, log);
  log.take();
  t.equal(name(actor.reserveStrings('u1', 'k1', 1, 0, log)), 'idempotency_conflict');
  t.equal(name(actor.reserveStrings('u2', 'k1', 2, 0, log)), 'idempotency_conflict');
  t.same(log.take(), []);
  t.equal(actor.snapshot().available, 3);
});

t.test('sold_out when fewer units are left than asked, and nothing changes', async (t) => {
  const { actor, log } = makeActor({ stock: 3 });
  t.equal(name(actor.reserveStrings('u1', 'k1', 2, 0, log)), 'reserved');
  log.take();
  t.equal(name(actor.reserveStrings('u2', 'k2', 2, 0, log)), 'sold_out');
  t.equal(name(actor.reserveStrings('u2', 'k3', 1, 0, log)), 'reserved');
  t.equal(name(actor.reserveStrings('u3', 'k4', 1, 0, log)), 'sold_out');
  t.match(actor.snapshot(), { available: 0, reserved: 3 });
});

t.test('limit_exceeded counts held and bought units per user', async (t) => {
  const { actor, log } = makeActor({ stock: 10, perUserLimit: 2 });
  t.equal(name(actor.reserveStrings('u1', 'a', 1, 0, log)), 'reserved');
  t.equal(name(actor.command(1, 0, 0, log)), 'confirmed');
  t.equal(name(actor.reserveStrings('u1', 'b', 1, 0, log)), 'reserved');
  t.equal(name(actor.reserveStrings('u1', 'c', 1, 0, log)), 'limit_exceeded');
  t.equal(name(actor.reserveStrings('u2', 'd', 3, 0, log)), 'limit_exceeded');
  t.equal(actor.userUnits('u1'), 2);
  // Cancelling gives the user room again.
  t.equal(name(actor.command(2, 1, 0, log)), 'cancelled');
  t.equal(actor.userUnits('u1'), 1);
  t.equal(name(actor.reserveStrings('u1', 'e', 1, 0, log)), 'reserved');
});

t.test('not_open before startsAt, closed at endsAt and after closeSale', async (t) => {
  const { actor, log } = makeActor({ startsAt: 1000, endsAt: 2000 });
  t.equal(name(actor.reserveStrings('u1', 'a', 1, 999, log)), 'not_open');
  t.equal(name(actor.reserveStrings('u1', 'a', 1, 1000, log)), 'reserved');
  t.equal(name(actor.reserveStrings('u1', 'b', 1, 2000, log)), 'closed');
  const other = makeActor();
  t.equal(name(other.actor.close(5, other.log)), 'sale_closed');
  t.equal(name(other.actor.reserveStrings('u1', 'a', 1, 6, other.log)), 'closed');
  t.equal(other.log.events.filter((e) => e.type === 'sale_closed').length, 1);
  other.actor.close(7, other.log);
  t.equal(
    other.log.events.filter((e) => e.type === 'sale_closed').length,
    1,
    'closing twice emits once',
  );
});

t.test('a retry after the sale closed still gets its original reservation', async (t) => {
  const { actor, log } = makeActor();
  actor.reserveStrings('u1', 'k', 1, 0, log);
  actor.close(1, log);
  t.equal(name(actor.reserveStrings('u1', 'k', 1, 2, log)), 'reserved');
  t.equal(actor.outDuplicate, true);
});

t.test('confirm, cancel and return move units between the counters', async (t) => {
  const { actor, log } = makeActor({ stock: 10 });
  actor.reserveStrings('u1', 'a', 2, 0, log);
  actor.reserveStrings('u2', 'b', 3, 0, log);
  t.equal(name(actor.command(1, 0, 1, log)), 'confirmed');
  t.match(actor.snapshot(), { available: 5, reserved: 3, sold: 2 });
  t.equal(name(actor.command(2, 1, 1, log)), 'cancelled');
  t.match(actor.snapshot(), { available: 8, reserved: 0, sold: 2 });
  t.equal(name(actor.command(1, 3, 1, log)), 'returned');
  t.match(actor.snapshot(), { available: 10, reserved: 0, sold: 0, returned: 2 });
  t.equal(actor.userUnits('u1'), 0, 'return gives the per-user count back');
  t.same(invariantViolations(actor), []);
});

t.test('unknown_reservation for numbers never issued', async (t) => {
  const { actor, log } = makeActor();
  t.equal(name(actor.command(1, 0, 0, log)), 'unknown_reservation');
  t.equal(name(actor.command(0, 0, 0, log)), 'unknown_reservation');
  t.equal(name(actor.command(1.5, 0, 0, log)), 'unknown_reservation');
});

t.test('expire releases a hold only once its deadline has passed', async (t) => {
  const { actor, log } = makeActor({ stock: 1, holdTtlMs: 100 });
  actor.reserveStrings('u1', 'a', 1, 0, log);
  log.take();
  t.equal(actor.expire(1, 99, log), false);
  t.equal(actor.expire(1, 100, log), true);
  t.match(log.take(), [{ type: 'expired', reservation: 1, seq: 3 }]);
  t.equal(actor.expire(1, 200, log), false, 'an expired hold does not expire twice');
  t.match(actor.snapshot(), { available: 1, reserved: 0 });
});

t.test('a confirm after the deadline expires the hold and answers hold_expired', async (t) => {
  const { actor, log } = makeActor({ stock: 1, holdTtlMs: 100 });
  actor.reserveStrings('u1', 'a', 1, 0, log);
  log.take();
  t.equal(name(actor.command(1, 0, 150, log)), 'hold_expired');
  t.match(log.take(), [{ type: 'expired', reservation: 1 }]);
  t.match(actor.snapshot(), { available: 1, reserved: 0, sold: 0 });
});

t.test('restock adds units; update changes settings and emits sku_updated', async (t) => {
  const { actor, log } = makeActor({ stock: 1, perUserLimit: 1 });
  log.take();
  t.equal(name(actor.restock(4, 0, log)), 'restocked');
  t.match(actor.snapshot(), { available: 5, restocked: 4 });
  t.equal(name(actor.update({ perUserLimit: 3, price: 999 }, 1, log)), 'updated');
  t.match(actor.snapshot(), { perUserLimit: 3, price: 999 });
  t.match(log.take(), [
    { type: 'restocked', qty: 4 },
    { type: 'sku_updated', perUserLimit: 3, price: 999 },
  ]);
});

t.test('rejections emit nothing and change nothing', async (t) => {
  const { actor, log } = makeActor({ stock: 1, perUserLimit: 1, startsAt: 10 });
  log.take();
  const before = actor.snapshot();
  actor.reserveStrings('u1', 'a', 1, 5, log); // not_open
  actor.reserveStrings('u1', 'a', 2, 20, log); // sold_out
  actor.command(9, 0, 20, log); // unknown_reservation
  t.same(log.take(), []);
  t.same(actor.snapshot(), before);
});

t.test('events replayed into a fresh actor rebuild the same state', async (t) => {
  const { actor, log } = makeActor({ stock: 5, perUserLimit: 2, holdTtlMs: 50 });
  actor.reserveStrings('u1', 'a', 1, 0, log);
  actor.reserveStrings('u2', 'b', 2, 0, log);
  actor.command(1, 0, 1, log);
  actor.expire(2, 100, log);
  actor.restock(3, 100, log);
  actor.reserveStrings('ü-ünicode', 'ключ', 2, 100, log);
  actor.command(1, 3, 101, log);
  actor.update({ perUserLimit: 4 }, 102, log);
  actor.close(103, log);
  const rebuilt = replay(log.events);
  t.same(rebuilt.snapshot(), actor.snapshot());
  t.equal(rebuilt.userUnits('ü-ünicode'), 2);
  t.equal(rebuilt.reservationKey(3), 'ключ');
  t.equal(
    name(rebuilt.reserveStrings('u1', 'a', 1, 200, nullEventLog)),
    'reserved',
    'idempotency map rebuilt',
  );
  t.equal(rebuilt.outDuplicate, true);
});

t.test('status names are stable wire codes', async (t) => {
  t.equal(Status.reserved, 0);
  t.equal(Status.sold_out, 1);
});
