/**
 * `npm run simulate -- --seeds N [--from S]` runs N seeds of the simulation starting at S;
 * `--seed S` replays one seed. Prints progress and, on failure, the seed to replay.
 */
import { parseArgs } from 'node:util';
import { runSimulation } from './simulation.js';

const { values } = parseArgs({
  options: {
    seeds: { type: 'string', default: '1000' },
    from: { type: 'string', default: '1' },
    seed: { type: 'string' },
    steps: { type: 'string', default: '300' },
  },
});
const from = Number(values.seed ?? values.from);
const count = values.seed ? 1 : Number(values.seeds);
const steps = Number(values.steps);
const started = performance.now();
let crashes = 0;
for (let seed = from; seed < from + count; seed++) {
  try {
    crashes += (await runSimulation(seed, steps)).crashes;
  } catch (err) {
    process.stderr.write(`\nFAILED: ${(err as Error).message}\n`);
    process.exit(1);
  }
  if ((seed - from + 1) % 100 === 0 || seed === from + count - 1) {
    const s = ((performance.now() - started) / 1000).toFixed(1);
    process.stdout.write(
      `${seed - from + 1}/${count} seeds ok, ${crashes} crashes recovered, ${s} s\n`,
    );
  }
}
