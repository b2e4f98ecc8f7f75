/**
 * The main-thread side of the gateway: the one place that calls the engine. The App on the main
 * thread uses it directly as its `EngineLink`; gateway worker threads reach it through
 * `GatewayHost`. It batches reservations per event-loop turn into one `engine.reserveMany`,
 * keeps the list of SKUs the gateway has seen (the engine has no "list SKUs" call), and adds up
 * the metrics of every gateway thread.
 *
 *   routes ─reserve()─▶ reqs[] ──setImmediate──▶ engine.reserveMany(reqs) ─▶ waiters[i].settle
 */
import type {
  ConfirmResult,
  DefineResult,
  Engine,
  ReserveRequest,
  ReserveResult,
  SkuDefinition,
  ClusterView,
  GetSkusOptions,
  SkuSnapshot,
  SkuUpdate,
} from '../engine/index.js';
import { noAudit } from './ports.js';
import type { AuditSink, AuditStats } from './ports.js';
import { NOT_READY, codeOfError, refusal, wanted } from './engine-link.js';
import type { EngineLink, ReserveOutcome, ReserveWaiter } from './engine-link.js';
import { Metrics, intervalStats, mergeSnapshots } from './metrics.js';
import type { EngineGauges, IntervalStats, MetricsSnapshot } from './metrics.js';
import type { ProjectionGauges } from './ports.js';

export class EngineService implements EngineLink {
  /** Metrics of the App on the main thread. */
  readonly metrics = new Metrics();
  private readonly workerMetrics = new Map<number, MetricsSnapshot>();
  private engine: Engine | null = null;
  private draining = false;
  private reqs: ReserveRequest[] = [];
  private waiters: ReserveWaiter[] = [];
  private scheduled = false;
  private readonly tracked = new Set<string>();
  /** The last interval's figures; the first interval starts when the service does. */
  private lastStats: { at: number; snapshot: MetricsSnapshot; stats: IntervalStats | null };
  /** Resolves when the engine is ready (it may still be recovering when the gateway starts). */
  readonly engineReady: Promise<Engine>;
  /** Audit entries gateway workers dropped before forwarding them (their bound was full). */
  auditForwardDropped = 0;
  /** The MySQL projector's gauges when it runs in this process (`serve --project`). */
  projectionStats: (() => ProjectionGauges) | null = null;

  constructor(
    engine: Engine | Promise<Engine>,
    private readonly skusTrackedMax: number,
    private readonly onEngineError: (err: unknown) => void = () => {},
    /** The audit sink of every gateway thread; its `stats`, if it has them, go on /metrics. */
    private readonly audit: AuditSink = noAudit,
  ) {
    this.lastStats = { at: performance.now(), snapshot: mergeSnapshots([]), stats: null };
    this.engineReady = Promise.resolve(engine).then((e) => (this.engine = e));
    this.engineReady.catch(this.onEngineError);
    if (!('then' in engine)) this.engine = engine;
  }

  get ready(): boolean {
    return this.engine !== null && !this.draining;
  }

  /** Readiness goes false (for /readyz) while the server drains before shutting down. */
  setDraining(): void {
    this.draining = true;
  }

  private need(): Engine {
    if (this.engine === null)
      throw Object.assign(new Error('engine not ready'), { code: 'not_ready' });
    return this.engine;
  }

  reserve(request: ReserveRequest, waiter: ReserveWaiter): void {
    if (this.engine === null) return waiter.settle(NOT_READY);
    this.reqs.push(request);
    this.waiters.push(waiter);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush);
    }
  }

  private readonly flush = (): void => {
    this.scheduled = false;
    const { reqs, waiters } = wanted(this.reqs, this.waiters);
    this.reqs = [];
    this.waiters = [];
    if (reqs.length === 0) return;
    void this.reserveBatch(reqs).then((results) => {
      for (let i = 0; i < results.length; i++) waiters[i].settle(results[i]);
    });
  };

  /** One `reserveMany` for a batch; faults become a rejection for every request. */
  async reserveBatch(reqs: ReserveRequest[]): Promise<ReserveOutcome[]> {
    let results: ReserveResult[];
    try {
      results = await this.need().reserveMany(reqs);
    } catch (err) {
      const code = codeOfError(err);
      this.onEngineError(err);
      return reqs.map(() => refusal(code, code !== 'engine_closed'));
    }
    for (let i = 0; i < results.length; i++) {
      const r = results[i];
      if (r.status === 'reserved' && !this.tracked.has(r.sku)) this.trackSku(r.sku);
    }
    return results;
  }

  /** Lists a SKU on /metrics and the dashboard (bounded by `gateway.skusTrackedMax`). */
  trackSku(sku: string): void {
    if (this.tracked.has(sku) || this.tracked.size >= this.skusTrackedMax) return;
    this.tracked.add(sku);
  }

  async confirm(id: string, owner?: string): Promise<ConfirmResult> {
    return this.need().confirm(id, ownerOption(owner));
  }

  async cancel(id: string, owner?: string): Promise<ConfirmResult> {
    return this.need().cancel(id, ownerOption(owner));
  }

  async returnOrder(id: string, owner?: string): Promise<ConfirmResult> {
    return this.need().returnOrder(id, ownerOption(owner));
  }

  async getSku(sku: string): Promise<SkuSnapshot | null> {
    const snap = await this.need().getSku(sku);
    if (snap) this.trackSku(sku);
    return snap;
  }

  getSkus(skus: string[], options?: GetSkusOptions): Promise<(SkuSnapshot | null)[]> {
    return this.need().getSkus(skus, options);
  }

  /**
   * PUT semantics: define the SKU when it is new; otherwise apply the settings. `stock` may be
   * repeated on an update only with the SKU's initial stock (a replayed PUT); changing stock is
   * what restock is for, so any other value is `invalid` with field `stock`.
   */
  async putSku(
    def: SkuDefinition | null,
    sku: string,
    update: SkuUpdate,
    stock: number | null,
  ): Promise<DefineResult> {
    const engine = this.need();
    if (def) {
      const r = await engine.defineSku(def);
      if (r.status !== 'sku_exists') {
        if (r.status === 'defined') this.trackSku(sku);
        return r;
      }
    }
    const current = await engine.getSku(sku);
    if (!current) return { status: 'unknown_sku', retriable: false };
    if (stock !== null && stock !== current.initialStock)
      return { status: 'invalid', retriable: false, field: 'stock' };
    this.trackSku(sku);
    if (Object.keys(update).length === 0) return { status: 'updated', sku: current };
    return engine.updateSku(sku, update);
  }

  async restock(sku: string, qty: number) {
    const r = await this.need().restock(sku, qty);
    if (r.status === 'restocked') this.trackSku(sku);
    return r;
  }

  async closeSale(sku: string) {
    return this.need().closeSale(sku);
  }

  trackedSkus(): Promise<string[]> {
    return Promise.resolve([...this.tracked]);
  }

  /** A gateway worker's latest metrics (sent once a second). */
  setWorkerMetrics(worker: number, snapshot: MetricsSnapshot): void {
    this.workerMetrics.set(worker, snapshot);
  }

  private mergedMetrics(): MetricsSnapshot {
    return mergeSnapshots([this.metrics.snapshot(), ...this.workerMetrics.values()]);
  }

  /** Audit counters for /metrics, or null without an audit log. */
  auditStats(): AuditStats | null {
    if (this.audit === noAudit) return null;
    const s = this.audit.stats;
    const dropped = this.auditForwardDropped + (s?.dropped ?? 0);
    return {
      written: s?.written ?? 0,
      dropped,
      failed: s?.failed ?? 0,
      rejected: s?.rejected ?? 0,
    };
  }

  async clusterMetrics(): Promise<{ metrics: MetricsSnapshot; gauges: EngineGauges }> {
    const metrics = this.mergedMetrics();
    const gauges: EngineGauges = {
      shards: [],
      skus: [],
      ready: this.ready,
      audit: this.auditStats(),
      projection: this.projectionStats?.() ?? null,
      cluster: this.engine?.clusterFigures() ?? null,
    };
    if (this.engine === null) return { metrics, gauges };
    const engine = this.engine;
    const stats = await engine.stats();
    gauges.shards = stats.shards.map((s) => ({
      shard: s.shard,
      up: s.up,
      queueDepth: s.queueDepth,
      skus: s.skus,
      holdsScheduled: s.holdsScheduled,
      appends: s.appends ?? 0,
      appendsFailed: s.appendsFailed ?? 0,
      local: s.owner === 'local',
    }));
    const snaps = await engine.getSkus([...this.tracked], { skipUnavailable: true });
    for (const s of snaps) {
      if (!s) continue;
      gauges.skus.push({
        sku: s.sku,
        available: s.available,
        reserved: s.reserved,
        sold: s.sold,
        stock: s.initialStock + s.restocked,
      });
    }
    return { metrics, gauges };
  }

  /**
   * Purchases per second, rejections by reason and latency over the last interval (≥ 0.9 s),
   * across all gateway threads. Cached, so every thread's dashboard feed may ask once a second.
   */
  clusterView(): Promise<ClusterView | null> {
    return Promise.resolve(this.engine?.clusterView() ?? null);
  }

  clusterStats(): Promise<IntervalStats> {
    const now = performance.now();
    const last = this.lastStats;
    if (last.stats !== null && now - last.at < 900) return Promise.resolve(last.stats);
    const snapshot = this.mergedMetrics();
    const stats = intervalStats(snapshot, last.snapshot, (now - last.at) / 1000);
    this.lastStats = { at: now, snapshot, stats };
    return Promise.resolve(stats);
  }
}

function ownerOption(owner: string | undefined): { userId: string } | undefined {
  return owner === undefined ? undefined : { userId: owner };
}
