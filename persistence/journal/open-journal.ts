import type { StockadeConfig } from '../../config/index.js';
import { FileJournal } from './file-journal.js';
import { KafkaJournal } from './kafka-journal.js';
import type { Journal } from './journal.js';

/** The journal the configuration asks for, or null for `journal.kind = none`. */
export function openJournal(config: StockadeConfig): Journal | null {
  switch (config.journal.kind) {
    case 'none':
      return null;
    case 'file':
      return new FileJournal({
        dir: config.journal.dir,
        durability: config.journal.durability,
        preallocBytes: config.journal.preallocBytes,
      });
    case 'kafka':
      // Each shard worker opens its own KafkaJournal and so its own producer for its partition.
      return new KafkaJournal(config.kafka, config.engine.shards);
  }
}
