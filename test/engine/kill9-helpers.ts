import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Engine } from '../../engine/index.js';

const child = fileURLToPath(new URL('../fixtures/crash-child.ts', import.meta.url));

export interface Acked {
  key: string;
  id: string;
  user: string;
  qty: number;
}

/**
 * Runs the child until it has printed `killAfter` lines past "ready", then SIGKILLs it.
 * `journalArgs`: extra child arguments, e.g. `['kafka', brokers, topic]`.
 */
export function runUntilKilled(
  dir: string,
  run: number,
  killAfter: number,
  acked: Map<string, Acked>,
  confirmed: Set<string>,
  journalArgs: string[] = [],
) {
  return new Promise<{ lines: number; soldOut: boolean }>((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', child, dir, String(run), ...journalArgs],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
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

/**
 * After the kills: every acknowledged reservation is present under its key and id, exactly
 * once; units are conserved and never oversold; every acknowledged confirm stayed confirmed.
 */
export async function verifyAfterCrashes(
  t: Test,
  engine: Engine,
  acked: Map<string, Acked>,
  confirmed: Set<string>,
) {
  const sku = await engine.getSku('drop');
  if (!sku) throw new Error('SKU lost');
  t.equal(
    sku.available + sku.reserved + sku.sold,
    sku.initialStock + sku.restocked,
    'units conserved',
  );
  t.ok(sku.available >= 0, 'never oversold');
  const all = [...acked.values()];
  const answers = await engine.reserveMany(
    all.map((a) => ({ sku: 'drop', userId: a.user, qty: a.qty, idempotencyKey: a.key })),
  );
  let missing = 0;
  let ackedUnits = 0;
  const ids = new Set<string>();
  answers.forEach((r, i) => {
    ackedUnits += all[i].qty;
    if (r.status !== 'reserved' || !r.duplicate || r.reservationId !== all[i].id) missing++;
    else ids.add(r.reservationId);
  });
  t.equal(missing, 0, 'every acknowledged reservation is present, under its original key and id');
  t.equal(ids.size, acked.size, 'each exactly once');
  t.ok(
    ackedUnits <= sku.reserved + sku.sold,
    'the units of acknowledged reservations are all held or sold',
  );
  for (const id of confirmed) {
    t.match(await engine.confirm(id), { status: 'confirmed' }, `confirmed ${id} stays confirmed`);
  }
}
