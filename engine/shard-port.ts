import type { OpCode } from '../actors/index.js';
import type { ShardControl } from './shard-messages.js';
import type { Waiter } from './pending-batch.js';

/** The control plane as the engine calls it: each call settles, even if the shard dies first. */
export type ShardControlCalls = {
  [K in keyof ShardControl]: (
    ...args: Parameters<ShardControl[K]>
  ) => Promise<Awaited<ReturnType<ShardControl[K]>>>;
};

/**
 * The engine's handle on one shard, whoever runs it: this process (`ShardClient`, a worker
 * thread or inline), another member of the cluster that owns the shard's partition
 * (`RemoteShard`), or nobody yet (`NoOwner`, while ownership moves). The engine routes every
 * request through it the same way, so routing, batching and the results do not depend on where
 * the shard lives.
 */
export interface ShardPort {
  readonly index: number;
  readonly kind: 'local' | 'remote' | 'none';
  /** True while the shard cannot take requests (crashed, restarting, moving, lease lost). */
  readonly down: boolean;
  /** Requests accepted and not yet answered. */
  readonly depth: number;
  /** Whether durable events are forwarded to the engine's subscribers (local shards only). */
  forwarding: boolean;
  readonly batchesSent: number;
  readonly restarts: number;
  /** Queues a reservation; 0, or -1 / -2 for a bad user id / key (then nothing was queued). */
  enqueueReserve(
    sku: string,
    qty: number,
    userId: unknown,
    key: unknown,
    waiter: Waiter,
    slot: number,
  ): number;
  enqueueCommand(
    op: OpCode,
    sku: string,
    n: number,
    waiter: Waiter,
    slot: number,
    owner?: string,
  ): void;
  /** Sends what is queued now, as one batch. */
  flush(): void;
  readonly control: ShardControlCalls;
  /** Waits until every batch sent so far has been answered. */
  drain(): Promise<void>;
  close(): Promise<void>;
}
