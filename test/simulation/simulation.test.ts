import t from 'tap';
import { runSimulation } from './simulation.js';

// CI runs a few hundred seeds; `npm run simulate -- --seeds N` runs more.
const SEEDS = 300;

t.test(`${SEEDS} seeded runs keep every invariant across crashes and failed writes`, async (t) => {
  let crashes = 0;
  let failedWrites = 0;
  let torn = 0;
  let late = 0;
  let fenced = 0;
  let acked = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const s = await runSimulation(seed); // throws naming the seed on any violation
    crashes += s.crashes;
    failedWrites += s.failedWrites;
    torn += s.tornTails;
    late += s.lateLanded;
    fenced += s.fenced;
    acked += s.acked;
  }
  // The runs must actually exercise what they claim to.
  t.ok(crashes > SEEDS, `crashes: ${crashes}`);
  t.ok(failedWrites > SEEDS / 2, `failed writes: ${failedWrites}`);
  t.ok(torn > SEEDS / 4, `torn tails: ${torn}`);
  t.ok(late > SEEDS / 4, `sends that landed late, after newer records: ${late}`);
  t.ok(fenced > SEEDS / 4, `appends fenced by a late send: ${fenced}`);
  t.ok(acked > SEEDS * 20, `acknowledged answers checked: ${acked}`);
});

t.test('the simulation catches a journal that forgets acknowledged writes', async (t) => {
  // Sanity check of the checker itself: the same runs against a disk that silently drops an
  // acknowledged frame must fail, naming the seed.
  const { SimJournal } = await import('./sim-journal.js');
  // eslint-disable-next-line @typescript-eslint/unbound-method -- restored below, called with .call
  const original = SimJournal.prototype.read;
  let calls = 0;
  SimJournal.prototype.read = function (shard, from, visit) {
    return original.call(this, shard, from, (p, pos) => {
      if (++calls % 7 !== 0) visit(p, pos); // drop every seventh payload on replay
    });
  };
  t.teardown(() => {
    SimJournal.prototype.read = original;
  });
  let caught: Error | null = null;
  for (let seed = 1; seed <= 20 && !caught; seed++) {
    try {
      await runSimulation(seed);
    } catch (err) {
      caught = err as Error;
    }
  }
  t.ok(caught, 'a lossy journal is detected');
  t.match(caught?.message ?? '', /^seed \d+, step \d+: .*replay: npm run simulate -- --seed \d+/);
});

t.test(
  'the simulation catches a log whose readers take late sends for part of the history',
  async (t) => {
    // Sanity check: without the fencing rule (a record counts only where it was stamped), the
    // late sends of the log seeds must break an invariant, naming the seed.
    const { SimLog } = await import('./sim-journal.js');
    // eslint-disable-next-line @typescript-eslint/unbound-method -- restored below
    const original = SimLog.prototype.read;
    SimLog.prototype.read = function (this: InstanceType<typeof SimLog>, _shard, from, visit) {
      const records = (this as unknown as { records: { payload: Uint8Array }[] }).records;
      for (let i = from; i < records.length; i++) visit(records[i].payload.slice(), i + 1);
      (this as unknown as { known: number }).known = records.length;
      return Promise.resolve(records.length);
    };
    t.teardown(() => {
      SimLog.prototype.read = original;
    });
    let caught: Error | null = null;
    for (let seed = 2; seed <= 200 && !caught; seed += 2) {
      try {
        await runSimulation(seed);
      } catch (err) {
        caught = err as Error;
      }
    }
    t.ok(caught, 'an unfenced log is detected');
    t.match(caught?.message ?? '', /^seed \d+, step \d+: /);
  },
);
