import { MessageChannel } from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import {
  BatchWriter,
  Op,
  RESULT_STRIDE,
  Status,
  STATUS_NAMES,
  comlinkEndpoint,
  spawnWorker,
} from '../actors/index.js';
import type {
  BatchMessage,
  ClockSpec,
  OpCode,
  ShardControl,
  ShardOptions,
  ShardWorkerData,
  SkuEvent,
  WorkerToMain,
} from '../actors/index.js';
import { rejection, rejectionOf, reservationId, stateNameOrNull } from './results.js';

/** Collects the results of one call (one request, or a whole `reserveMany`) across shards. */
export class Waiter {
  readonly results: unknown[];
  remaining: number;
  constructor(
    size: number,
    private readonly done: (results: unknown[]) => void,
  ) {
    this.results = new Array<unknown>(size);
    this.remaining = size;
  }
  settle(index: number, result: unknown): void {
    this.results[index] = result;
    if (--this.remaining === 0) this.done(this.results);
  }
}

/** Per request kept on the main side until its result comes back, to build the result object. */
interface Pending {
  ops: OpCode[];
  skus: string[];
  nums: number[]; // qty for reserve, reservation number for commands
  waiters: Waiter[];
  slots: number[];
}

function newPending(): Pending {
  return { ops: [], skus: [], nums: [], waiters: [], slots: [] };
}


export interface ShardClientHooks {
  onEvents(events: SkuEvent[]): void;
  onDown(shard: number, error: Error): void;
}

/**
 * The engine's handle on one shard worker. Requests are appended to a binary batch and sent
 * once per event-loop turn (or as soon as the batch is full); results come back as one
 * Float64Array per batch and are matched to waiters by position.
 *
 *   reserve() ─▶ writer + pending ─(setImmediate or full)─▶ worker
 *   waiter.settle() ◀─ decode(results[i]) ◀──────────────── results message
 */
export class ShardClient {
  readonly control: Comlink.Remote<ShardControl>;
  private readonly worker: Worker;
  private writer = new BatchWriter();
  private pending = newPending();
  private readonly inFlight = new Map<number, Pending>();
  private nextBatchId = 1;
  private flushScheduled = false;
  /** Requests accepted and not yet answered (queued here or in the worker). */
  depth = 0;
  down = false;
  closing = false;
  batchesSent = 0;

  constructor(
    readonly index: number,
    options: ShardOptions,
    clock: ClockSpec,
    private readonly batchSizeMax: number,
    private readonly hooks: ShardClientHooks,
  ) {
    const { port1, port2 } = new MessageChannel();
    const workerData: ShardWorkerData = { shard: index, options, clock, control: port2 };
    this.worker = spawnWorker(import.meta.url, '../actors/shard-worker.js', {
      workerData,
      transferList: [port2],
      name: `stockade-shard-${index}`,
    });
    this.control = Comlink.wrap<ShardControl>(comlinkEndpoint(port1));
    this.worker.on('message', (msg: WorkerToMain) => this.onMessage(msg));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.closing) this.fail(new Error(`shard ${index} worker exited with code ${code}`));
    });
  }

  /** Queues a request; the caller has checked `depth` against the shard's bound. */
  enqueueReserve(sku: string, qty: number, userId: string, key: string, waiter: Waiter, slot: number): void {
    this.writer.reserve(sku, qty, userId, key);
    this.track(Op.reserve, sku, qty, waiter, slot);
  }

  enqueueCommand(op: OpCode, sku: string, n: number, waiter: Waiter, slot: number): void {
    if (op === Op.restock) this.writer.restock(sku, n);
    else if (op === Op.close) this.writer.close(sku);
    else this.writer.reservationCommand(op, sku, n);
    this.track(op, sku, n, waiter, slot);
  }

  private track(op: OpCode, sku: string, n: number, waiter: Waiter, slot: number): void {
    const p = this.pending;
    p.ops.push(op);
    p.skus.push(sku);
    p.nums.push(n);
    p.waiters.push(waiter);
    p.slots.push(slot);
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

  /** Sends what is queued as one batch. */
  flush(): void {
    if (this.writer.count === 0) return;
    const { buffer, bytes, count } = this.writer.take();
    const id = this.nextBatchId++;
    this.inFlight.set(id, this.pending);
    this.pending = newPending();
    if (this.down) {
      this.failBatch(id);
      return;
    }
    const msg: BatchMessage = { kind: 'batch', id, buffer, bytes, count };
    this.worker.postMessage(msg, [buffer]);
    this.batchesSent++;
  }

  private onMessage(msg: WorkerToMain): void {
    if (msg.kind === 'events') {
      this.hooks.onEvents(msg.events);
      return;
    }
    const p = this.inFlight.get(msg.id);
    if (!p) return;
    this.inFlight.delete(msg.id);
    const out = new Float64Array(msg.buffer);
    const n = p.ops.length;
    this.depth -= n;
    for (let i = 0, o = 0; i < n; i++, o += RESULT_STRIDE) {
      p.waiters[i].settle(p.slots[i], decode(p.ops[i], p.skus[i], p.nums[i], out[o], out[o + 1], out[o + 2]));
    }
  }

  private failBatch(id: number): void {
    const p = this.inFlight.get(id);
    if (!p) return;
    this.inFlight.delete(id);
    this.depth -= p.ops.length;
    const r = rejection('shard_unavailable');
    for (let i = 0; i < p.ops.length; i++) p.waiters[i].settle(p.slots[i], r);
  }

  /** The worker died: everything it had not answered is answered `shard_unavailable`. */
  private fail(error: Error): void {
    if (this.down) return;
    this.down = true;
    this.flush();
    for (const id of [...this.inFlight.keys()]) this.failBatch(id);
    this.hooks.onDown(this.index, error);
  }

  /** Waits until every batch sent so far has been answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0 && !this.down) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    await this.drain();
    this.closing = true;
    if (!this.down) {
      try {
        await this.control.shutdown();
      } catch {
        // The worker may already be gone; terminate below either way.
      }
    }
    this.control[Comlink.releaseProxy]();
    await this.worker.terminate();
  }

  /** For tests of crash handling: kills the worker as a crash would. */
  async crashForTest(): Promise<void> {
    await this.worker.terminate();
  }
}

function decode(op: OpCode, sku: string, num: number, word: number, value: number, expiresAt: number): unknown {
  const status = word & 0xff;
  const aux = word >>> 8;
  switch (status) {
    case Status.reserved:
      return {
        status: 'reserved',
        reservationId: reservationId(sku, value),
        sku,
        qty: num,
        expiresAt,
        duplicate: aux === 1,
      };
    case Status.confirmed:
    case Status.cancelled:
    case Status.returned:
      return {
        status: STATUS_NAMES[status],
        reservationId: reservationId(sku, num),
        state: stateNameOrNull(aux),
      };
    case Status.restocked:
      return { status: 'restocked', sku, available: value };
    case Status.sale_closed:
      return { status: 'sale_closed', sku };
    default:
      return rejectionOf(status, aux);
  }
}
