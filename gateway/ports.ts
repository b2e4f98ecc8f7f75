/**
 * What the gateway asks of the stores beside it, as ports it declares: an audit log to record
 * decisions in, and the gauges of a MySQL projector running in the same process. The stores
 * (persistence/stores/) implement them without importing the gateway, and `stockade serve`
 * (cli/) plugs them in; the gateway never imports a store.
 */

export type AuditKind = 'reservation' | 'transition' | 'admin' | 'moderation';

/** One audit record: every decision, rejection, transition, admin call and verdict. */
export interface AuditEntry {
  kind: AuditKind;
  /** `reserved`, `confirmed`, … or the error code of a rejection (`sold_out`, `rate_limited`). */
  outcome: string;
  /** When the decision was answered, ms since the epoch. */
  at: number;
  sku: string | null;
  userId: string | null;
  /** Metadata of the kind: see `GatewayAuditEntry` for what the gateway records. */
  [more: string]: unknown;
}

/**
 * What the gateway records for each reply of a purchase, transition or admin route. Every field
 * is always set (null when it does not apply), so entries share one object shape.
 */
export interface GatewayAuditEntry extends AuditEntry {
  /** The route's metrics name: `reserve`, `ws_reserve`, `confirm`, `put_sku`, … */
  route: string;
  transport: 'http' | 'ws';
  /** The gateway thread that answered (0 = the main thread). */
  thread: number;
  /** Quantity asked for (reservations) or restocked; null when the request had none. */
  qty: number | null;
  /** The reservation made, confirmed, cancelled or returned; null otherwise. */
  reservationId: string | null;
  idempotencyKey: string | null;
  /** From the request's arrival at the gateway to its reply, in microseconds. */
  latencyUs: number;
  /** The invalid field (`invalid`) or the reservation's state (`invalid_transition`). */
  detail: string | null;
}

/**
 * Where audit entries go. It is on the purchase path, so `record` is synchronous, never throws
 * and never blocks: a real sink (the MongoDB audit log) buffers within a bound and writes in
 * batches off the path, dropping and counting what does not fit.
 */
export interface AuditSink {
  /** Takes one entry; synchronous, never throws, never blocks the caller. */
  record(entry: AuditEntry): void;
  /** Its counters, when it keeps them; the gateway puts them on /metrics. */
  readonly stats?: AuditStats;
}

/** Counters a sink may expose (as `stats`); the gateway puts them on /metrics. */
export interface AuditStats {
  /** Entries the store acknowledged. */
  written: number;
  /** Entries dropped because the buffer was full (never waited for). */
  dropped: number;
  /** Writes that failed (each retried later, with backoff, while the buffer holds it). */
  failed: number;
  /** Entries the store refused for good (a document it will never take): counted, not retried. */
  rejected: number;
}

/** The sink of a gateway without an audit log; callers check `audit !== noAudit` first. */
export const noAudit: AuditSink = Object.freeze({ record: (): void => {} });

/** A sink that keeps up to `max` entries in an array (then counts drops): tests, embedding. */
export class MemoryAudit implements AuditSink {
  readonly entries: AuditEntry[] = [];
  dropped = 0;
  constructor(readonly max = 100_000) {}
  record(entry: AuditEntry): void {
    if (this.entries.length < this.max) this.entries.push(entry);
    else this.dropped++;
  }
}

/** One shard's progress, as a projector reports it. */
export interface ProjectionLag {
  shard: number;
  /** Journal position after the last applied batch. */
  position: number;
  /** Position after the last payload in the journal (as of the last read or stat). */
  end: number;
  /** `end - position`, in the journal's units (file: bytes; Kafka: records). */
  lag: number;
}

/** What /metrics shows of a MySQL projector running in this process (its `stats()`). */
export interface ProjectionGauges {
  shards: ProjectionLag[];
  lagMs: number | null;
  eventsApplied: number;
  batches: number;
  casMisses: number;
  conflicts: number;
  retries: number;
}
