// A real SIGKILL of `stockade project` (the CLI, run from source as a child process) while it
// applies a large sale to MariaDB, several times, each restart resuming from the stored
// positions; after a final run to completion MySQL must match the journal exactly.
//
// How a kill is known to land mid-transaction: just before it, the test reads the committed
// sum of `projection_offsets.position` and then sees, in the server's process list, the
// child's connection executing one of the batch's writes (UPDATE/INSERT on skus, reservations
// or projection_offsets, all of which run only between BEGIN and COMMIT). If, once the child is
// dead and the server has closed its connections, the committed position is still that sum, no
// transaction committed after the write was seen: the transaction it belonged to was cut off
// by the kill and rolled back.
//
// The seed of the kill schedule is printed; KILL9_SEED=<n> replays it.
import t from 'tap';
import type { Test } from 'tap';
import { createConnection } from 'mysql2/promise';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { setTimeout as delay } from 'node:timers/promises';
import { ManualClock } from '../../engine/index.js';
import type { SkuSnapshot } from '../../engine/index.js';
import { fileJournalSource } from '../../persistence/journal/index.js';
import { tempDir, testEngine } from '../engine/helpers.js';
import { prng } from '../simulation/simulation.js';
import { exitWithin, killIfRunning, startCli } from './cli-process.js';
import type { CliProcess } from './cli-process.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { tableDifferences } from './projection-helpers.js';

const ok = await requireMysql(t);

const SKUS = 500;
const RESERVATIONS = 160_000;
const KILLS = 6;
/** Longest wait for one child to reach the moment it is killed at. */
const KILL_WAIT_MS = 12_000;

interface BigSale {
  dir: string;
  skus: Map<string, SkuSnapshot>;
  /** Reservation id → status, from the engine's answers. */
  statuses: Map<string, string>;
  events: number;
}

/**
 * 500 SKUs, 160,000 reservations of 1 or 2 units; of every four, two confirmed, one
 * cancelled, one left held (the clock never moves, so nothing expires): ~280,000 events.
 */
async function writeSale(dir: string): Promise<BigSale> {
  const clock = new ManualClock(1_700_000_000_000);
  const journal = { kind: 'file', dir, durability: 'os' } as const;
  const engine = await testEngine({ journal }, { clock });
  const statuses = new Map<string, string>();
  const skus = new Map<string, SkuSnapshot>();
  try {
    const names = Array.from({ length: SKUS }, (_, i) => `sku-${i}`);
    const defined = await Promise.all(
      names.map((sku, i) => engine.defineSku({ sku, stock: 1000 + i, perUserLimit: 0 })),
    );
    if (defined.some((r) => r.status !== 'defined')) throw new Error('a SKU was not defined');
    const chunk = 10_000;
    for (let from = 0; from < RESERVATIONS; from += chunk) {
      const results = await engine.reserveMany(
        Array.from({ length: chunk }, (_, k) => ({
          sku: names[(from + k) % SKUS],
          userId: `user-${(from + k) % 5000}`,
          qty: 1 + ((from + k) % 2),
          idempotencyKey: `order-${from + k}`,
        })),
      );
      const ids = results.flatMap((r) => (r.status === 'reserved' ? [r.reservationId] : []));
      for (const id of ids) statuses.set(id, 'held');
      await Promise.all(
        ids.map(async (id, i) => {
          if (i % 4 === 3) return;
          const r = i % 4 === 2 ? await engine.cancel(id) : await engine.confirm(id);
          if (r.status === 'confirmed' || r.status === 'cancelled') statuses.set(id, r.status);
        }),
      );
    }
    let events = 0;
    for (const sku of names) {
      const s = await engine.getSku(sku);
      if (!s) throw new Error(`${sku} lost`);
      skus.set(sku, s);
      events += s.seq;
    }
    return { dir, skus, statuses, events };
  } finally {
    await engine.close();
  }
}

function journalEnd(dir: string): number {
  const source = fileJournalSource(dir, null);
  return source.shards().reduce((sum, shard) => sum + source.endPosition(shard), 0);
}

const WRITE = /^\s*(UPDATE skus|INSERT INTO (skus|reservations|projection_offsets))/;

interface Probe {
  /** Sum of the committed positions. */
  position: number;
  /** A batch write in flight on a projector's connection. */
  writing: boolean;
  /** Connections of projectors (killed ones included) the server still has open. */
  connections: number;
}

/**
 * Watches the test's database from a connection of its own: the committed positions and the
 * server's process list, leaving out the test's own connections (`ours`, listed before any
 * projector started).
 */
class Watch {
  private constructor(
    private readonly conn: Connection,
    private readonly database: string,
    private readonly ours: Set<number>,
  ) {}

  static async open(t: Test, url: string, database: string): Promise<Watch> {
    const conn = await createConnection({ uri: url, multipleStatements: true });
    t.teardown(() => conn.end());
    const [rows] = await conn.query<RowDataPacket[]>(
      'SELECT ID FROM information_schema.PROCESSLIST WHERE DB = ?',
      [database],
    );
    return new Watch(conn, database, new Set(rows.map((r) => Number(r.ID))));
  }

  async probe(): Promise<Probe> {
    // Two statements, each its own autocommitted snapshot, the position read first.
    const [[[pos], list]] = await this.conn.query<RowDataPacket[][]>(
      'SELECT COALESCE(SUM(position), 0) AS p FROM projection_offsets; ' +
        'SELECT ID, LEFT(INFO, 60) AS info FROM information_schema.PROCESSLIST WHERE DB = ?',
      [this.database],
    );
    const theirs = list.filter((r) => !this.ours.has(Number(r.ID)));
    const writing = theirs.some((r) => r.info !== null && WRITE.test(String(r.info)));
    return { position: Number(pos.p), writing, connections: theirs.length };
  }

  /** The probe once the server has closed every projector connection (bounded wait). */
  async quiet(ms: number): Promise<Probe> {
    const deadline = Date.now() + ms;
    for (;;) {
      const p = await this.probe();
      if (p.connections === 0) return p;
      if (Date.now() > deadline) throw new Error(`projector connections still open after ${ms} ms`);
      await delay(10);
    }
  }
}

type Mode = 'delay' | 'write' | 'moved';

interface Kill {
  mode: Mode;
  /** When the kill was decided, in ms after the child said it was starting. */
  atMs: number;
  /** The committed position when the kill was decided. */
  before: number;
  /** The committed position once the server had closed the dead child's connections. */
  after: number;
  writeSeen: boolean;
  midTransaction: boolean;
  signal: string | null;
}

/**
 * Runs the projector until the moment `mode` picks, SIGKILLs it and waits for its death and
 * for the server to close its connections (so a COMMIT it sent just before dying has been
 * executed, and an open transaction rolled back). delay: a random moment; write: the first
 * batch write in flight after a random delay; moved: the first batch write in flight once this
 * run committed a batch (the position moved but is not at the end). So that work is left for
 * every run, one that has applied `budget` bytes of journal is killed at once (delay) or at
 * its next write (write).
 */
async function runAndKill(
  t: Test,
  watch: Watch,
  run: { url: string; dir: string; mode: Mode; budget: number; delayMs: number },
): Promise<Kill> {
  const { mode } = run;
  const p = startProjector(run.url, run.dir, []);
  t.teardown(() => killIfRunning(p));
  await p.waitFor(/stockade project: file journal/, KILL_WAIT_MS);
  const t0 = Date.now();
  const start = await watch.probe();
  let seen = start;
  for (;;) {
    const elapsed = Date.now() - t0;
    const due = elapsed >= run.delayMs || seen.position - start.position >= run.budget;
    if (mode === 'delay' && due) break;
    if (mode === 'write' && due && seen.writing) break;
    if (mode === 'moved' && seen.position > start.position && seen.writing) break;
    if (elapsed > KILL_WAIT_MS) throw new Error(`${mode}: no moment to kill in ${KILL_WAIT_MS} ms`);
    await delay(3);
    seen = await watch.probe();
  }
  p.child.kill('SIGKILL');
  const atMs = Date.now() - t0;
  const { signal } = await p.exit;
  const after = (await watch.quiet(KILL_WAIT_MS)).position;
  const midTransaction = seen.writing && after === seen.position;
  const writeSeen = seen.writing;
  return { mode, atMs, before: seen.position, after, writeSeen, midTransaction, signal };
}

function startProjector(url: string, dir: string, extra: string[]): CliProcess {
  const args = ['project', '--mysql-url', url, '--journal', 'file', '--data-dir', dir];
  return startCli([...args, '--progress-ms', '0', ...extra]);
}

if (ok) {
  t.test('SIGKILL mid-batch, restart, repeat: MySQL ends exactly as the journal', async (t) => {
    const seed = Number(process.env.KILL9_SEED ?? Math.floor(Math.random() * 2 ** 31));
    t.comment(`kill schedule seed ${seed} (replay: KILL9_SEED=${seed})`);
    const random = prng(seed);
    const t0 = Date.now();
    const dir = tempDir('stockade-kill9-proj-');
    const sale = await writeSale(dir);
    const end = journalEnd(sale.dir);
    t.comment(`journal: ${sale.events} events, ${end} bytes in ${Date.now() - t0} ms`);
    t.ok(sale.events > 100_000, `a sizeable sale (${sale.events} events)`);
    const db = await freshDatabase(t);
    const watch = await Watch.open(t, db.url, db.database);

    const kills: Kill[] = [];
    const modes: Mode[] = ['write', 'delay', 'moved'];
    for (let k = 0; k < KILLS; k++) {
      const kill = await runAndKill(t, watch, {
        url: db.url,
        dir: sale.dir,
        mode: modes[k % modes.length],
        budget: end / (3 * KILLS),
        delayMs: Math.floor(random() * 600),
      });
      kills.push(kill);
      t.comment(`kill ${k + 1}: ${JSON.stringify(kill)}`);
      t.equal(kill.signal, 'SIGKILL', `run ${k + 1} was running when killed`);
      t.ok(kill.after >= kill.before, 'the committed position never goes back');
    }
    const mid = kills.filter((k) => k.midTransaction).length;
    t.ok(mid >= 2, `kills proven to land mid-transaction: ${mid} of ${kills.length}`);
    const last = kills[kills.length - 1].after;
    t.ok(last > 0 && last < end, `progress across restarts, work left (${last} of ${end})`);

    const final = startProjector(db.url, sale.dir, ['--once']);
    t.teardown(() => killIfRunning(final));
    const exit = await exitWithin(final, 40_000);
    if (exit.code !== 0) t.comment(`final run: ${final.out()}${final.err()}`);
    t.same(exit, { code: 0, signal: null }, 'the final run completes');
    t.match(final.out(), /applied \d+ events/, 'and reports its totals');
    t.same(
      (await tableDifferences(db.pool, sale.skus, sale.statuses)).slice(0, 20),
      [],
      'MySQL matches the journal: nothing lost, nothing twice',
    );
    const [[pos]] = await db.pool.query<RowDataPacket[]>(
      'SELECT SUM(position) AS p FROM projection_offsets',
    );
    t.equal(Number(pos.p), end, 'every shard applied to its end');
    t.comment(`whole test: ${Date.now() - t0} ms`);
  });
}
