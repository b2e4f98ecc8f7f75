/**
 * The shard worker's entry point: serves its shard (see shard-service.ts) on `parentPort`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serveShard } from './shard-service.js';
import type { ShardWorkerData } from './shard-messages.js';

serveShard(workerData as ShardWorkerData, parentPort!);
