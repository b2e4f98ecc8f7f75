/**
 * The journal: the `Journal` port the engine writes through, its file and Kafka
 * implementations, the read-only sources every consumer reads with, and the byte format (see
 * docs/journal-format.md).
 */
export { JournalError } from './journal.js';
export type { Journal, JournalPosition, JournalErrorCode } from './journal.js';
export { FileJournal, frameHeader, validFrameAt, FRAME_HEADER_BYTES } from './file-journal.js';
export type { FileJournalOptions, Durability } from './file-journal.js';
export { FrameCheck, prepareJournalDir, lockJournalDir } from './journal-dir.js';
export type { JournalDirLock } from './journal-dir.js';
export { crc32c } from './crc32c.js';
export { openJournal } from './open-journal.js';
export { KafkaJournal, replicationRisks } from './kafka-journal.js';
export type { KafkaJournalOptions, JournalPayload, TopicReplication } from './kafka-journal.js';
export { KafkaMembership, assignPartitions } from './kafka-membership.js';
export type { MemberInfo, Ownership, MembershipOptions } from './kafka-membership.js';
export { loadKafkajs, kafkajsPatched } from './kafkajs-loader.js';
export { splitBySku } from './split-by-sku.js';
export { fileJournalSource, kafkaJournalSource } from './journal-source.js';
export type { JournalSource, PayloadBatches } from './journal-source.js';
