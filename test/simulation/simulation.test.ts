import t from 'tap';
import { runSimulation } from './simulation.js';

// CI runs a few hundred seeds; `npm run simulate -- --seeds N` runs more.
const SEEDS = 300;

t.test(`${SEEDS} seeded runs keep every invariant across crashes and failed writes`, async (t) => {
  let crashes = 0;
  let failedWrites = 0;
  let torn = 0;
  let acked = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const s = await runSimulation(seed); // throws naming the seed on any violation
    crashes += s.crashes;
    failedWrites += s.failedWrites;
    torn += s.tornTails;
    acked += s.acked;
  }
  // The runs must actually exercise what they claim to.
  t.ok(crashes > SEEDS, `crashes: ${crashes}`);
  t.ok(failedWrites > SEEDS / 2, `failed writes: ${failedWrites}`);
  t.ok(torn > SEEDS / 4, `torn tails: ${torn}`);
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
