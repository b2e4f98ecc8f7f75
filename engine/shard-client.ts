import { MessageChannel } from 'node:worker_threads';
import type { Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import { RESULT_STRIDE, comlinkEndpoint, settledWithin, spawnWorker } from '../actors/index.js';
import type { ClockSpec, ShardOptions, SkuEvent } from '../actors/index.js';
import type { StockadeConfig } from '../config/index.js';
import type { RecoveryStats } from './shard-host.js';
import type {
  BatchMessage,
  ShardControl,
  ShardWorkerData,
  WorkerToMain,
} from './shard-messages.js';
import { InlineShard } from './inline-shard.js';
import { rejection } from './results.js';
import type { Rejection } from './results.js';
import { BatchingPort } from './batching-port.js';
import { PendingBatch } from './pending-batch.js';
import type { ShardControlCalls, ShardPort } from './shard-port.js';
import { EngineError, isErrorCode } from './errors.js';

/**
 * How long `close` gives a shard to flush its journal before ending it anyway: 10 s, or two
 * Kafka append timeouts if that is longer.
 */
export function shutdownBoundMs(config: StockadeConfig): number {
  return Math.max(10_000, 2 * config.kafka.appendTimeoutMs);
}

/**
 * The shard's control calls, each settled by the shard's answer or, if the shard dies (or is
 * ended) first, failed with `shard_unavailable` instead of waiting forever. Calls in flight are
 * kept in a set and failed one by one: racing each call against one long-lived "down" promise
 * would leave a reaction on that promise per call for the shard's whole life (~450 bytes each:
 * a dashboard's polling grew a server by hundreds of MB a minute).
 */
class SettlingCalls {
  readonly calls: ShardControlCalls;
  private readonly waiting = new Set<(err: Error) => void>();
  private failure: EngineError | null = null;

  constructor(
    remote: Comlink.Remote<ShardControl>,
    private readonly index: number,
  ) {
    const call = <T>(p: Promise<T>): Promise<T> => this.settling(p);
    this.calls = {
      ready: () => call(remote.ready()),
      define: (def) => call(remote.define(def)),
      update: (sku, update) => call(remote.update(sku, update)),
      get: (sku) => call(remote.get(sku)),
      getMany: (skus) => call(remote.getMany(skus)),
      stats: () => call(remote.stats()),
      tick: () => call(remote.tick()),
      setEventForwarding: (on) => call(remote.setEventForwarding(on)),
      drain: () => call(remote.drain()),
      shutdown: () => call(remote.shutdown()),
    };
  }

  private settling<T>(p: Promise<T>): Promise<T> {
    if (this.failure !== null) {
      p.catch(() => {}); // the shard is gone: its answer, if any, no longer matters
      return Promise.reject(this.failure);
    }
    return new Promise<T>((resolve, reject) => {
      this.waiting.add(reject);
      p.then(
        (value) => {
          this.waiting.delete(reject);
          resolve(value);
        },
        (err: Error) => {
          this.waiting.delete(reject);
          reject(err); // the shard's own error, passed on as it came
        },
      );
    });
  }

  /** The shard is gone: every call in flight, and every later one, fails. */
  fail(cause: Error): void {
    if (this.failure !== null) return;
    this.failure = new EngineError(
      'shard_unavailable',
      `shard ${this.index} stopped before it answered`,
      { cause },
    );
    for (const reject of this.waiting) reject(this.failure);
    this.waiting.clear();
  }
}

function noop(): void {}

/** A batch another member forwarded: its results go back to it as they are. */
class ForwardedBatch {
  constructor(
    readonly n: number,
    private readonly done: (r: Float64Array | Rejection) => void,
  ) {}

  settle(out: Float64Array): void {
    this.done(out.slice(0, this.n * RESULT_STRIDE));
  }

  fail(r: Rejection): void {
    this.done(r);
  }
}

/** Spare buffers kept per shard: enough for the batches that are usually in flight. */
const POOL_MAX = 16;

export interface ShardClientHooks {
  onEvents(events: SkuEvent[]): void;
  onDown(shard: number, error: Error, restarting: boolean): void;
  onUp(shard: number, recovery: RecoveryStats, restarts: number): void;
}

/**
 * The engine's handle on one shard (its worker thread, or inline: see inline-shard.ts).
 * Requests are appended to a binary batch and sent once per event-loop turn (or as soon as the
 * batch is full); results come back as one Float64Array per batch and are matched to waiters
 * by position. Request and result buffers travel to the worker and back and are reused, so
 * steady traffic allocates no buffers.
 *
 *   reserve() ─▶ writer + pending ─(setImmediate or full)─▶ worker
 *   waiter.settle() ◀─ decode(results[i]) ◀──────────────── results message
 */
/**
 * One run of a shard's worker (or inline shard), from its start to its death: a restart after a
 * crash is a new incarnation, with its own control channel and its own "it died" promise.
 */
interface Incarnation {
  readonly worker: Worker | InlineShard;
  readonly remote: Comlink.Remote<ShardControl>;
  /** Fails with `shard_unavailable` when the shard dies (or is ended) before it answers. */
  readonly control: ShardControlCalls;
  /** Rejects when this incarnation dies; `ready()` races its recovery against it. */
  readonly failed: Promise<never>;
  /** Fails every control call in flight and `failed`. */
  readonly failNow: (err: Error) => void;
  /** Set once its death has been handled (an 'error' and an 'exit' may both come). */
  dead: boolean;
}

export class ShardClient extends BatchingPort implements ShardPort {
  readonly kind = 'local' as const;
  /** Whether durable events are forwarded (subscribers exist); a restarted shard is told too. */
  forwarding = false;
  private current: Incarnation;
  private readonly inFlight = new Map<number, PendingBatch | ForwardedBatch>();
  private readonly sparePending: PendingBatch[] = [];
  private readonly spareRequests: ArrayBuffer[] = [];
  private readonly spareResults: ArrayBuffer[] = [];
  private nextBatchId = 1;
  /** The worker died and a new one has not recovered yet. */
  private dead = false;
  /**
   * In a cluster, whether this member may serve its partitions now (its lease: see
   * kafka-membership.ts); checked on every request, so a process that was paused answers
   * nothing from its state until it has rejoined.
   */
  private readonly lease: (() => boolean) | null;
  closing = false;
  batchesSent = 0;
  restarts = 0;
  recovery: RecoveryStats | null = null;

  constructor(
    readonly index: number,
    private readonly options: ShardOptions,
    private readonly clock: ClockSpec,
    private readonly config: StockadeConfig,
    private readonly hooks: ShardClientHooks,
    lease: (() => boolean) | null = null,
  ) {
    super(config.engine.batchSizeMax);
    this.lease = lease;
    this.current = this.start(null);
  }

  get down(): boolean {
    return this.dead || (this.lease !== null && !this.lease());
  }

  /** Its control calls, to the shard's current incarnation. */
  get control(): ShardControlCalls {
    return this.current.control;
  }

  /**
   * Starts a worker (it replays the shard's journal before it answers `ready()`), after
   * `previous`, the incarnation it replaces, if any.
   */
  private start(previous: Incarnation | null): Incarnation {
    const { port1, port2 } = new MessageChannel();
    const workerData: ShardWorkerData = {
      shard: this.index,
      options: this.options,
      clock: this.clock,
      control: port2,
      config: this.config,
    };
    // An inline replacement reads the journal only once the shard it replaces has let go of it.
    const before = previous?.worker instanceof InlineShard ? previous.worker.settled : undefined;
    const worker =
      this.config.engine.shardThreads === 'inline'
        ? new InlineShard(workerData, before)
        : spawnWorker(import.meta.url, './shard-worker.js', {
            workerData,
            transferList: [port2],
            name: `stockade-shard-${this.index}`,
          });
    const remote = Comlink.wrap<ShardControl>(comlinkEndpoint(port1));
    const settling = new SettlingCalls(remote, this.index);
    let rejectFailed: (err: Error) => void = noop;
    const failed = new Promise<never>((_, reject) => (rejectFailed = reject));
    failed.catch(noop); // observed through ready(); never an unhandled rejection
    const failNow = (err: Error) => {
      settling.fail(err);
      rejectFailed(err);
    };
    const me: Incarnation = {
      worker,
      remote,
      control: settling.calls,
      failed,
      failNow,
      dead: false,
    };
    worker.on('message', (msg: WorkerToMain) => this.onMessage(msg));
    worker.on('error', (err: Error) => this.fail(me, err));
    worker.on('exit', (code) => {
      const error = new Error(`shard ${this.index} worker exited with code ${code}`);
      // While closing, an exit is expected; it still ends any control call left waiting.
      if (this.closing) failNow(error);
      else this.fail(me, error);
    });
    return me;
  }

  /** Resolves when the worker has recovered its journal; rejects if it dies first. */
  async ready(): Promise<RecoveryStats> {
    try {
      const { remote, failed } = this.current;
      this.recovery = await Promise.race([remote.ready(), failed]);
    } catch (err) {
      // A recovery that failed for a reason in the catalogue (journal_corrupt, journal_mismatch,
      // journal_unavailable, ...) is reported as that code, whichever thread the shard ran on.
      const code = (err as { code?: unknown } | null)?.code;
      if (
        err instanceof EngineError ||
        !(err instanceof Error) ||
        typeof code !== 'string' ||
        !isErrorCode(code)
      )
        throw err;
      throw new EngineError(code, `shard ${this.index}: ${err.message}`, { cause: err });
    }
    return this.recovery;
  }

  flush(): void {
    if (this.writer.count === 0) return;
    const { buffer, bytes, count } = this.writer.take(
      this.spareRequests.pop() ?? new ArrayBuffer(64 * 1024),
    );
    const id = this.nextBatchId++;
    this.inFlight.set(id, this.pending);
    this.pending = this.sparePending.pop() ?? new PendingBatch();
    if (this.dead) {
      this.failBatch(id);
      return;
    }
    this.post(id, buffer, bytes, count);
  }

  private post(id: number, buffer: ArrayBuffer, bytes: number, count: number): void {
    const resultBytes = count * RESULT_STRIDE * 8;
    let results = this.spareResults.pop();
    if (!results || results.byteLength < resultBytes) {
      results = new ArrayBuffer(Math.max(resultBytes, this.batchSizeMax * RESULT_STRIDE * 8));
    }
    const msg: BatchMessage = { kind: 'batch', id, buffer, bytes, count, results };
    this.current.worker.postMessage(msg, [buffer, results]);
    this.batchesSent++;
  }

  /**
   * Applies a batch another member of the cluster encoded for this shard (it forwards the
   * requests of its own callers for a shard this member owns), after whatever is queued here.
   * Resolves with the shard's binary results, which go back as they are, or with the refusal
   * of the whole batch (the shard is down, or its queue cannot take `count` more).
   */
  submitForwarded(bytes: Uint8Array, count: number): Promise<Float64Array | Rejection> {
    if (this.down) return Promise.resolve(rejection('shard_unavailable'));
    if (this.depth + count > this.config.engine.shardQueueMax) {
      return Promise.resolve(rejection('overloaded'));
    }
    this.flush();
    return new Promise((resolve) => {
      const id = this.nextBatchId++;
      this.inFlight.set(id, new ForwardedBatch(count, resolve));
      this.depth += count;
      let buffer = this.spareRequests.pop();
      if (!buffer || buffer.byteLength < bytes.length) {
        buffer = new ArrayBuffer(Math.max(64 * 1024, bytes.length));
      }
      new Uint8Array(buffer).set(bytes);
      this.post(id, buffer, bytes.length, count);
    });
  }

  private onMessage(msg: WorkerToMain): void {
    if (msg.kind === 'events') {
      this.hooks.onEvents(msg.events);
      return;
    }
    const p = this.inFlight.get(msg.id);
    if (!p) return;
    this.inFlight.delete(msg.id);
    this.depth -= p.n;
    p.settle(new Float64Array(msg.results));
    this.recycle(p, msg.buffer, msg.results);
  }

  private recycle(
    p: PendingBatch | ForwardedBatch,
    request: ArrayBuffer,
    results: ArrayBuffer,
  ): void {
    if (p instanceof PendingBatch) {
      p.clear();
      if (this.sparePending.length < POOL_MAX) this.sparePending.push(p);
    }
    if (this.spareRequests.length < POOL_MAX) this.spareRequests.push(request);
    if (this.spareResults.length < POOL_MAX) this.spareResults.push(results);
  }

  private failBatch(id: number): void {
    const p = this.inFlight.get(id);
    if (!p) return;
    this.inFlight.delete(id);
    this.depth -= p.n;
    p.fail(rejection('shard_unavailable'));
  }

  /**
   * The worker died: everything it had not answered is answered `shard_unavailable` (its
   * outcome is unknown; a retry with the same idempotency key will tell). With a journal, a
   * new worker is started and recovers the shard while the other shards keep serving.
   */
  private fail(incarnation: Incarnation, error: Error): void {
    if (incarnation !== this.current || incarnation.dead) return;
    incarnation.dead = true;
    incarnation.failNow(error);
    const wasUp = !this.dead;
    this.dead = true;
    this.flush();
    for (const id of [...this.inFlight.keys()]) this.failBatch(id);
    if (!wasUp) return; // a restart attempt died: its ready() rejects and the loop retries
    const restarting = this.config.journal.kind !== 'none' && !this.closing;
    this.hooks.onDown(this.index, error, restarting);
    if (restarting) this.scheduleRestart(0);
  }

  private scheduleRestart(attempt: number): void {
    const delay = this.config.journal.restartDelayMs * 2 ** Math.min(attempt, 6);
    const timer = setTimeout(() => {
      if (this.closing) return;
      this.current.remote[Comlink.releaseProxy]();
      this.current = this.start(this.current);
      this.restarts++;
      this.ready()
        .then(async (recovery) => {
          // Subscribers see the restarted shard's events from its first new decision on.
          if (this.forwarding) await this.control.setEventForwarding(true);
          return recovery;
        })
        .then(
          (recovery) => {
            this.dead = false;
            this.hooks.onUp(this.index, recovery, this.restarts);
          },
          () => {
            // The new worker died during recovery: try again, waiting longer.
            if (!this.closing) this.scheduleRestart(attempt + 1);
          },
        );
    }, delay);
    timer.unref();
  }

  /** Waits until every batch sent so far has been answered. */
  async drain(): Promise<void> {
    this.flush();
    while (this.inFlight.size > 0 && !this.dead) {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Requests queued here or in the worker, for stats. */
  get batchesInFlight(): number {
    return this.inFlight.size;
  }

  /**
   * Stops the shard: its journal flushed and closed (bounded: a shard stuck rebuilding because
   * its journal stays unavailable is ended anyway once the bound passes), then the worker ended.
   */
  async close(): Promise<void> {
    await this.drain();
    this.closing = true;
    // The worker may already be gone, or stuck: it is terminated below either way.
    if (!this.dead) await settledWithin(this.control.shutdown(), shutdownBoundMs(this.config));
    this.current.remote[Comlink.releaseProxy]();
    await this.current.worker.terminate();
  }

  /** For tests of crash handling: kills the worker as a crash would. */
  async crashForTest(): Promise<void> {
    await this.current.worker.terminate();
  }
}
