import t from 'tap';
import { testEngine, tempDir } from './helpers.js';
import { runUntilKilled, verifyAfterCrashes } from './kill9-helpers.js';
import type { Acked } from './kill9-helpers.js';
import { prng } from '../simulation/simulation.js';

t.test(
  'kill -9 at random moments loses no acknowledged reservation and oversells nothing',
  async (t) => {
    const seed = Number(process.env.KILL9_SEED ?? Date.now() % 100_000);
    t.comment(`seed ${seed} (rerun with KILL9_SEED=${seed})`);
    const rand = prng(seed);
    const dir = tempDir('stockade-kill9-');
    const acked = new Map<string, Acked>();
    const confirmed = new Set<string>();
    const runs = 6;
    for (let run = 0; run < runs; run++) {
      // Early runs are killed after up to a few hundred lines; the last one runs until sold out.
      const killAfter = run === runs - 1 ? Infinity : 20 + Math.floor(rand() * 400);
      const r = await runUntilKilled(dir, run, killAfter, acked, confirmed);
      t.ok(
        r.lines >= 1,
        `run ${run}: killed after ${r.lines} lines${r.soldOut ? ' (sold out)' : ''}`,
      );
    }
    t.ok(acked.size > 100, `${acked.size} acknowledged reservations to check`);

    const engine = await testEngine({ journal: { kind: 'file', dir, durability: 'fsync' } });
    t.teardown(() => engine.close());
    await verifyAfterCrashes(t, engine, acked, confirmed);
  },
);
