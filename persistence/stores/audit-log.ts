/**
 * What the audit log stores: one entry per purchase decision (rejections included),
 * reservation transition, admin call and moderation verdict. `MongoAuditLog` takes them; it
 * fits the gateway's `AuditSink` port (gateway/ports.ts) without importing the gateway.
 */

export interface AuditEntry {
  kind: 'reservation' | 'transition' | 'admin' | 'moderation';
  /** `reserved`, `confirmed`, … or the error code of a rejection (`sold_out`, `rate_limited`). */
  outcome: string;
  /** When the decision was answered, ms since the epoch. */
  at: number;
  sku: string | null;
  userId: string | null;
  /** Metadata of the kind (route, latency, reservation id, verdict scores, …). */
  [more: string]: unknown;
}

/** The log's counters, which the gateway puts on /metrics. */
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
