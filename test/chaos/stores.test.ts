// The reliability battery's store scenarios, small: MariaDB, Redis and FerretDB each stopped
// (SIGSTOP) and killed (kill -9, then restarted) under load. They run on a private set of the
// three services (scripts/services.sh with a directory and ports of their own), so the store
// tests in other files never see them go away. `npm run chaos` runs them long.
import t from 'tap';
import { privateStores, storeFault } from './store-scenarios.js';
import type { PrivateStores } from './store-scenarios.js';

const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
// A fresh MariaDB and six faults, one after the other: more than tap's 120 s a file.
t.setTimeout(300_000);
let stores: PrivateStores;

t.before(async () => {
  stores = await privateStores();
});
t.teardown(() => stores?.down());

for (const store of ['mariadb', 'redis', 'ferretdb'] as const) {
  for (const fault of ['pause', 'kill'] as const) {
    t.test(`${store} ${fault === 'pause' ? 'stopped' : 'killed'} for 3 s under load`, async (t) => {
      const r = await storeFault({
        ...{ seed, store, fault, faultMs: 3_000, lanes: 4, private: stores },
        mysqlUrl: stores.mysqlUrl,
        redisUrl: stores.redisUrl,
        mongoUrl: stores.mongoUrl,
      });
      t.comment(`seed ${seed}: ${JSON.stringify({ ...r, violations: undefined })}`);
      t.same(r.violations, [], 'purchases went on; projection, audit log and cache caught up');
      t.equal(r.lost, 0, 'no acknowledged purchase lost');
      t.ok(
        (r.extra.confirmedDuringFault as number) > 0,
        `${r.extra.confirmedDuringFault as number} purchases confirmed while ${store} was away`,
      );
      t.equal(r.extra.rowsInMysql, r.inJournal, 'MySQL holds every reservation of the journal');
    });
  }
}
