import { field } from '../field.js';

/**
 * The audit log (persistence/mongo-audit-log.ts): one MongoDB document per purchase decision,
 * transition, admin call and moderation verdict, written in batches off the purchase path.
 * Off by default, so `npm start` needs no MongoDB.
 */
export const auditFields = [
  field({
    key: 'audit.enabled',
    kind: 'bool',
    default: false,
    env: 'STOCKADE_AUDIT',
    doc: 'Write the audit log to MongoDB (`mongo.url`); `stockade serve --audit` sets it.',
  }),
  field({
    key: 'audit.bufferMax',
    kind: 'int',
    min: 1,
    max: 10_000_000,
    default: 100_000,
    env: 'STOCKADE_AUDIT_BUFFER_MAX',
    doc: 'Entries held in memory waiting for MongoDB, and by each gateway thread on their way to the main thread; past it new ones are dropped and counted (`stockade_audit_dropped_total`), never waited for.',
  }),
  field({
    key: 'audit.batchMax',
    kind: 'int',
    min: 1,
    max: 100_000,
    default: 1000,
    env: 'STOCKADE_AUDIT_BATCH_MAX',
    doc: 'Entries written by one `insertMany`; a full batch is written at once.',
  }),
  field({
    key: 'audit.flushMs',
    kind: 'int',
    min: 1,
    max: 600_000,
    default: 200,
    env: 'STOCKADE_AUDIT_FLUSH_MS',
    doc: 'Longest an entry waits in the buffer before a smaller batch is written.',
  }),
  field({
    key: 'audit.ttlDays',
    kind: 'int',
    min: 1,
    max: 36_500,
    default: 30,
    env: 'STOCKADE_AUDIT_TTL_DAYS',
    doc: 'Days an audit document is kept (a TTL index on its time field).',
  }),
  field({
    key: 'audit.collection',
    kind: 'string',
    min: 1,
    max: 120,
    pattern: /^[A-Za-z0-9_.-]+$/,
    patternDoc: '1–120 chars of `A-Z a-z 0-9 . _ -`',
    default: 'audit',
    env: 'STOCKADE_AUDIT_COLLECTION',
    doc: 'Collection of the audit log, in the database named by `mongo.url`.',
  }),
] as const;
