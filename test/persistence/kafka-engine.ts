import t from 'tap';
import { threadId } from 'node:worker_threads';
import { createEngine, loadConfig } from '../../engine/index.js';
import type { Engine, Reserved, ReserveResult } from '../../engine/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { runUntilKilled, verifyAfterCrashes } from '../engine/kill9-helpers.js';
import type { Acked } from '../engine/kill9-helpers.js';
import { tempDir } from '../engine/helpers.js';
import { prng } from '../simulation/simulation.js';
import { kafkaServices as services, kafkaTestSettings } from './kafka-helpers.js';
import { shutdownBoundMs } from '../../engine/shard-client.js';

/**
 * The whole engine on the Kafka journal (registered by kafka-journal.test.ts, which runs every
 * test that touches the shared broker one at a time): kill -9 of a Stockade process, and the
 * broker stopped and restarted in the middle of a sale.
 */
function engineOn(
  s: KafkaSettings,
  shardThreads: 'workers' | 'inline' = 'workers',
): Promise<Engine> {
  return createEngine({ config: configOn(s, shardThreads) });
}

function configOn(s: KafkaSettings, shardThreads: 'workers' | 'inline' = 'workers') {
  return loadConfig({
    env: {},
    overrides: {
      engine: { shards: 2, shardThreads },
      journal: { kind: 'kafka', restartDelayMs: 50 },
      kafka: { brokers: [...s.brokers], topic: s.topic, appendTimeoutMs: s.appendTimeoutMs },
    },
  });
}

export function kafkaEngineTests(): void {
  t.test(
    'shards inline on the Kafka journal: the next engine replays what was acknowledged',
    async (t) => {
      const s = kafkaTestSettings('inline');
      const first = await engineOn(s, 'inline');
      let firstClosed = false;
      t.teardown(() => (firstClosed ? undefined : first.close()));
      t.same(
        (await first.stats()).shards.map((sh) => sh.threadId),
        [threadId, threadId],
        'the shards run on this thread',
      );
      t.match(await first.defineSku({ sku: 'inl', stock: 200, perUserLimit: 2 }), {
        status: 'defined',
      });
      const requests = Array.from({ length: 300 }, (_, i) => ({
        sku: 'inl',
        userId: `u${i % 120}`,
        qty: 1,
        idempotencyKey: `k${i}`,
      }));
      const results = await first.reserveMany(requests);
      const reserved = results.filter((r) => r.status === 'reserved').length;
      t.equal(reserved, 200, 'the whole stock, within the per-user limit');
      t.equal(
        results.filter((r) => r.status === 'limit_exceeded' || r.status === 'sold_out').length,
        100,
      );
      await first.close();
      firstClosed = true;

      const second = await engineOn(s, 'inline');
      t.teardown(() => second.close());
      t.equal(
        second.recovery!.shards.reduce((a, sh) => a + sh.events, 0),
        201,
        'sku_defined + 200 reservations replayed',
      );
      t.match(await second.getSku('inl'), { available: 0, reserved: 200 });
      const again = await second.reserveMany(requests);
      t.ok(
        again.every((r, i) =>
          results[i].status === 'reserved'
            ? r.status === 'reserved' && r.duplicate && r.reservationId === results[i].reservationId
            : r.status !== 'reserved',
        ),
        'every acknowledged reservation answers its retry as a duplicate; nothing more is sold',
      );
    },
  );

  t.test(
    'kill -9 of Stockade on the Kafka journal loses no acknowledged reservation',
    async (t) => {
      const s = kafkaTestSettings('kill9');
      const seed = Number(process.env.KILL9_SEED ?? Date.now() % 100_000);
      t.comment(`seed ${seed}`);
      const rand = prng(seed);
      const acked = new Map<string, Acked>();
      const confirmed = new Set<string>();
      const args = ['kafka', s.brokers.join(','), s.topic];
      for (let run = 0; run < 4; run++) {
        const killAfter = run === 3 ? Infinity : 20 + Math.floor(rand() * 300);
        const r = await runUntilKilled(tempDir(), run, killAfter, acked, confirmed, args);
        t.ok(
          r.lines >= 1,
          `run ${run}: killed after ${r.lines} lines${r.soldOut ? ' (sold out)' : ''}`,
        );
      }
      t.ok(acked.size > 100, `${acked.size} acknowledged reservations to check`);
      const engine = await engineOn(s);
      t.teardown(() => engine.close());
      await verifyAfterCrashes(t, engine, acked, confirmed);
    },
  );

  t.test(
    'broker stopped mid-sale: 503 and no confirmation while down, no loss, service resumes',
    async (t) => {
      const s = kafkaTestSettings('engine-outage', { appendTimeoutMs: 2_500 });
      const engine = await engineOn(s);
      t.teardown(() => engine.close());
      t.match(await engine.defineSku({ sku: 'drop', stock: 1_000 }), { status: 'defined' });
      const buy = (prefix: string, n: number) =>
        engine.reserveMany(
          Array.from({ length: n }, (_, i) => ({
            sku: 'drop',
            userId: `u${i % 50}`,
            qty: 1,
            idempotencyKey: `${prefix}-${i}`,
          })),
        );
      const before = await buy('before', 100);
      t.ok(
        before.every((r) => r.status === 'reserved'),
        'sold while the broker is up',
      );

      // Two more engines, closed while the broker is down (a SIGTERM during the outage).
      const late = (i: number) => ({
        sku: 'late',
        userId: `u${i}`,
        qty: 1,
        idempotencyKey: `late-${i}`,
      });
      const closers = await Promise.all(
        (['workers', 'inline'] as const).map(async (mode) => {
          const s = kafkaTestSettings(`engine-close-${mode}`, { appendTimeoutMs: 2_500 });
          const engine = await engineOn(s, mode);
          t.teardown(() => engine.close());
          await engine.defineSku({ sku: 'late', stock: 100 });
          const acked = await engine.reserveMany(Array.from({ length: 20 }, (_, i) => late(i)));
          return { mode, s, engine, acked };
        }),
      );
      t.ok(
        closers.every((c) => c.acked.every((r) => r.status === 'reserved')),
        'the closing engines sold too',
      );

      await services('down');
      const started = performance.now();
      const during = await buy('during', 50);
      const waited = performance.now() - started;
      t.ok(
        during.every((r) => r.status === 'journal_unavailable'),
        'nothing confirmed while the broker is down',
      );
      t.ok(
        during.every((r) => 'retriable' in r && r.retriable),
        'retriable (HTTP 503)',
      );
      t.ok(waited < 10_000, `answered within ${Math.round(waited)} ms, not hung`);

      // A failed append sets the shard rebuilding from the partition, which cannot finish while
      // the broker is down, so its journal cannot be flushed: close() ends it at the bound.
      const bound = shutdownBoundMs(configOn(closers[0].s));
      const took = await Promise.all(
        closers.map(async (c) => {
          t.match(
            await c.engine.reserve(late(99)),
            { status: 'journal_unavailable' },
            `${c.mode}: failed append`,
          );
          const closeStarted = performance.now();
          await c.engine.close();
          return performance.now() - closeStarted;
        }),
      );
      for (const [i, ms] of took.entries()) {
        t.ok(
          ms >= bound - 500 && ms < bound + 5_000,
          `${closers[i].mode}: close() ended after ${Math.round(ms)} ms (bound ${bound} ms)`,
        );
      }

      await services('up');
      // The shard rebuilds from the partition once the broker answers; retries then succeed.
      let after: ReserveResult[] = [];
      for (let attempt = 0; attempt < 60; attempt++) {
        after = await buy('during', 50);
        if (after.every((r) => r.status === 'reserved')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      t.ok(
        after.every((r) => r.status === 'reserved'),
        'the same requests succeed once the broker is back',
      );
      const again = await engine.reserveMany(
        before.map((r, i) => ({
          sku: 'drop',
          userId: `u${i % 50}`,
          qty: 1,
          idempotencyKey: `before-${i}`,
        })),
      );
      t.ok(
        again.every(
          (r, i) =>
            r.status === 'reserved' &&
            r.duplicate &&
            r.reservationId === (before[i] as Reserved).reservationId,
        ),
        'every reservation acknowledged before the outage is still there',
      );
      t.match(
        await engine.getSku('drop'),
        { available: 850, reserved: 150 },
        'nothing lost, nothing oversold',
      );

      for (const c of closers) {
        const reopened = await engineOn(c.s, c.mode);
        t.teardown(() => reopened.close());
        const retried = await reopened.reserveMany(Array.from({ length: 20 }, (_, i) => late(i)));
        t.ok(
          retried.every(
            (r, i) =>
              r.status === 'reserved' &&
              r.duplicate &&
              r.reservationId === (c.acked[i] as Reserved).reservationId,
          ),
          `${c.mode}: every reservation acknowledged before the outage survived the bounded close`,
        );
        t.match(
          await reopened.getSku('late'),
          { available: 80, reserved: 20 },
          `${c.mode}: and nothing more was sold`,
        );
      }
    },
  );
}
