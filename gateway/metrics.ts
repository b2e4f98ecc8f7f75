/**
 * Request counters by route and outcome, and latency histograms by route, in flat typed arrays:
 * recording a request is two array increments and a short bucket search, with no allocation.
 * Gateway worker threads send their arrays to the main thread once a second, which adds them up
 * for `/metrics` and the dashboard (`MetricsSnapshot` is plain data so it crosses threads).
 */
import { GATEWAY_CODES } from './errors.js';
import type { GatewayCode } from './errors.js';
import type { AuditStats, ProjectionGauges } from './ports.js';
import type { ClusterFigures } from '../engine/index.js';

export const ROUTES = [
  'reserve',
  'ws_reserve',
  'confirm',
  'cancel',
  'return',
  'get_sku',
  'put_sku',
  'restock',
  'close',
  'get_product',
  'put_product',
  'moderate_image',
  'product_image',
  'healthz',
  'readyz',
  'metrics',
  'dashboard',
  'ws_upgrade',
  'ws_message',
  'cluster',
  'unmatched',
] as const;
export type Route = (typeof ROUTES)[number];
export const RouteId = Object.fromEntries(ROUTES.map((r, i) => [r, i])) as { [K in Route]: number };

/** `ok` for a success, `aborted` when the client left first, otherwise the code answered. */
export const OUTCOMES = ['ok', 'aborted', ...GATEWAY_CODES] as const;
const outcomeIndex = new Map<string, number>(OUTCOMES.map((o, i) => [o, i]));
export const OUTCOME_OK = 0;
export const OUTCOME_ABORTED = 1;

export function outcomeOf(code: GatewayCode): number {
  return outcomeIndex.get(code)!;
}

/** Upper bounds of the latency buckets, in milliseconds (the last bucket is +Inf). */
export const LATENCY_BUCKETS_MS = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000, 5000];
const B = LATENCY_BUCKETS_MS.length + 1;
const R = ROUTES.length;
const O = OUTCOMES.length;

export interface MetricsSnapshot {
  counts: Float64Array;
  buckets: Float64Array;
  sumsMs: Float64Array;
  inflight: number;
  wsConnections: number;
  /** Stock subscriptions open (one per socket and SKU, `*` included). */
  wsStockSubscriptions: number;
  /** Purchases the local buckets limited because the shared (Redis) limiter failed. */
  rateLimitFallbacks: number;
}

export class Metrics {
  readonly counts = new Float64Array(R * O);
  readonly buckets = new Float64Array(R * B);
  readonly sumsMs = new Float64Array(R);
  inflight = 0;
  wsConnections = 0;
  wsStockSubscriptions = 0;
  rateLimitFallbacks = 0;

  observe(route: number, outcome: number, ms: number): void {
    this.counts[route * O + outcome]++;
    let b = 0;
    while (b < B - 1 && ms > LATENCY_BUCKETS_MS[b]) b++;
    this.buckets[route * B + b]++;
    this.sumsMs[route] += ms;
  }

  snapshot(): MetricsSnapshot {
    return {
      counts: this.counts.slice(),
      buckets: this.buckets.slice(),
      sumsMs: this.sumsMs.slice(),
      inflight: this.inflight,
      wsConnections: this.wsConnections,
      wsStockSubscriptions: this.wsStockSubscriptions,
      rateLimitFallbacks: this.rateLimitFallbacks,
    };
  }
}

/** Adds snapshots up (the main thread's own and the workers' latest). */
export function mergeSnapshots(parts: readonly MetricsSnapshot[]): MetricsSnapshot {
  const out: MetricsSnapshot = {
    counts: new Float64Array(R * O),
    buckets: new Float64Array(R * B),
    sumsMs: new Float64Array(R),
    inflight: 0,
    wsConnections: 0,
    wsStockSubscriptions: 0,
    rateLimitFallbacks: 0,
  };
  for (const p of parts) {
    for (let i = 0; i < out.counts.length; i++) out.counts[i] += p.counts[i];
    for (let i = 0; i < out.buckets.length; i++) out.buckets[i] += p.buckets[i];
    for (let i = 0; i < out.sumsMs.length; i++) out.sumsMs[i] += p.sumsMs[i];
    out.inflight += p.inflight;
    out.wsConnections += p.wsConnections;
    out.wsStockSubscriptions += p.wsStockSubscriptions;
    out.rateLimitFallbacks += p.rateLimitFallbacks;
  }
  return out;
}

/** Gauges that come from the engine and the gateway, rendered next to the counters. */
export interface EngineGauges {
  shards: {
    shard: number;
    up: boolean;
    queueDepth: number;
    skus: number;
    holdsScheduled: number;
    appends: number;
    appendsFailed: number;
    /** This member runs the shard (always, outside a cluster). */
    local: boolean;
  }[];
  skus: { sku: string; available: number; reserved: number; sold: number; stock: number }[];
  ready: boolean;
  /** The audit log's counters, or null (absent) without one. */
  audit?: AuditStats | null;
  /** The MySQL projector's lag and counters, or null (absent) when it does not run here. */
  projection?: ProjectionGauges | null;
  /** Ownership and forwarding figures, or null (absent) outside a cluster. */
  cluster?: ClusterFigures | null;
}

/** Prometheus text exposition format 0.0.4. */
export function prometheusText(m: MetricsSnapshot, g: EngineGauges): string {
  const out: string[] = [];
  out.push(
    '# HELP stockade_requests_total Requests answered, by route and outcome (ok or error code).',
  );
  out.push('# TYPE stockade_requests_total counter');
  for (let r = 0; r < R; r++) {
    for (let o = 0; o < O; o++) {
      const n = m.counts[r * O + o];
      if (n > 0)
        out.push(`stockade_requests_total{route="${ROUTES[r]}",outcome="${OUTCOMES[o]}"} ${n}`);
    }
  }
  out.push('# HELP stockade_request_duration_seconds Time from request to reply, by route.');
  out.push('# TYPE stockade_request_duration_seconds histogram');
  for (let r = 0; r < R; r++) {
    let cum = 0;
    for (let b = 0; b < B; b++) cum += m.buckets[r * B + b];
    if (cum === 0) continue;
    cum = 0;
    for (let b = 0; b < B; b++) {
      cum += m.buckets[r * B + b];
      const le = b < B - 1 ? String(LATENCY_BUCKETS_MS[b] / 1000) : '+Inf';
      out.push(`stockade_request_duration_seconds_bucket{route="${ROUTES[r]}",le="${le}"} ${cum}`);
    }
    out.push(`stockade_request_duration_seconds_sum{route="${ROUTES[r]}"} ${m.sumsMs[r] / 1000}`);
    out.push(`stockade_request_duration_seconds_count{route="${ROUTES[r]}"} ${cum}`);
  }
  gauge(out, 'stockade_inflight_requests', 'Requests admitted and not yet answered.', m.inflight);
  gauge(out, 'stockade_ws_connections', 'Open WebSocket connections.', m.wsConnections);
  gauge(
    out,
    'stockade_ws_stock_subscriptions',
    'Open WebSocket stock subscriptions (one per socket and SKU).',
    m.wsStockSubscriptions,
  );
  counters(out, [
    [
      'stockade_rate_limit_fallbacks_total',
      'Purchases limited by the local buckets because the shared (Redis) limiter failed.',
      m.rateLimitFallbacks,
    ],
  ]);
  gauge(
    out,
    'stockade_ready',
    '1 once the engine is ready and the server is not draining.',
    g.ready ? 1 : 0,
  );
  shardGauges(out, g);
  skuGauges(out, g);
  if (g.audit) auditCounters(out, g.audit);
  if (g.projection) projectionGauges(out, g.projection);
  if (g.cluster) clusterSeries(out, g.cluster);
  return out.join('\n') + '\n';
}

function gauge(out: string[], name: string, help: string, value: number): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name} ${value}`);
}

/** Counters without labels, each as [name, help, value]. */
function counters(out: string[], series: [string, string, number][]): void {
  for (const [name, help, v] of series)
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
}

function projectionGauges(out: string[], p: ProjectionGauges): void {
  out.push(
    '# HELP stockade_projection_lag Journal position not yet applied to MySQL, per shard ' +
      '(file journal: bytes; Kafka: records).',
    '# TYPE stockade_projection_lag gauge',
  );
  for (const s of p.shards) out.push(`stockade_projection_lag{shard="${s.shard}"} ${s.lag}`);
  if (p.lagMs !== null) {
    const help = 'While behind: how long the unapplied events may have waited (0 when caught up).';
    gauge(out, 'stockade_projection_lag_seconds', help, p.lagMs / 1000);
  }
  counters(out, [
    ['stockade_projection_events_total', 'Events applied to MySQL.', p.eventsApplied],
    ['stockade_projection_batches_total', 'MySQL transactions committed.', p.batches],
    ['stockade_projection_cas_misses_total', 'SKU row CAS updates that missed.', p.casMisses],
    ['stockade_projection_conflicts_total', 'Rows disagreeing with the journal.', p.conflicts],
    ['stockade_projection_retries_total', 'Failed projection attempts, retried.', p.retries],
  ]);
}

function clusterSeries(out: string[], c: ClusterFigures): void {
  gauge(
    out,
    'stockade_cluster_members',
    'Members of the cluster, as this one last saw it.',
    c.members,
  );
  gauge(
    out,
    'stockade_cluster_partitions_owned',
    'Partitions this member serves.',
    c.partitionsOwned,
  );
  counters(out, [
    [
      'stockade_cluster_rebalances_total',
      'Group rebalances this member went through.',
      c.rebalances,
    ],
    [
      'stockade_cluster_partitions_gained_total',
      'Partitions this member took over (replayed, then served).',
      c.partitionsGained,
    ],
    [
      'stockade_cluster_partitions_lost_total',
      'Partitions this member handed over.',
      c.partitionsLost,
    ],
    [
      'stockade_cluster_forwarded_total',
      'Batches and calls this member forwarded to the owners of other partitions.',
      c.forwardedBatches,
    ],
    [
      'stockade_cluster_forward_failures_total',
      'Forwarded batches and calls that got no answer (their requests: shard_unavailable).',
      c.forwardFailures,
    ],
    [
      'stockade_cluster_served_batches_total',
      'Batches other members forwarded to this one, applied.',
      c.servedBatches,
    ],
    [
      'stockade_cluster_served_calls_total',
      'Control calls (reads, admin) other members forwarded to this one, answered.',
      c.servedCalls,
    ],
  ]);
}

function auditCounters(out: string[], a: AuditStats): void {
  counters(out, [
    ['stockade_audit_written_total', 'Audit entries the audit store acknowledged.', a.written],
    ['stockade_audit_dropped_total', 'Audit entries dropped: the buffer was full.', a.dropped],
    ['stockade_audit_failed_total', 'Audit batch writes that failed (then retried).', a.failed],
    [
      'stockade_audit_rejected_total',
      'Audit entries the store refused for good (not retried).',
      a.rejected,
    ],
  ]);
}

function shardGauges(out: string[], g: EngineGauges): void {
  const series: [string, string, (s: EngineGauges['shards'][number]) => number][] = [
    [
      'stockade_shard_queue_depth',
      'Requests sent to a shard and not yet answered.',
      (s) => s.queueDepth,
    ],
    [
      'stockade_shard_up',
      '1 while the shard runs (its worker thread, or inline).',
      (s) => (s.up ? 1 : 0),
    ],
    ['stockade_shard_skus', 'SKUs a shard owns.', (s) => s.skus],
    [
      'stockade_shard_local',
      '1 when this member runs the shard (in a cluster, 0 for the shards other members own).',
      (s) => (s.local ? 1 : 0),
    ],
    ['stockade_shard_holds', 'Reservation holds scheduled for expiry.', (s) => s.holdsScheduled],
    ['stockade_journal_appends', 'Group commits appended to the shard journal.', (s) => s.appends],
    [
      'stockade_journal_appends_failed',
      'Group commits the journal failed to make durable.',
      (s) => s.appendsFailed,
    ],
  ];
  for (const [name, help, f] of series) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const s of g.shards) out.push(`${name}{shard="${s.shard}"} ${f(s)}`);
  }
}

function skuGauges(out: string[], g: EngineGauges): void {
  const series: [string, string, (s: EngineGauges['skus'][number]) => number][] = [
    ['stockade_sku_available', 'Units still available, per SKU.', (s) => s.available],
    ['stockade_sku_reserved', 'Units held by open reservations, per SKU.', (s) => s.reserved],
    ['stockade_sku_sold', 'Units sold and not returned, per SKU.', (s) => s.sold],
    [
      'stockade_sku_stock',
      'Units ever put on sale (initial stock plus restocks), per SKU.',
      (s) => s.stock,
    ],
  ];
  for (const [name, help, f] of series) {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    // SKU ids are [A-Za-z0-9._-]: nothing to escape in a label value.
    for (const s of g.skus) out.push(`${name}{sku="${s.sku}"} ${f(s)}`);
  }
}

/** The dashboard's figures for one interval: the difference of two snapshots. */
export interface IntervalStats {
  purchasesPerS: number;
  attemptsPerS: number;
  rejections: Record<string, number>;
  latencyMs: { p50: number; p99: number };
}

const PURCHASE_ROUTES = [RouteId.reserve, RouteId.ws_reserve];

export function intervalStats(
  now: MetricsSnapshot,
  before: MetricsSnapshot,
  seconds: number,
): IntervalStats {
  let ok = 0;
  let all = 0;
  const rejections: Record<string, number> = {};
  const hist = new Float64Array(B);
  for (const r of PURCHASE_ROUTES) {
    for (let o = 0; o < O; o++) {
      const d = now.counts[r * O + o] - before.counts[r * O + o];
      if (d <= 0) continue;
      all += d;
      if (o === OUTCOME_OK) ok += d;
      else rejections[OUTCOMES[o]] = (rejections[OUTCOMES[o]] ?? 0) + d;
    }
    for (let b = 0; b < B; b++) hist[b] += now.buckets[r * B + b] - before.buckets[r * B + b];
  }
  const s = Math.max(seconds, 1e-3);
  return {
    purchasesPerS: Math.round(ok / s),
    attemptsPerS: Math.round(all / s),
    rejections,
    latencyMs: { p50: histQuantile(hist, 0.5), p99: histQuantile(hist, 0.99) },
  };
}

/** The upper bound of the bucket holding quantile q (0 for an empty histogram). */
function histQuantile(hist: Float64Array, q: number): number {
  let total = 0;
  for (const n of hist) total += n;
  if (total === 0) return 0;
  let cum = 0;
  for (let b = 0; b < B; b++) {
    cum += hist[b];
    if (cum >= q * total) return b < B - 1 ? LATENCY_BUCKETS_MS[b] : LATENCY_BUCKETS_MS[B - 2] * 2;
  }
  return 0;
}
