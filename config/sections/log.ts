import { field } from '../field.js';

export const logFields = [
  field({
    key: 'log.level',
    kind: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'STOCKADE_LOG_LEVEL',
    doc: 'pino log level.',
  }),
] as const;
