import t from 'tap';
import fc from 'fast-check';
import { CollectingEventLog, SkuActor, settingsOf, STATUS_NAMES } from '../../actors/index.js';
import { invariantViolations, replay } from './helpers.js';

// Random command sequences against one actor. After every step: the conservation invariants
// hold, a rejected command emitted nothing, every emitted event has the next seq, no idempotency
// key ever maps to two reservations, and no user ever goes over the limit by a reserve. At the
// end, replaying the events rebuilds the same state.
const users = ['u1', 'u2', 'u3', 'u4'];
const command = fc.oneof(
  fc.record({
    kind: fc.constant('reserve' as const),
    user: fc.constantFrom(...users),
    key: fc.integer({ min: 0, max: 30 }),
    qty: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({
    kind: fc.constantFrom('confirm' as const, 'cancel' as const, 'return' as const),
    r: fc.integer({ min: 1, max: 25 }),
  }),
  fc.record({ kind: fc.constant('expire' as const), r: fc.integer({ min: 1, max: 25 }) }),
  fc.record({ kind: fc.constant('restock' as const), qty: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('limit' as const), limit: fc.integer({ min: 0, max: 6 }) }),
  fc.record({ kind: fc.constant('close' as const) }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.integer({ min: 0, max: 80 }) }),
);

t.test('random command sequences keep every invariant', async (t) => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 20 }),
      fc.integer({ min: 0, max: 4 }),
      fc.array(command, { maxLength: 120 }),
      (stock, limit, commands) => {
        const log = new CollectingEventLog();
        const actor = SkuActor.define(
          settingsOf({ sku: 's', stock, perUserLimit: limit, holdTtlMs: 100 }, 100),
          0,
          0,
          log,
        );
        let now = 0;
        let seq = 1;
        const keyToReservation = new Map<string, number>();
        for (const c of commands) {
          const before = log.events.length;
          let status = 'none';
          const perUserLimit = actor.snapshot().perUserLimit;
          const userBefore = c.kind === 'reserve' ? actor.userUnits(c.user) : 0;
          switch (c.kind) {
            case 'reserve':
              status = STATUS_NAMES[actor.reserveStrings(c.user, `k${c.key}`, c.qty, now, log)];
              if (status === 'reserved') {
                const prev = keyToReservation.get(`k${c.key}`);
                if (prev !== undefined && prev !== actor.outReservation)
                  throw new Error('key gave two reservations');
                keyToReservation.set(`k${c.key}`, actor.outReservation);
                if (!actor.outDuplicate && perUserLimit > 0 && userBefore + c.qty > perUserLimit) {
                  throw new Error('reserve went over the per-user limit');
                }
              }
              break;
            case 'confirm':
              status = STATUS_NAMES[actor.command(c.r, 0, now, log)];
              break;
            case 'cancel':
              status = STATUS_NAMES[actor.command(c.r, 1, now, log)];
              break;
            case 'return':
              status = STATUS_NAMES[actor.command(c.r, 3, now, log)];
              break;
            case 'expire':
              if (c.r <= actor.reservationCount) actor.expire(c.r, now, log);
              break;
            case 'restock':
              actor.restock(c.qty, now, log);
              break;
            case 'limit':
              actor.update({ perUserLimit: c.limit }, now, log);
              break;
            case 'close':
              actor.close(now, log);
              break;
            case 'wait':
              now += c.ms;
              break;
          }
          const emitted = log.events.slice(before);
          const rejected = [
            'sold_out',
            'limit_exceeded',
            'not_open',
            'closed',
            'idempotency_conflict',
            'unknown_reservation',
            'invalid_transition',
          ];
          // A late confirm may emit the `expired` that the timer had not yet applied.
          if (rejected.includes(status) && emitted.length > 0)
            throw new Error(`${status} emitted events`);
          for (const ev of emitted) {
            if (ev.seq !== ++seq) throw new Error(`seq ${ev.seq}, expected ${seq}`);
          }
          const bad = invariantViolations(actor);
          if (bad.length > 0) throw new Error(bad.join('; '));
        }
        const rebuilt = replay(log.events);
        if (JSON.stringify(rebuilt.snapshot()) !== JSON.stringify(actor.snapshot())) {
          throw new Error('replay gave a different state');
        }
        for (const u of users) {
          if (rebuilt.userUnits(u) !== actor.userUnits(u))
            throw new Error(`replay: units of ${u} differ`);
        }
      },
    ),
    { numRuns: 400, seed: 20261123 },
  );
  t.pass('400 random sequences held every invariant');
});
