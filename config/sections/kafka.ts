import { field } from '../field.js';

/**
 * The Kafka journal (`KafkaJournal`): the broker, the topic and the bounds that make an append
 * fail fast when the broker is gone. The topic has one partition per shard.
 */
export const kafkaFields = [
  field({
    key: 'kafka.brokers',
    kind: 'list',
    default: ['127.0.0.1:9092'],
    env: 'STOCKADE_KAFKA_BROKERS',
    doc: 'Bootstrap brokers, `host:port`; the rest of the cluster is discovered from them.',
  }),
  field({
    key: 'kafka.topic',
    kind: 'string',
    min: 1,
    max: 249,
    pattern: /^[A-Za-z0-9._-]+$/,
    patternDoc: '1–249 chars of `A-Z a-z 0-9 . _ -`',
    default: 'stockade.journal',
    env: 'STOCKADE_KAFKA_TOPIC',
    doc:
      'Journal topic, one partition per shard; created on first use with `engine.shards` ' +
      'partitions, no retention limit and no compaction.',
  }),
  field({
    key: 'kafka.clientId',
    kind: 'string',
    min: 1,
    max: 255,
    default: 'stockade',
    env: 'STOCKADE_KAFKA_CLIENT_ID',
    doc: 'Client id sent to the brokers (shows in their logs and quotas).',
  }),
  field({
    key: 'kafka.appendTimeoutMs',
    kind: 'int',
    min: 100,
    max: 600_000,
    default: 5_000,
    env: 'STOCKADE_KAFKA_APPEND_TIMEOUT_MS',
    doc:
      'Longest an append may wait for the brokers before it fails with `journal_unavailable` ' +
      '(the shard then rebuilds from the journal).',
  }),
  field({
    key: 'kafka.connectionTimeoutMs',
    kind: 'int',
    min: 10,
    max: 60_000,
    default: 1_000,
    env: 'STOCKADE_KAFKA_CONNECTION_TIMEOUT_MS',
    doc: 'Longest a TCP connection to a broker may take to open.',
  }),
  field({
    key: 'kafka.replicationFactor',
    kind: 'int',
    min: 0,
    max: 32,
    default: 0,
    env: 'STOCKADE_KAFKA_REPLICATION_FACTOR',
    doc:
      'Replicas of each partition when Stockade creates the topic; 0: min(3, brokers). A topic ' +
      'created with 3 or more replicas gets `min.insync.replicas` 2.',
  }),
  field({
    key: 'kafka.requireReplication',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_KAFKA_REQUIRE_REPLICATION',
    doc:
      'Refuse to start (`journal_unreplicated`) on a topic that can lose an acknowledged ' +
      'purchase (fewer than 2 replicas, `min.insync.replicas` below 2, or unclean leader ' +
      'election on) instead of warning.',
  }),
  field({
    key: 'kafka.fencing',
    kind: 'bool',
    default: true,
    env: 'STOCKADE_KAFKA_FENCING',
    doc:
      'Stamp every message with the offset it was decided for, so that no stale write counts ' +
      '(see Durability). Off only to measure what it costs (`npm run bench -- cluster`): ' +
      'without it two nodes, a paused one or a late send can sell a unit twice.',
  }),
  field({
    key: 'kafka.messageBytesMax',
    kind: 'int',
    min: 16_384,
    max: 104_857_600,
    default: 1_048_576,
    env: 'STOCKADE_KAFKA_MESSAGE_BYTES_MAX',
    doc:
      'Largest record batch one send may carry (the topic’s `max.message.bytes` when Stockade ' +
      'creates it); a larger group commit is written as several sends, in order.',
  }),
  field({
    key: 'kafka.fetchBytesMax',
    kind: 'int',
    min: 65_536,
    max: 104_857_600,
    default: 8_388_608,
    env: 'STOCKADE_KAFKA_FETCH_BYTES_MAX',
    doc: 'Bytes asked for in one fetch while replaying a partition (recovery, `stockade tail`).',
  }),
] as const;
