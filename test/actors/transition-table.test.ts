import t from 'tap';
import { TRANSITIONS, RESERVATION_STATES, RESERVATION_COMMANDS } from '../../actors/index.js';
import type { ReservationState, SkuActor, CollectingEventLog } from '../../actors/index.js';
import { makeActor, name } from './helpers.js';

// Drives reservation 1 of a fresh actor into `state`; the hold lasts 100 ms from time 0.
function inState(state: ReservationState): { actor: SkuActor; log: CollectingEventLog } {
  const { actor, log } = makeActor({ stock: 5, holdTtlMs: 100 });
  actor.reserveStrings('u1', 'k', 1, 0, log);
  if (state === 'confirmed' || state === 'returned') actor.command(1, 0, 1, log);
  if (state === 'returned') actor.command(1, 3, 2, log);
  if (state === 'cancelled') actor.command(1, 1, 1, log);
  if (state === 'expired') actor.expire(1, 100, log);
  log.take();
  return { actor, log };
}

const SUCCESS = { confirm: 'confirmed', cancel: 'cancelled', return: 'returned' } as const;
const CODE = { confirm: 0, cancel: 1, expire: 2, return: 3 } as const;

for (const state of RESERVATION_STATES) {
  for (const command of RESERVATION_COMMANDS) {
    const rule = TRANSITIONS[state][command];
    t.test(`${state} + ${command} → ${rule.kind}`, async (t) => {
      const { actor, log } = inState(state);
      t.equal(actor.reservationState(1), state);
      const before = actor.snapshot();
      if (command === 'expire') {
        const fired = actor.expire(1, 1000, log);
        t.equal(fired, rule.kind === 'move');
      } else {
        // Time 50: still within the hold, so a held reservation has not lapsed.
        const status = name(actor.command(1, CODE[command], 50, log));
        if (rule.kind === 'reject') t.equal(status, rule.status);
        else t.equal(status, SUCCESS[command]);
      }
      const events = log.take();
      if (rule.kind === 'move') {
        t.equal(actor.reservationState(1), rule.to);
        t.equal(events.length, 1, 'a move emits one event');
        t.equal(events[0].type, rule.to);
      } else {
        t.equal(actor.reservationState(1), state, 'state unchanged');
        t.same(events, [], 'no event');
        t.same(actor.snapshot(), before, 'counters unchanged');
      }
    });
  }
}
