// The MySQL projector reading the Kafka journal (its partitions, one per shard). In a file of
// its own: kafka-journal.test.ts stops the broker at its end; this one only needs it up while
// it runs, on a topic of its own that it deletes.
import t from 'tap';
import { kafkaJournalSource } from '../../persistence/journal/index.js';
import { loadKafkajs } from '../../persistence/journal/kafkajs-loader.js';
import { tempDir } from '../engine/helpers.js';
import { kafkaTestSettings, requireKafka } from './kafka-helpers.js';
import { freshDatabase, requireMysql } from './mysql-helpers.js';
import { differences, projector, startSale, trade } from './projection-helpers.js';

const settings = kafkaTestSettings('projection');
const ok = (await requireMysql(t)) && (await requireKafka(t, settings));

if (ok) {
  t.teardown(async () => {
    const { Kafka, logLevel } = loadKafkajs();
    const admin = new Kafka({ brokers: [...settings.brokers], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    await admin.deleteTopics({ topics: [settings.topic] }).catch(() => {});
    await admin.disconnect();
  });

  t.test('the projection of a sale on the Kafka journal matches the engine', async (t) => {
    const kafka = { brokers: [...settings.brokers], topic: settings.topic };
    const s = await startSale(tempDir('stockade-proj-'), ['mug', 'tee', 'cap'], {
      journal: { kind: 'kafka' },
      kafka,
    });
    t.teardown(() => s.engine.close());
    await trade(s, 0);
    await trade(s, 1);
    const { pool } = await freshDatabase(t);
    const p = projector(pool, s.dir, { source: () => kafkaJournalSource(settings) });
    t.teardown(() => p.stop());
    await p.catchUp();
    t.same(await differences(pool, s), [], 'MySQL matches the engine');
    const st = p.stats();
    t.equal(st.shards.length, 2, 'both partitions followed');
    t.equal(st.lag, 0, 'no lag once caught up (positions are Kafka offsets)');

    await trade(s, 2);
    await p.catchUp();
    t.same(await differences(pool, s), [], 'and again after more trading, resuming at offsets');
    t.equal(p.stats().eventsSkipped, 0, 'nothing read twice');
  });
}
