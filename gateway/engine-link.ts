/**
 * What the routes need from the engine, whether it lives on this thread (`EngineService`) or on
 * the main thread behind a MessagePort (`RemoteLink` in a gateway worker). Reservations go
 * through `reserve`, which batches per event-loop turn and answers through a callback object
 * (no promise per request); everything else is a promise-returning call.
 */
import type {
  CloseResult,
  ConfirmResult,
  DefineResult,
  ReserveRequest,
  ReserveResult,
  RestockResult,
  SkuDefinition,
  ClusterView,
  GetSkusOptions,
  SkuSnapshot,
  SkuUpdate,
} from '../engine/index.js';
import type { GatewayCode } from './errors.js';
import type { EngineGauges, IntervalStats, MetricsSnapshot } from './metrics.js';

/** A refusal made by the gateway itself (e.g. `not_ready`), shaped like an engine rejection. */
export interface GatewayRejection {
  readonly status: GatewayCode;
  readonly retriable: boolean;
  readonly field?: string;
  readonly state?: string;
}

export type ReserveOutcome = ReserveResult | GatewayRejection;

/** The receiver of one reservation's result (an HTTP exchange or a WebSocket request). */
export interface ReserveWaiter {
  settle(result: ReserveOutcome): void;
  /**
   * The client went away before the request was sent to the engine (its connection closed in
   * the same turn): the request is dropped with `abandon()`, never decided, so no unit is held
   * for a buyer nobody can tell.
   */
  readonly gone: boolean;
  abandon(): void;
}

/**
 * Splits a turn's requests into those still wanted and those whose client went away
 * (abandoned here); returns the wanted ones, in order, with their waiters.
 */
export function wanted(
  reqs: ReserveRequest[],
  waiters: ReserveWaiter[],
): { reqs: ReserveRequest[]; waiters: ReserveWaiter[] } {
  let gone = 0;
  for (const w of waiters) if (w.gone) gone++;
  if (gone === 0) return { reqs, waiters };
  const keptReqs: ReserveRequest[] = [];
  const keptWaiters: ReserveWaiter[] = [];
  for (let i = 0; i < waiters.length; i++) {
    if (waiters[i].gone) {
      waiters[i].abandon();
      continue;
    }
    keptReqs.push(reqs[i]);
    keptWaiters.push(waiters[i]);
  }
  return { reqs: keptReqs, waiters: keptWaiters };
}

/** Calls that are not on the per-request hot path; structured messages across threads. */
export interface EngineCalls {
  /** `owner`: the acting user; the command applies only to that user's reservation. */
  confirm(id: string, owner?: string): Promise<ConfirmResult>;
  cancel(id: string, owner?: string): Promise<ConfirmResult>;
  returnOrder(id: string, owner?: string): Promise<ConfirmResult>;
  getSku(sku: string): Promise<SkuSnapshot | null>;
  /** Several SKUs in one call per shard (null for one not defined); does not track them. */
  /** See `Engine.getSkus`: `skipUnavailable` makes a SKU on a down shard null. */
  getSkus(skus: string[], options?: GetSkusOptions): Promise<(SkuSnapshot | null)[]>;
  /** Defines the SKU if it is new, else applies `update` (see `putSku` in engine-service.ts). */
  putSku(
    def: SkuDefinition | null,
    sku: string,
    update: SkuUpdate,
    stock: number | null,
  ): Promise<DefineResult>;
  restock(sku: string, qty: number): Promise<RestockResult>;
  closeSale(sku: string): Promise<CloseResult>;
  /** SKUs defined or read through the gateway (bounded by `gateway.skusTrackedMax`). */
  trackedSkus(): Promise<string[]>;
  /** Engine and SKU gauges plus the metrics of every gateway thread, added up. */
  clusterMetrics(): Promise<{ metrics: MetricsSnapshot; gauges: EngineGauges }>;
  /** The dashboard's figures over the last second, across every gateway thread. */
  clusterStats(): Promise<IntervalStats>;
  /** The cluster of Kafka members as this one sees it, or null outside a cluster. */
  clusterView(): Promise<ClusterView | null>;
}

export interface EngineLink extends EngineCalls {
  /** True once the engine is ready (recovered); routes answer `not_ready` before. */
  readonly ready: boolean;
  /** Queues a reservation for this turn's batch; `waiter.settle` runs with its result. */
  reserve(request: ReserveRequest, waiter: ReserveWaiter): void;
}

/** Methods a gateway worker may call on the main thread, by name. */
export const CALL_METHODS = [
  'confirm',
  'cancel',
  'returnOrder',
  'getSku',
  'getSkus',
  'putSku',
  'restock',
  'closeSale',
  'trackedSkus',
  'clusterMetrics',
  'clusterStats',
  'clusterView',
] as const satisfies readonly (keyof EngineCalls)[];
export type CallMethod = (typeof CALL_METHODS)[number];

const rejections = new Map<string, GatewayRejection>();

/** A shared rejection object for a gateway-made refusal. */
export function refusal(code: GatewayCode, retriable: boolean): GatewayRejection {
  let r = rejections.get(code);
  if (!r) rejections.set(code, (r = Object.freeze({ status: code, retriable })));
  return r;
}

export const NOT_READY = refusal('not_ready', true);

/** The code of a thrown error: an engine fault's own code, else `internal`. */
export function codeOfError(err: unknown): GatewayCode {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case 'engine_closed':
    case 'shard_unavailable':
    case 'overloaded':
    case 'not_ready':
    case 'journal_unavailable':
      return code;
    default:
      return 'internal';
  }
}
