// `stockade serve --project` end to end: the server (run from source as a child process) on a
// file journal, with the MySQL projector in the same process writing to a database of the
// test's own; purchases over HTTP must show up in MySQL as the engine reports them, /metrics
// must expose the projection's lag until it is back to 0, and SIGTERM must stop it all cleanly.
import t from 'tap';
import type { Pool } from 'mysql2/promise';
import { eventually, tempDir } from '../engine/helpers.js';
import { request } from '../gateway/helpers.js';
import type { Json } from '../gateway/helpers.js';
import { exitWithin, killIfRunning, startCli } from './cli-process.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { tableDifferences } from './projection-helpers.js';

const ok = await requireMysql(t);

const START_MS = 20_000;
const CONVERGE_MS = 15_000;

/** Waits until `check` says nothing is missing (null); fails with what still is after `ms`. */
async function until(ms: number, check: () => Promise<string | null>): Promise<void> {
  let missing: string | null = null;
  await eventually(
    async () => (missing = await check()) === null,
    ms,
    () => missing ?? '',
  );
}

/** The first difference between MySQL and the engine's snapshot and statuses (null: none). */
async function behind(
  pool: Pool,
  sku: Json,
  statuses: Map<string, string>,
): Promise<string | null> {
  // The snapshot came over HTTP as JSON: the engine's SkuSnapshot, field for field.
  const diff = await tableDifferences(pool, new Map([[sku.sku as string, sku]]), statuses);
  return diff[0] ?? null;
}

/** The projection series of a /metrics text: lag per shard, lag in seconds, events applied. */
function projectionMetrics(text: string) {
  const lag = [...text.matchAll(/^stockade_projection_lag\{shard="(\d+)"\} (\d+)$/gm)];
  const seconds = /^stockade_projection_lag_seconds (\S+)$/m.exec(text);
  const events = /^stockade_projection_events_total (\d+)$/m.exec(text);
  return {
    lag: new Map(lag.map((m) => [Number(m[1]), Number(m[2])])),
    lagSeconds: seconds ? Number(seconds[1]) : null,
    events: events ? Number(events[1]) : null,
  };
}

if (ok) {
  const title = 'serve --project: HTTP purchases reach MySQL, lag returns to 0, SIGTERM exits 0';
  t.test(title, async (t) => {
    const { pool, url: mysqlUrl } = await freshDatabase(t);
    const dir = tempDir('stockade-serve-proj-');
    const args = ['serve', '--project', '--demo', '--auth', 'none', '--port', '0', '--shards', '2'];
    const p = startCli([...args, '--journal', 'file', '--data-dir', dir, '--log-level', 'warn'], {
      STOCKADE_MYSQL_URL: mysqlUrl,
    });
    t.teardown(() => killIfRunning(p));
    const [, url] = await p.waitFor(/serving on (http:\/\/[\d.]+:\d+)/, START_MS);
    await p.waitFor(/demo sale 'demo'/, START_MS);

    // 36 reservations of 1 or 2 units; a third confirmed, a third cancelled, a third held.
    const statuses = new Map<string, string>();
    const made = await Promise.all(
      Array.from({ length: 36 }, (_, i) =>
        request(`${url}/v1/skus/demo/reservations`, 'POST', {
          userId: `u${i}`, // the demo sale allows 2 units per buyer
          qty: 1 + (i % 2),
          idempotencyKey: `k${i}`,
        }),
      ),
    );
    t.same(
      made.map((r) => r.status),
      made.map(() => 201),
      'every reservation was made',
    );
    const ids = made.map((r) => String(r.body.reservationId));
    for (const id of ids) statuses.set(id, 'held');
    const answers = await Promise.all(
      ids.map(async (id, i) => {
        if (i % 3 === 2) return 200;
        const verb = i % 3 === 0 ? 'confirm' : 'cancel';
        const r = await request(`${url}/v1/reservations/${encodeURIComponent(id)}/${verb}`, 'POST');
        statuses.set(id, i % 3 === 0 ? 'confirmed' : 'cancelled');
        return r.status;
      }),
    );
    t.same(
      answers,
      ids.map(() => 200),
      'every confirm and cancel succeeded',
    );
    const sku = (await request(`${url}/v1/skus/demo`, 'GET')).body;
    t.match(sku, { sold: 18, reserved: 18, seq: 1 + 36 + 24 }, 'the engine counted every command');

    await until(CONVERGE_MS, () => behind(pool, sku, statuses));
    t.pass('MySQL shows every purchase as the engine does (SKU row and each reservation)');

    await until(CONVERGE_MS, async () => {
      const m = projectionMetrics((await request(`${url}/metrics`, 'GET')).body as string);
      if (m.lag.size !== 2) return `lag series for shards [${[...m.lag.keys()].join(',')}]`;
      const lagging = [...m.lag].filter(([, lag]) => lag !== 0);
      if (lagging.length > 0) return `lag ${JSON.stringify(lagging)}`;
      if (m.lagSeconds !== 0) return `stockade_projection_lag_seconds ${m.lagSeconds}`;
      if (m.events !== sku.seq) return `stockade_projection_events_total ${m.events}`;
      return null;
    });
    t.pass('/metrics: stockade_projection_lag is 0 on both shards, every event counted');

    p.child.kill('SIGTERM');
    t.same(await exitWithin(p, 15_000), { code: 0, signal: null }, 'exit 0 after SIGTERM');
    t.notMatch(p.out() + p.err(), /mysql projection: failed/, 'the projection never failed');
    t.equal(await behind(pool, sku, statuses), null, 'MySQL unchanged by the shutdown');
  });
}
