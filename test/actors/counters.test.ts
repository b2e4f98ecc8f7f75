// The counter moves shared by the actor and the MySQL fold: each move on its own, then the
// two users of it agreeing on random event sequences, checked after every command.
import t from 'tap';
import fc from 'fast-check';
import {
  CollectingEventLog,
  CounterMove,
  SkuActor,
  moveCounters,
  settingsOf,
} from '../../actors/index.js';
import type { CounterMoveCode, StockCounters } from '../../actors/index.js';
import { foldSku } from '../../persistence/stores/index.js';
import type { SkuRow } from '../../persistence/stores/index.js';

/** Counters in the order available, reserved, sold, returned, restocked. */
function counters(...[available, reserved, sold, returned, restocked]: number[]): StockCounters {
  return { available, reserved, sold, returned, restocked };
}
const start = (): StockCounters => counters(10, 4, 3, 1, 2);

t.test('each move', async (t) => {
  const cases: [string, CounterMoveCode, StockCounters][] = [
    ['reserve', CounterMove.reserve, counters(8, 6, 3, 1, 2)],
    ['confirm', CounterMove.confirm, counters(10, 2, 5, 1, 2)],
    ['release', CounterMove.release, counters(12, 2, 3, 1, 2)],
    ['return', CounterMove.return, counters(12, 4, 1, 3, 2)],
    ['restock', CounterMove.restock, counters(12, 4, 3, 1, 4)],
  ];
  for (const [name, move, want] of cases) {
    const c = start();
    moveCounters(c, move, 2);
    t.same(c, want, `${name} 2`);
  }
  t.equal(cases.length, Object.keys(CounterMove).length, 'every move is covered');
});

t.test('no move makes or loses units (available + reserved + sold - restocked)', async (t) => {
  for (const move of Object.values(CounterMove)) {
    const c = start();
    const stockBefore = c.available + c.reserved + c.sold - c.restocked;
    moveCounters(c, move, 3);
    t.equal(c.available + c.reserved + c.sold - c.restocked, stockBefore, `move ${move}`);
  }
});

// Weighted so that most reservations exist by the time a command names them: every move,
// returns included, shows up hundreds of times over the runs.
const reservation = fc.integer({ min: 1, max: 8 });
const units = fc.integer({ min: 1, max: 4 });
const waitMs = fc.integer({ min: 0, max: 80 });
const command = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('reserve' as const),
      user: fc.constantFrom('u1', 'u2', 'u3', 'u4'),
      key: fc.integer({ min: 0, max: 20 }),
      qty: units,
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constantFrom('confirm' as const, 'cancel' as const, 'return' as const),
      r: reservation,
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('expire' as const), r: reservation }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('restock' as const), qty: units }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wait' as const), ms: waitMs }) },
);
/** The actor's command codes (`CommandCode` in actors/lifecycle.ts, not on the folder's face). */
const CODE = { confirm: 0, cancel: 1, return: 3 } as const;
type Command = typeof command extends fc.Arbitrary<infer C> ? C : never;

function run(actor: SkuActor, c: Command, now: number, log: CollectingEventLog): number {
  switch (c.kind) {
    case 'reserve':
      actor.reserveStrings(c.user, `k${c.key}`, c.qty, now, log);
      break;
    case 'expire':
      if (c.r <= actor.reservationCount) actor.expire(c.r, now, log);
      break;
    case 'restock':
      actor.restock(c.qty, now, log);
      break;
    case 'wait':
      return now + c.ms;
    default:
      actor.command(c.r, CODE[c.kind], now, log);
  }
  return now;
}

/** What both must agree on: the five counters, `stock` and the version (seq). */
function figuresOf(c: StockCounters, stock: number, version: number): string {
  const { available, reserved, sold, returned, restocked } = c;
  return JSON.stringify({ available, reserved, sold, returned, restocked, stock, version });
}

t.test('the MySQL fold and the actor agree after every command', async (t) => {
  const seen = new Map<string, number>();
  const sequences = fc.array(command, { minLength: 20, maxLength: 100 });
  const limits = fc.integer({ min: 0, max: 4 });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 30 }), limits, sequences, (stock, limit, cmds) => {
      const log = new CollectingEventLog();
      const settings = settingsOf({ sku: 's', stock, perUserLimit: limit, holdTtlMs: 100 }, 100);
      const actor = SkuActor.define(settings, 0, 0, log);
      let row = foldSku(null, log.events, null) as SkuRow;
      let now = 0;
      for (const c of cmds) {
        now = run(actor, c, now, log);
        row = foldSku(row, log.events, null) as SkuRow;
        const snap = actor.snapshot();
        const want = figuresOf(snap, snap.initialStock + snap.restocked, snap.seq);
        const got = figuresOf(row, row.stock, row.version);
        if (got !== want) throw new Error(`fold ${got} != actor ${want}`);
      }
      for (const ev of log.events) seen.set(ev.type, (seen.get(ev.type) ?? 0) + 1);
    }),
    { numRuns: 500, seed: 20261124 },
  );
  // The check is only as good as the events it saw: every event that moves counters, often.
  for (const type of ['reserved', 'confirmed', 'cancelled', 'expired', 'returned', 'restocked']) {
    t.ok((seen.get(type) ?? 0) >= 50, `${type}: ${seen.get(type) ?? 0} events folded`);
  }
});
