import t from 'tap';
import { BatchWriter, ManualClock, Op, RESULT_STRIDE } from '../../actors/index.js';
import { ShardHost } from '../../engine/shard-host.js';
import { KafkaJournal } from '../../persistence/journal/index.js';
import { kafkaTestSettings } from './kafka-helpers.js';

/**
 * The engine's shard on the Kafka journal (registered by kafka-journal.test.ts): batches are
 * decided, group-committed as per-SKU messages and released; a new shard on a new journal
 * instance (a restarted node) replays the partition into exactly the same state.
 */
export function kafkaRecoveryTests(): void {
  t.test('a shard host on the Kafka journal recovers exactly what it acknowledged', async (t) => {
    const s = kafkaTestSettings('recovery');
    const clock = new ManualClock(1_000_000);
    const options = { qtyMax: 5, holdTtlMsDefault: 60_000, timerTickMs: 50 };
    const journal = new KafkaJournal(s, 2);
    t.teardown(() => journal.close());
    const host = new ShardHost(1, options, journal, clock);
    await host.recover();
    const skus = ['alpha', 'beta', 'gamma', 'delta'];
    for (const sku of skus) await host.define({ sku, stock: 400, perUserLimit: 3 });
    let acked = 0;
    const released: Promise<void>[] = [];
    for (let b = 0; b < 30; b++) {
      const writer = new BatchWriter();
      for (let i = 0; i < 40; i++) {
        const sku = skus[(b + i) % skus.length];
        if (i % 5 === 4) writer.reservationCommand(Op.confirm, sku, 1 + ((b * 7 + i) % 20));
        else writer.reserve(sku, 1 + (i % 2), `user-${(b * 40 + i) % 97}`, `key-${b}-${i}`);
      }
      const { buffer, bytes, count } = writer.take(new ArrayBuffer(4096));
      const out = new Float64Array(count * RESULT_STRIDE);
      released.push(
        new Promise((resolve) => {
          host.applyBatch(new Uint8Array(buffer, 0, bytes), count, out, () => {
            acked += count;
            resolve();
          });
        }),
      );
      clock.advance(3);
    }
    await Promise.all(released);
    t.equal(acked, 30 * 40, 'every batch released (its events durable)');
    t.ok(host.appends < 31, `${host.appends} group commits for 30 batches`);
    const before = skus.map((sku) => host.shard.actor(sku)!.snapshot());

    const restarted = new KafkaJournal(s, 2);
    t.teardown(() => restarted.close());
    const again = new ShardHost(1, options, restarted, clock);
    const stats = await again.recover();
    const replayed = `${stats.events} events replayed from ${stats.payloads} messages`;
    t.ok(stats.events > 30 * 40 * 0.5, replayed);
    const after = skus.map((sku) => again.shard.actor(sku)!.snapshot());
    t.same(after, before, 'the same state, SKU by SKU');
  });
}
