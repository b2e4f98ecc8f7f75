/** Durable storage behind the engine: the journal interface and its implementations. */
export { JournalError } from './journal.js';
export type { Journal, JournalPosition, JournalErrorCode } from './journal.js';
export { FileJournal, prepareJournalDir, frameHeader, validFrameAt, FRAME_HEADER_BYTES } from './file-journal.js';
export type { FileJournalOptions, Durability } from './file-journal.js';
export { crc32c } from './crc32c.js';
export { openJournal } from './open-journal.js';
export { KafkaJournal } from './kafka-journal.js';
export type { KafkaJournalOptions, JournalPayload } from './kafka-journal.js';
export { tail, TAIL_USAGE } from './tail.js';
export type { TailOptions } from './tail.js';
