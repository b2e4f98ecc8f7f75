import { EventEmitter } from 'node:events';
import {
  Op,
  STATUS_NAMES,
  USER_ID_BYTES_MAX,
  checkSkuDefinition,
  isValidQty,
  isValidSkuId,
  isValidToken,
} from '../actors/index.js';
import type {
  ClockSpec,
  ManualClock,
  OpCode,
  SkuDefinition,
  SkuEvent,
  SkuSnapshot,
  SkuUpdate,
} from '../actors/index.js';
import type { ShardStats } from './shard-messages.js';
import type { RecoveryStats } from './shard-host.js';
import {
  JournalError,
  KafkaJournal,
  lockJournalDir,
  prepareJournalDir,
  replicationRisks,
} from '../persistence/journal/index.js';
import type { JournalDirLock } from '../persistence/journal/index.js';
import { loadConfig, withOverrides } from '../config/index.js';
import type { ConfigInput, StockadeConfig } from '../config/index.js';
import { EngineError } from './errors.js';
import { EventSubscription } from './event-subscription.js';
import { invalid, parseReservationId, rejection } from './results.js';
import type {
  CloseResult,
  ConfirmResult,
  DefineResult,
  Rejection,
  ReserveRequest,
  ReserveResult,
  RestockResult,
} from './results.js';
import { shardOf } from './router.js';
import { ShardClient } from './shard-client.js';
import type { ShardClientHooks } from './shard-client.js';
import { Waiter } from './pending-batch.js';
import type { ShardPort } from './shard-port.js';
import { Cluster, NoOwner } from './cluster.js';
import { RemoteShard } from './remote-shard.js';
import type { ClusterFigures, ClusterView } from './cluster.js';

export interface EngineOptions {
  /** A configuration from `loadConfig()`; without it, one is loaded (defaults, file, env). */
  config?: StockadeConfig;
  /** Overrides applied on top of `config`. */
  overrides?: ConfigInput;
  /** A manual clock for tests; the system clock by default. */
  clock?: ManualClock;
  /**
   * Told what the engine found unsafe and ran with anyway (e.g. a Kafka topic that can lose an
   * acknowledged purchase); by default, a process warning (printed to stderr).
   */
  onWarning?: (warning: string) => void;
}

export interface EngineStats {
  shards: (ShardStats & {
    up: boolean;
    queueDepth: number;
    batchesSent: number;
    restarts: number;
    /**
     * Who runs the shard: this engine, another member of the cluster (`ownerNodeId`), or
     * nobody while it moves between members. Always `local` outside a cluster.
     */
    owner: 'local' | 'remote' | 'none';
    ownerNodeId?: string;
  })[];
  subscribers: number;
}

export interface ReservationCommandOptions {
  /** The acting user: the command applies only if the reservation is theirs. */
  userId?: string;
}

export interface GetSkusOptions {
  /** A SKU whose shard is down is null in the answer instead of failing the whole call. */
  skipUnavailable?: boolean;
}

export interface ShardDownInfo {
  shard: number;
  error: Error;
  /** True when a new worker is being started to recover the shard from its journal. */
  restarting: boolean;
}

export interface ShardUpInfo {
  shard: number;
  recovery: RecoveryStats;
  restarts: number;
}

/**
 * The embeddable engine: SKU actors sharded across worker threads, behind an async API that
 * returns typed results. Business outcomes (`sold_out`, `limit_exceeded`, ...) are results;
 * only faults throw (`EngineError`). Emits `shard_down` (`ShardDownInfo`) when a shard worker
 * dies and `shard_up` (`ShardUpInfo`) when a restarted one has recovered from the journal.
 */
export class Engine extends EventEmitter {
  readonly config: StockadeConfig;
  private readonly shards: ShardPort[];
  /** The cluster this engine is a member of (`cluster.enabled`, Kafka journal), or null. */
  private readonly cluster: Cluster | null;
  private readonly subscriptions = new Set<EventSubscription>();
  private readonly skuShards = new Map<string, number>();
  private closed = false;
  private closing: Promise<void> | null = null;
  /** The file journal's directory lock, held until the shards are closed. */
  private readonly dirLock: JournalDirLock | null;

  /** Use `createEngine()`. */
  constructor(config: StockadeConfig, clock: ClockSpec, dirLock: JournalDirLock | null = null) {
    super();
    this.config = config;
    this.dirLock = dirLock;
    const e = config.engine;
    const shardOptions = {
      qtyMax: e.qtyMax,
      holdTtlMsDefault: e.holdTtlMsDefault,
      timerTickMs: e.timerTickMs,
    };
    const hooks: ShardClientHooks = {
      onEvents: (events) => this.publish(events),
      onDown: (shard, error, restarting) =>
        this.emit('shard_down', { shard, error, restarting } satisfies ShardDownInfo),
      onUp: (shard, recovery, restarts) =>
        this.emit('shard_up', { shard, recovery, restarts } satisfies ShardUpInfo),
    };
    if (!config.cluster.enabled) {
      this.cluster = null;
      this.shards = Array.from(
        { length: e.shards },
        (_, i) => new ShardClient(i, shardOptions, clock, config, hooks),
      );
      return;
    }
    // In a cluster, shards start where this member owns them, once it knows (ready()).
    this.shards = Array.from({ length: e.shards }, (_, i) => new NoOwner(i));
    const shards = this.shards;
    this.cluster = new Cluster(config, {
      shardCount: e.shards,
      port: (i) => shards[i],
      install: (i, port) => {
        // A local shard is told what subscribers want as it starts serving, whatever they
        // wanted when its replay began (a subscribe during the replay found it not installed).
        const on = this.subscriptions.size > 0;
        port.forwarding = on;
        shards[i] = port;
        if (port.kind === 'local') void port.control.setEventForwarding(on).catch(() => {});
      },
      startLocal: (i) =>
        new ShardClient(i, shardOptions, clock, config, hooks, this.cluster!.lease),
    });
    this.cluster.onError = (err) => this.emit('cluster_error', err);
  }

  /** The cluster as this member sees it (null outside a cluster). */
  clusterView(): ClusterView | null {
    return this.cluster?.view() ?? null;
  }

  /** Ownership, forwarding and rebalance counters (null outside a cluster). */
  clusterFigures(): ClusterFigures | null {
    return this.cluster?.figures() ?? null;
  }

  /**
   * What the engine found unsafe when it started and ran anyway (e.g. a Kafka topic that can
   * lose an acknowledged purchase); each was also given to `onWarning`.
   */
  readonly warnings: string[] = [];

  /** How the last start went: per shard, events replayed and how long it took. */
  recovery: { shards: RecoveryStats[]; readyMs: number } | null = null;

  /** Resolves once every shard has replayed its journal and takes commands. */
  async ready(): Promise<void> {
    const started = performance.now();
    if (this.cluster !== null) await this.cluster.start();
    const local = this.shards.filter((s): s is ShardClient => s instanceof ShardClient);
    const shards = await Promise.all(local.map((s) => s.ready()));
    this.recovery = { shards, readyMs: performance.now() - started };
  }

  get shardCount(): number {
    return this.shards.length;
  }

  /** The shard that owns a SKU. */
  shardOf(sku: string): number {
    return shardOf(sku, this.shards.length);
  }

  private assertOpen(): void {
    if (this.closed) throw new EngineError('engine_closed');
  }

  private clientFor(sku: string): ShardPort {
    return this.shards[shardOf(sku, this.shards.length)];
  }

  /** Defines a new SKU (its sale). Rejections: `invalid` (with field), `sku_exists`. */
  async defineSku(def: SkuDefinition): Promise<DefineResult> {
    this.assertOpen();
    const bad = checkSkuDefinition(def);
    if (bad) return invalid(bad);
    const client = this.clientFor(def.sku);
    if (client.down) return rejection('shard_unavailable');
    client.flush();
    const r = await nullIfDown(client.control.define(def));
    return r === null ? rejection('shard_unavailable') : toDefineResult(r);
  }

  /** Changes a SKU's limits, hold time, window, price or name. Stock changes use `restock`. */
  async updateSku(sku: string, update: SkuUpdate): Promise<DefineResult> {
    this.assertOpen();
    if (!isValidSkuId(sku)) return invalid('sku');
    const client = this.clientFor(sku);
    if (client.down) return rejection('shard_unavailable');
    client.flush();
    const r = await nullIfDown(client.control.update(sku, update));
    return r === null ? rejection('shard_unavailable') : toDefineResult(r);
  }

  /** The live state of a SKU, or null if it is not defined. */
  async getSku(sku: string): Promise<SkuSnapshot | null> {
    this.assertOpen();
    if (!isValidSkuId(sku)) return null;
    const client = this.clientFor(sku);
    if (client.down) throw new EngineError('shard_unavailable');
    await client.drain();
    return client.control.get(sku);
  }

  /**
   * The live state of several SKUs (null for one that is not defined), in the order asked: one
   * call per shard, however many SKUs. Fails with `shard_unavailable` if a shard they live on
   * is down; with `skipUnavailable`, such SKUs are null instead (a feed or a dashboard showing
   * what it can, rather than nothing while one shard restarts).
   */
  async getSkus(
    skus: readonly string[],
    options: GetSkusOptions = {},
  ): Promise<(SkuSnapshot | null)[]> {
    this.assertOpen();
    const out = new Array<SkuSnapshot | null>(skus.length).fill(null);
    const perShard = new Map<number, { skus: string[]; at: number[] }>();
    for (let i = 0; i < skus.length; i++) {
      if (!isValidSkuId(skus[i])) continue;
      const shard = shardOf(skus[i], this.shards.length);
      let group = perShard.get(shard);
      if (group === undefined) perShard.set(shard, (group = { skus: [], at: [] }));
      group.skus.push(skus[i]);
      group.at.push(i);
    }
    await Promise.all(
      [...perShard].map(async ([shard, group]) => {
        const client = this.shards[shard];
        if (client.down && options.skipUnavailable === true) return;
        if (client.down) throw new EngineError('shard_unavailable');
        await client.drain();
        const snaps = await nullIfDown(client.control.getMany(group.skus));
        if (snaps === null && options.skipUnavailable === true) return;
        if (snaps === null) throw new EngineError('shard_unavailable');
        for (let k = 0; k < snaps.length; k++) out[group.at[k]] = snaps[k];
      }),
    );
    return out;
  }

  /** Reserves units for a user. Holds them until confirmed, cancelled or expired. */
  reserve(request: ReserveRequest): Promise<ReserveResult> {
    this.assertOpen();
    return new Promise((resolve) => {
      const waiter = new Waiter(1, (r) => resolve(r[0] as ReserveResult));
      this.route(request, waiter, 0);
    });
  }

  /**
   * Reserves for many requests at once (the batch form for embedders): results come back in
   * request order. Far cheaper per request than calling `reserve` in a loop.
   */
  reserveMany(requests: readonly ReserveRequest[]): Promise<ReserveResult[]> {
    this.assertOpen();
    if (requests.length === 0) return Promise.resolve([]);
    return new Promise((resolve) => {
      const waiter = new Waiter(requests.length, (r) => resolve(r as ReserveResult[]));
      for (let i = 0; i < requests.length; i++) this.route(requests[i], waiter, i);
      for (const s of this.shards) s.flush();
    });
  }

  private route(req: ReserveRequest, waiter: Waiter, slot: number): void {
    if (typeof req !== 'object' || req === null) return waiter.settle(slot, invalid('sku'));
    const sku = req.sku;
    // Valid SKU ids are cached with their shard: the hot path skips the regex and the hash.
    let shard = this.skuShards.get(sku);
    if (shard === undefined) {
      if (!isValidSkuId(sku)) return waiter.settle(slot, invalid('sku'));
      shard = shardOf(sku, this.shards.length);
      if (this.skuShards.size >= SKU_CACHE_MAX) this.skuShards.clear();
      this.skuShards.set(sku, shard);
    }
    const qty = req.qty;
    if (!isValidQty(qty, this.config.engine.qtyMax)) return waiter.settle(slot, invalid('qty'));
    const client = this.shards[shard];
    if (client.down) return waiter.settle(slot, rejection('shard_unavailable'));
    if (client.depth >= this.config.engine.shardQueueMax)
      return waiter.settle(slot, rejection('overloaded'));
    // The client validates the user id and key while it encodes them.
    const bad = client.enqueueReserve(sku, qty, req.userId, req.idempotencyKey, waiter, slot);
    if (bad !== 0) waiter.settle(slot, invalid(bad === -1 ? 'userId' : 'idempotencyKey'));
  }

  /**
   * Confirms a held reservation: its units become sold. With `userId`, only that user's
   * reservation is acted on (another user's answers `unknown_reservation`); without it, any.
   */
  confirm(reservationId: string, options?: ReservationCommandOptions): Promise<ConfirmResult> {
    return this.reservationCommand(Op.confirm, reservationId, options);
  }

  /** Cancels a held reservation: its units go back on sale. `userId` as for `confirm`. */
  cancel(reservationId: string, options?: ReservationCommandOptions): Promise<ConfirmResult> {
    return this.reservationCommand(Op.cancel, reservationId, options);
  }

  /**
   * Returns a confirmed order: units back on sale, the user's count back. `userId` as for
   * `confirm`.
   */
  returnOrder(reservationId: string, options?: ReservationCommandOptions): Promise<ConfirmResult> {
    return this.reservationCommand(Op.return, reservationId, options);
  }

  /** Adds units to a SKU's stock. */
  restock(sku: string, qty: number): Promise<RestockResult> {
    if (!isValidSkuId(sku)) return this.reject(invalid('sku'));
    if (typeof qty !== 'number' || !Number.isInteger(qty) || qty < 1 || qty > 0x7fffffff) {
      return this.reject(invalid('stock'));
    }
    return this.command(Op.restock, sku, qty) as Promise<RestockResult>;
  }

  /** Ends a SKU's sale: no new reservations; open holds may still be confirmed. */
  closeSale(sku: string): Promise<CloseResult> {
    if (!isValidSkuId(sku)) return this.reject(invalid('sku'));
    return this.command(Op.close, sku, 0) as Promise<CloseResult>;
  }

  private reservationCommand(
    op: OpCode,
    id: string,
    options?: ReservationCommandOptions,
  ): Promise<ConfirmResult> {
    const parsed = parseReservationId(id);
    if (!parsed || !isValidSkuId(parsed.sku)) return this.reject(invalid('reservationId'));
    const owner = options?.userId;
    if (owner !== undefined && !isValidToken(owner, USER_ID_BYTES_MAX))
      return this.reject(invalid('userId'));
    return this.command(op, parsed.sku, parsed.n, owner) as Promise<ConfirmResult>;
  }

  private reject(r: Rejection): Promise<Rejection> {
    this.assertOpen();
    return Promise.resolve(r);
  }

  private command(op: OpCode, sku: string, n: number, owner = ''): Promise<unknown> {
    this.assertOpen();
    const client = this.clientFor(sku);
    if (client.down) return Promise.resolve(rejection('shard_unavailable'));
    if (client.depth >= this.config.engine.shardQueueMax)
      return Promise.resolve(rejection('overloaded'));
    return new Promise((resolve) => {
      client.enqueueCommand(op, sku, n, new Waiter(1, (r) => resolve(r[0])), 0, owner);
    });
  }

  /** Per-shard counters: SKUs, commands applied, queue depth, holds, whether it is up. */
  async stats(): Promise<EngineStats> {
    const shards = await Promise.all(
      this.shards.map(async (s) => {
        const up = !s.down && !this.closed;
        const base = {
          up,
          queueDepth: s.depth,
          batchesSent: s.batchesSent,
          restarts: s.restarts,
          owner: s.kind,
          ...(s instanceof RemoteShard ? { ownerNodeId: s.ownerNodeId } : {}),
        };
        // Another member's shard: its owner has its figures.
        if (s.kind !== 'local') return { ...emptyStats(s.index), ...base };
        // A closed engine's shards answer nothing: their counters here are all there is.
        if (!up) return { ...emptyStats(s.index), ...base };
        // A shard that dies before it answers is reported down, not as a failed call.
        const live = await nullIfDown(s.control.stats());
        return live === null
          ? { ...emptyStats(s.index), ...base, up: false }
          : { ...live, ...base };
      }),
    );
    return { shards, subscribers: this.subscriptions.size };
  }

  /**
   * Subscribes to every event the shards emit from now on (after the returned promise resolves).
   * A subscriber that falls more than `engine.eventsBufferMax` events behind is ended with
   * `events_overflow`. Forwarding costs nothing while nobody subscribes.
   */
  async subscribe(): Promise<EventSubscription> {
    this.assertOpen();
    const sub = new EventSubscription(this.config.engine.eventsBufferMax, () => {
      this.subscriptions.delete(sub);
      if (this.subscriptions.size === 0 && !this.closed) void this.setForwarding(false);
    });
    this.subscriptions.add(sub);
    if (this.subscriptions.size === 1) await this.setForwarding(true);
    return sub;
  }

  private async setForwarding(on: boolean): Promise<void> {
    for (const s of this.shards) s.forwarding = on; // a shard restarted later is told too
    await Promise.all(
      this.shards.filter((s) => !s.down).map((s) => s.control.setEventForwarding(on)),
    );
  }

  private publish(events: SkuEvent[]): void {
    for (const sub of this.subscriptions) sub.push(events);
  }

  /**
   * Runs every shard's hold-expiry timer now (tests with a manual clock). Returns holds expired.
   */
  async tick(): Promise<number> {
    const counts: number[] = await Promise.all(
      this.shards.filter((s) => s.kind === 'local' && !s.down).map((s) => s.control.tick()),
    );
    let total = 0;
    for (const n of counts) total += n;
    await this.drain();
    return total;
  }

  /** Waits until every request sent so far has its answer and every decision is durable. */
  async drain(): Promise<void> {
    await Promise.all(this.shards.map((s) => s.drain()));
    await Promise.all(this.shards.filter((s) => !s.down).map((s) => s.control.drain()));
  }

  /** Stops taking commands, lets in-flight work finish, and stops the shard workers. */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closed = true;
    this.closing = (async () => {
      if (this.cluster !== null) await this.cluster.stop();
      else await Promise.all(this.shards.map((s) => s.close()));
      for (const sub of this.subscriptions) sub.end();
      await this.dirLock?.release();
    })();
    return this.closing;
  }

  /** Test hook: kills one shard worker the way a crash would. */
  async crashShardForTest(shard: number): Promise<void> {
    const s = this.shards[shard];
    if (!(s instanceof ShardClient)) throw new Error(`shard ${shard} does not run here`);
    await s.crashForTest();
  }
}

/** A control call's answer, or null when the shard went down before it answered. */
async function nullIfDown<T>(call: Promise<T>): Promise<T | null> {
  try {
    return await call;
  } catch (err) {
    if (err instanceof EngineError && err.code === 'shard_unavailable') return null;
    throw err;
  }
}

/** Bound on the SKU → shard cache; past it the cache starts over (unknown ids cannot pile up). */
const SKU_CACHE_MAX = 100_000;

function toDefineResult(r: {
  status: number;
  field?: string;
  snapshot?: SkuSnapshot;
}): DefineResult {
  const name = STATUS_NAMES[r.status];
  if (name === 'defined' || name === 'updated') return { status: name, sku: r.snapshot! };
  if (name === 'invalid') return invalid(r.field as Parameters<typeof invalid>[0]);
  return rejection(name as Parameters<typeof rejection>[0]);
}

function emptyStats(shard: number): ShardStats {
  return {
    shard,
    skus: 0,
    commandsApplied: 0,
    batchesApplied: 0,
    holdsScheduled: 0,
    expiredTotal: 0,
    heapUsedBytes: 0,
    threadId: -1,
    appends: 0,
    appendsFailed: 0,
    recovery: null,
  };
}

/**
 * Locks the file journal's directory for this process (a second process appending to the same
 * shard files would lose acknowledged reservations) and checks or creates its stockade.json.
 */
async function openJournalDir(config: StockadeConfig): Promise<JournalDirLock> {
  let lock: JournalDirLock | null = null;
  try {
    lock = await lockJournalDir(config.journal.dir);
    prepareJournalDir(config.journal.dir, config.engine.shards);
    return lock;
  } catch (err) {
    await lock?.release();
    if (err instanceof JournalError) throw new EngineError(err.code, err.message, { cause: err });
    throw err;
  }
}

/**
 * Opens the Kafka journal's topic once for the whole process (created if missing, with
 * min(3, brokers) replicas) and checks that an acknowledged append survives a broker's loss.
 * Returns the warning to give when it cannot; with `kafka.requireReplication` it refuses.
 */
async function checkKafkaTopic(config: StockadeConfig): Promise<string | null> {
  const journal = new KafkaJournal(config.kafka, config.engine.shards);
  try {
    const r = await journal.replication();
    const risks = replicationRisks(r);
    if (risks.length === 0) return null;
    const why =
      `kafka topic ${r.topic} can lose an acknowledged purchase if a broker is lost: ` +
      `${risks.join(', ')}; production needs replication factor ≥ 3, min.insync.replicas ≥ 2 ` +
      'and unclean leader election off';
    if (config.kafka.requireReplication) throw new EngineError('journal_unreplicated', why);
    return why;
  } catch (err) {
    if (err instanceof JournalError) throw new EngineError(err.code, err.message, { cause: err });
    throw err;
  } finally {
    await journal.close();
  }
}

/**
 * Starts an engine: validates the configuration, starts the shard workers and waits until they
 * answer.
 *
 * ```ts
 * const engine = await createEngine({ overrides: { engine: { shards: 2 } } });
 * await engine.defineSku({ sku: 'tee', stock: 100, perUserLimit: 2 });
 * const r = await engine.reserve({ sku: 'tee', userId: 'u1', qty: 1, idempotencyKey: 'k1' });
 * ```
 */
export async function createEngine(options: EngineOptions = {}): Promise<Engine> {
  const base = options.config ?? loadConfig();
  const config = options.overrides ? withOverrides(base, options.overrides) : base;
  const clock: ClockSpec = options.clock ? options.clock.spec : { kind: 'system' };
  const dirLock = config.journal.kind === 'file' ? await openJournalDir(config) : null;
  const warning = config.journal.kind === 'kafka' ? await checkKafkaTopic(config) : null;
  let engine: Engine;
  try {
    engine = new Engine(config, clock, dirLock);
  } catch (err) {
    await dirLock?.release();
    throw err;
  }
  if (warning !== null) {
    engine.warnings.push(warning);
    const warn = options.onWarning ?? ((w) => process.emitWarning(w, { code: 'STOCKADE_UNSAFE' }));
    warn(warning);
  }
  try {
    await engine.ready();
  } catch (err) {
    await engine.close().catch(() => {});
    throw err;
  }
  return engine;
}
