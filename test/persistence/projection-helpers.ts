import type { Pool, RowDataPacket } from 'mysql2/promise';
import { ManualClock } from '../../engine/index.js';
import type { ConfigInput, Engine, SkuSnapshot } from '../../engine/index.js';
import { fileJournalSource } from '../../persistence/journal/index.js';
import { MysqlProjector } from '../../persistence/stores/index.js';
import type { MysqlProjectorOptions } from '../../persistence/stores/index.js';
import { testEngine } from '../engine/helpers.js';

/**
 * A sale driven through the engine on the file journal (two shards, a manual clock), with
 * every kind of event: definitions, reserves, confirms, cancels, expiries, returns, restocks,
 * an update and a close. `statuses` is what each reservation should end as, kept by the test
 * from the engine's answers (not from the journal), so the projection is checked against an
 * independent account.
 */
export interface Sale {
  engine: Engine;
  clock: ManualClock;
  dir: string;
  skus: string[];
  statuses: Map<string, string>;
}

export async function startSale(
  dir: string,
  skus: string[],
  overrides: ConfigInput = { journal: { kind: 'file', dir, durability: 'os' } },
): Promise<Sale> {
  const clock = new ManualClock(1_700_000_000_000);
  const engine = await testEngine({ ...overrides, engine: { shards: 2 } }, { clock });
  for (const [i, sku] of skus.entries()) {
    const r = await engine.defineSku({ sku, stock: 40 + i, holdTtlMs: 1000, perUserLimit: 3 });
    if (r.status !== 'defined') throw new Error(`define ${sku}: ${r.status}`);
  }
  return { engine, clock, dir, skus, statuses: new Map() };
}

/** One round of trading on every SKU; `round` varies the keys and users. */
export async function trade(sale: Sale, round: number): Promise<void> {
  const { engine, statuses } = sale;
  const reqs = sale.skus.flatMap((sku) =>
    Array.from({ length: 6 }, (_, k) => ({
      sku,
      userId: `u${(k + round) % 5}`,
      qty: 1 + (k % 2),
      idempotencyKey: `r${round}-k${k}`,
    })),
  );
  const results = await engine.reserveMany(reqs);
  const ids: string[] = [];
  for (const r of results) {
    if (r.status === 'reserved' && !r.duplicate) {
      ids.push(r.reservationId);
      statuses.set(r.reservationId, 'held');
    }
  }
  // Of every six: confirm two, cancel one, return one of the confirmed, leave two to expire.
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    const k = i % 6;
    if (k === 0 || k === 1) {
      if ((await engine.confirm(id)).status === 'confirmed') statuses.set(id, 'confirmed');
      if (k === 1 && (await engine.returnOrder(id)).status === 'returned') {
        statuses.set(id, 'returned');
      }
    } else if (k === 2) {
      if ((await engine.cancel(id)).status === 'cancelled') statuses.set(id, 'cancelled');
    }
  }
  sale.clock.advance(2_000);
  await engine.tick();
  for (const [id, s] of statuses) if (s === 'held') statuses.set(id, 'expired');
  const first = sale.skus[round % sale.skus.length];
  await engine.restock(first, 3);
  await engine.updateSku(first, { price: 100 + round, name: `${first} round ${round}` });
}

/** The counters a `skus` row must hold for an engine snapshot (the projector's whole job). */
export function expectedCounters(s: SkuSnapshot): Record<string, number> {
  return {
    stock: s.initialStock + s.restocked,
    available: s.available,
    reserved: s.reserved,
    sold: s.sold,
    version: s.seq,
  };
}

export async function snapshots(sale: Sale): Promise<Map<string, SkuSnapshot>> {
  const out = new Map<string, SkuSnapshot>();
  for (const sku of sale.skus) {
    const s = await sale.engine.getSku(sku);
    if (s) out.set(sku, s);
  }
  return out;
}

export interface TableState {
  skus: RowDataPacket[];
  reservations: RowDataPacket[];
}

export async function tableState(pool: Pool): Promise<TableState> {
  const [skus] = await pool.query<RowDataPacket[]>('SELECT * FROM skus ORDER BY id');
  const [reservations] = await pool.query<RowDataPacket[]>(
    'SELECT * FROM reservations ORDER BY id',
  );
  return { skus, reservations };
}

/** The projector over `dir` with small batches (several transactions per test). */
export function projector(
  pool: Pool,
  dir: string,
  options: Partial<MysqlProjectorOptions> = {},
): MysqlProjector {
  return new MysqlProjector({
    pool,
    source: () => fileJournalSource(dir, null, { durable: true }),
    batchEventsMax: 50,
    flushMs: 20,
    retryMsMax: 200,
    skuCacheMax: 1000,
    ...options,
  });
}

/** The differences between MySQL and the engine's account of a sale (empty when they agree). */
export async function differences(pool: Pool, sale: Sale): Promise<string[]> {
  return tableDifferences(pool, await snapshots(sale), sale.statuses);
}

/**
 * Every difference between the MySQL tables and the engine: each SKU's row against its
 * snapshot, no row for a SKU the engine does not have, each reservation's status, and the two
 * tables against each other (held units are `reserved`, confirmed ones `sold`).
 */
export async function tableDifferences(
  pool: Pool,
  skus: ReadonlyMap<string, SkuSnapshot>,
  statuses: ReadonlyMap<string, string>,
): Promise<string[]> {
  const out: string[] = [];
  const { skus: skuRows, reservations } = await tableState(pool);
  for (const r of skuRows) {
    const s = skus.get(String(r.id));
    if (!s) {
      out.push(`${String(r.id)}: a row for no SKU`);
      continue;
    }
    const want = {
      ...expectedCounters(s),
      returned: s.returned,
      restocked: s.restocked,
      closed: s.closed ? 1 : 0,
      name: s.name,
      price: s.price,
    };
    for (const [k, v] of Object.entries(want)) {
      const got = k === 'name' ? String(r[k]) : Number(r[k]);
      if (got !== v) out.push(`${s.sku}.${k}: MySQL ${String(got)}, engine ${String(v)}`);
    }
  }
  if (skuRows.length !== skus.size) out.push(`${skuRows.length} SKU rows for ${skus.size} SKUs`);
  const byId = new Map(reservations.map((r) => [String(r.id), String(r.status)]));
  for (const [id, status] of statuses) {
    if (byId.get(id) !== status) out.push(`${id}: MySQL ${byId.get(id)}, engine ${status}`);
  }
  if (byId.size !== statuses.size) {
    out.push(`${byId.size} reservation rows for ${statuses.size} reservations`);
  }
  const held = new Map<string, { held: number; confirmed: number }>();
  for (const r of reservations) {
    const h = held.get(String(r.sku)) ?? { held: 0, confirmed: 0 };
    if (r.status === 'held') h.held += Number(r.qty);
    if (r.status === 'confirmed') h.confirmed += Number(r.qty);
    held.set(String(r.sku), h);
  }
  for (const [sku, h] of held) {
    const s = skus.get(sku);
    if (s && (h.held !== s.reserved || h.confirmed !== s.sold)) {
      out.push(`${sku}: reservations hold ${h.held} and sold ${h.confirmed}`);
    }
  }
  return out;
}
