import type { StockadeConfig } from '../config/index.js';
import { FileJournal } from './file-journal.js';
import type { Journal } from './journal.js';

/** The journal the configuration asks for, or null for `journal.kind = none`. */
export function openJournal(config: StockadeConfig): Journal | null {
  switch (config.journal.kind) {
    case 'none':
      return null;
    case 'file':
      return new FileJournal({ dir: config.journal.dir, durability: config.journal.durability });
  }
}
