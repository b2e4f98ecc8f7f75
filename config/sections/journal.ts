import { field } from '../field.js';

/** Where decisions are made durable before a buyer hears "confirmed". */
export const journalFields = [
  field({
    key: 'journal.kind',
    kind: 'enum',
    values: ['file', 'kafka', 'none'],
    default: 'file',
    env: 'STOCKADE_JOURNAL',
    doc:
      'Journal backend: `file` (one append-only file per shard in `journal.dir`, the embedded ' +
      'default), `kafka` (a topic with one partition per shard, see `kafka.*`; production) or ' +
      '`none` (decisions live in memory only; for tests and benchmarks).',
  }),
  field({
    key: 'journal.dir',
    kind: 'string',
    min: 1,
    max: 4096,
    default: './data',
    env: 'STOCKADE_DATA_DIR',
    doc: 'Directory of the file journal (created if missing).',
  }),
  field({
    key: 'journal.durability',
    kind: 'enum',
    values: ['fsync', 'os'],
    default: 'fsync',
    env: 'STOCKADE_JOURNAL_DURABILITY',
    doc:
      '`fsync`: a group commit is on disk (fdatasync) before its replies are released. `os`: ' +
      'written to the OS page cache only — survives a process crash, not a power loss; for tests ' +
      'and benchmarks.',
  }),
  field({
    key: 'journal.preallocBytes',
    kind: 'int',
    min: 0,
    max: 1_073_741_824,
    default: 4_194_304,
    env: 'STOCKADE_JOURNAL_PREALLOC_BYTES',
    doc:
      'Zeros the file journal lays down after a frame whenever it reaches the end of the file ' +
      '(fsync durability only), so most group commits overwrite blocks instead of growing the ' +
      'file and their fsync skips a file-system metadata commit; 0 turns it off.',
  }),
  field({
    key: 'journal.restartDelayMs',
    kind: 'int',
    min: 0,
    max: 60_000,
    default: 200,
    env: 'STOCKADE_SHARD_RESTART_DELAY_MS',
    doc: 'Wait before a crashed shard worker is restarted and recovered from the journal.',
  }),
] as const;
