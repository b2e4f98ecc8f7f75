import { Module, createRequire } from 'node:module';
import type * as KafkaJS from 'kafkajs';
import { loadPackage } from '../../config/index.js';

/**
 * Loads kafkajs on first use, so that importing persistence/ (every shard worker does) does not
 * pay ~100 ms to load a Kafka client a file-journal engine never uses, and with one fix applied.
 *
 * The fix: kafkajs groups a send's messages by partition with `reduce` and an array spread per
 * message (src/producer/groupMessagesPerPartition.js), which is quadratic: a group commit of
 * 10,000 SKUs spent ~0.5 s there, more than everything else together. The linear version below
 * is the one proposed upstream in https://github.com/tulios/kafkajs/pull/1576 (never merged;
 * kafkajs 2.2.4 is the last release). It is put into the CommonJS module cache before kafkajs's
 * producer loads it, which works only if nothing loaded kafkajs earlier in the process;
 * `kafkajsPatched()` says whether it took.
 */
type Partitioner = (args: {
  topic: string;
  partitionMetadata: unknown[];
  message: unknown;
}) => number;

interface GroupArgs {
  topic: string;
  partitionMetadata: unknown[];
  messages: unknown[];
  partitioner: Partitioner;
}

function groupMessagesPerPartition(args: GroupArgs): Record<number, unknown[]> {
  const { topic, partitionMetadata, messages, partitioner } = args;
  const out: Record<number, unknown[]> = {};
  if (partitionMetadata.length === 0) return out;
  for (const message of messages) {
    const partition = partitioner({ topic, partitionMetadata, message });
    (out[partition] ??= []).push(message);
  }
  return out;
}

const require = createRequire(import.meta.url);
const GROUPING_MODULE = 'kafkajs/src/producer/groupMessagesPerPartition.js';
let patched = false;

function installGrouping(): void {
  let file: string;
  try {
    file = require.resolve(GROUPING_MODULE);
  } catch {
    return; // another kafkajs layout: leave it alone
  }
  if (require.cache[file]) return; // kafkajs's producer already holds the original
  const m = new Module(file);
  m.filename = file;
  m.loaded = true;
  m.exports = groupMessagesPerPartition;
  require.cache[file] = m;
  patched = true;
}

// At import time, before anything in this process can have loaded kafkajs's producer.
installGrouping();

let loaded: typeof KafkaJS | null = null;

export function loadKafkajs(): typeof KafkaJS {
  loaded ??= loadPackage<typeof KafkaJS>('kafkajs', 'The Kafka journal');
  return loaded;
}

/** Whether kafkajs runs with the linear message grouping (false if it was loaded before us). */
export function kafkajsPatched(): boolean {
  return patched;
}
