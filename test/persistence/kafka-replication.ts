import t from 'tap';
import kafkajs from 'kafkajs';
import { createEngine, loadConfig } from '../../engine/index.js';
import { KafkaJournal } from '../../persistence/journal/index.js';
import type { KafkaSettings } from '../../config/index.js';
import { kafkaTestSettings } from './kafka-helpers.js';

/**
 * "Durable means replicated" against the real (single) broker, registered by
 * kafka-journal.test.ts: the topic Stockade creates, what it says about a topic that can lose an
 * acknowledged purchase, and the refusal with `kafka.requireReplication`.
 */
function configOn(s: KafkaSettings, requireReplication = false) {
  return loadConfig({
    env: {},
    overrides: {
      engine: { shards: 1, shardThreads: 'inline' },
      journal: { kind: 'kafka' },
      kafka: { brokers: [...s.brokers], topic: s.topic, requireReplication },
    },
  });
}

function admin(s: KafkaSettings) {
  const { Kafka, logLevel } = kafkajs;
  return new Kafka({
    brokers: [...s.brokers],
    clientId: 'stockade-test',
    logLevel: logLevel.NOTHING,
  }).admin();
}

export function kafkaReplicationTests(): void {
  t.test(
    'on one broker the new topic has min(3, brokers) replicas and a loud warning',
    async (t) => {
      const s = kafkaTestSettings('replication');
      const warnings: string[] = [];
      const engine = await createEngine({
        config: configOn(s),
        onWarning: (w) => warnings.push(w),
      });
      t.teardown(() => engine.close());
      t.equal(warnings.length, 1, 'one warning');
      t.match(warnings[0], /can lose an acknowledged purchase/);
      t.match(warnings[0], /replication factor 1 \(the cluster has 1 broker\)/);
      t.match(warnings[0], /min\.insync\.replicas 1/);
      t.same(engine.warnings, warnings, 'kept on the engine too');
      const j = new KafkaJournal(s, 1);
      t.teardown(() => j.close());
      t.match(await j.replication(), {
        brokers: 1,
        replicationFactor: 1,
        uncleanLeaderElection: false,
      });
      // The engine still sells: a development broker is allowed, only not silently.
      await engine.defineSku({ sku: 'r', stock: 1 });
      t.match(await engine.reserve({ sku: 'r', userId: 'u', qty: 1, idempotencyKey: 'k' }), {
        status: 'reserved',
      });
    },
  );

  t.test('with kafka.requireReplication the engine refuses such a topic', async (t) => {
    const s = kafkaTestSettings('replication-required');
    await t.rejects(createEngine({ config: configOn(s, true), onWarning: () => {} }), {
      code: 'journal_unreplicated',
      message: /replication factor 1/,
    });
  });

  t.test('unclean leader election on an existing topic is named', async (t) => {
    const s = kafkaTestSettings('replication-unclean');
    const a = admin(s);
    await a.connect();
    t.teardown(() => a.disconnect());
    await a.createTopics({ waitForLeaders: true, topics: [{ topic: s.topic, numPartitions: 1 }] });
    await a.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: kafkajs.ConfigResourceTypes.TOPIC,
          name: s.topic,
          configEntries: [
            { name: 'retention.ms', value: '-1' },
            { name: 'retention.bytes', value: '-1' },
            { name: 'unclean.leader.election.enable', value: 'true' },
          ],
        },
      ],
    });
    const warnings: string[] = [];
    const engine = await createEngine({ config: configOn(s), onWarning: (w) => warnings.push(w) });
    t.teardown(() => engine.close());
    t.match(warnings[0], /unclean\.leader\.election\.enable=true/);
  });
}
