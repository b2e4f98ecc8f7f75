import { field } from '../field.js';

/** Where decisions are made durable before a buyer hears "confirmed". */
export const journalFields = [
  field({
    key: 'journal.kind',
    kind: 'enum',
    values: ['none'],
    default: 'none',
    env: 'STOCKADE_JOURNAL',
    doc: 'Journal backend. `none` keeps decisions in memory only (tests, benchmarks).',
  }),
] as const;
