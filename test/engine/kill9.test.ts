import t from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { testEngine, tempDir } from './helpers.js';
import { prng } from '../simulation/simulation.js';

const child = fileURLToPath(new URL('../fixtures/crash-child.ts', import.meta.url));

interface Acked {
  key: string;
  id: string;
  user: string;
  qty: number;
}

/** Runs the child until it has printed `killAfter` lines past "ready", then SIGKILLs it. */
function runUntilKilled(dir: string, run: number, killAfter: number, acked: Map<string, Acked>, confirmed: Set<string>) {
  return new Promise<{ lines: number; soldOut: boolean }>((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, dir, String(run)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let lines = 0;
    let soldOut = false;
    let killed = false;
    const rl = createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      const [kind, ...rest] = line.split(' ');
      if (kind === 'ack') {
        const [key, id, user, qty] = rest;
        acked.set(key, { key, id, user, qty: Number(qty) });
      } else if (kind === 'confirmed') confirmed.add(rest[0]);
      else if (kind === 'sold') soldOut = true;
      if (kind !== 'ready' && (++lines >= killAfter || soldOut) && !killed) {
        killed = true;
        proc.kill('SIGKILL');
      }
    });
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      if (signal === 'SIGKILL') resolve({ lines, soldOut });
      else reject(new Error(`child ended by itself: code ${code}, signal ${signal}`));
    });
  });
}

t.test('kill -9 at random moments loses no acknowledged reservation and oversells nothing', async (t) => {
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
    t.ok(r.lines >= 1, `run ${run}: killed after ${r.lines} lines${r.soldOut ? ' (sold out)' : ''}`);
  }
  t.ok(acked.size > 100, `${acked.size} acknowledged reservations to check`);

  const engine = await testEngine({ journal: { kind: 'file', dir, durability: 'fsync' } });
  t.teardown(() => engine.close());
  const sku = await engine.getSku('drop');
  if (!sku) throw new Error('SKU lost');
  t.equal(sku.available + sku.reserved + sku.sold, sku.initialStock + sku.restocked, 'units conserved');
  t.ok(sku.available >= 0, 'never oversold');
  let ackedUnits = 0;
  let missing = 0;
  const ids = new Set<string>();
  const retries = [...acked.values()].map((a) => ({ sku: 'drop', userId: a.user, qty: a.qty, idempotencyKey: a.key }));
  const answers = await engine.reserveMany(retries);
  answers.forEach((r, i) => {
    const a = [...acked.values()][i];
    ackedUnits += a.qty;
    if (r.status !== 'reserved' || !r.duplicate || r.reservationId !== a.id) missing++;
    else ids.add((r).reservationId);
  });
  t.equal(missing, 0, 'every acknowledged reservation is present, under its original key and id');
  t.equal(ids.size, acked.size, 'each exactly once');
  t.ok(ackedUnits <= sku.reserved + sku.sold, 'the units of acknowledged reservations are all held or sold');
  for (const id of confirmed) {
    t.match(await engine.confirm(id), { status: 'confirmed' }, `confirmed ${id} stays confirmed`);
  }
});
