import { BatchWriter, Op } from '../actors/index.js';
import type { OpCode } from '../actors/index.js';
import { PendingBatch } from './pending-batch.js';
import type { Waiter } from './pending-batch.js';

/**
 * The front every shard port shares, local (`ShardClient`) or forwarded (`RemoteShard`): requests
 * are encoded into one binary batch, and what each caller waits for is kept beside it in a
 * `PendingBatch`, until the batch is full (`engine.batchSizeMax`) or the turn of the event loop
 * ends; then the port's own `flush` sends it where the shard lives. Hot path: no allocation per
 * request beyond what the batch writer and the pending columns already hold.
 */
export abstract class BatchingPort {
  protected readonly writer = new BatchWriter();
  protected pending = new PendingBatch();
  /** Requests accepted and not yet answered (queued here or in flight). */
  depth = 0;
  private flushScheduled = false;

  constructor(protected readonly batchSizeMax: number) {}

  /**
   * Queues a request whose SKU id and qty the caller has checked, as it has `depth` against the
   * shard's bound. Returns 0, or -1 / -2 when the user id / idempotency key is invalid (then
   * nothing was queued).
   */
  enqueueReserve(
    sku: string,
    qty: number,
    userId: unknown,
    key: unknown,
    waiter: Waiter,
    slot: number,
  ): number {
    const bad = this.writer.reserve(sku, qty, userId, key);
    if (bad === 0) this.track(sku, qty, waiter, slot);
    return bad;
  }

  enqueueCommand(
    op: OpCode,
    sku: string,
    n: number,
    waiter: Waiter,
    slot: number,
    owner = '',
  ): void {
    if (op === Op.restock) this.writer.restock(sku, n);
    else if (op === Op.close) this.writer.close(sku);
    else this.writer.reservationCommand(op, sku, n, owner);
    this.track(sku, n, waiter, slot);
  }

  /** Sends what is queued as one batch. */
  abstract flush(): void;

  private track(sku: string, n: number, waiter: Waiter, slot: number): void {
    this.pending.add(sku, n, waiter, slot);
    this.depth++;
    if (this.writer.count >= this.batchSizeMax) this.flush();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSoon);
    }
  }

  private readonly flushSoon = (): void => {
    this.flushScheduled = false;
    this.flush();
  };
}
