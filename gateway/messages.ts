/**
 * The thread boundary between gateway workers and the main thread (which owns the engine): the
 * message types both sides use, and the binary codec of the hot path. Reservations travel in
 * one transferable ArrayBuffer per event-loop turn; their results come back as one Float64Array.
 * Everything else (confirm, admin, metrics) is a structured-clone call: it is not per request.
 *
 *   gateway worker                         main thread
 *   reserve() ─▶ ReserveBatchWriter ──{reserve}──▶ decodeReserveBatch ─▶ engine.reserveMany
 *   settle()  ◀─ decode words      ◀─{reserved}── encodeResults
 */
import type { ReserveRequest, StockadeConfig } from '../engine/index.js';
import type { GatewayAuditEntry } from './ports.js';
import type { CatalogMethod } from './catalog-link.js';
import type { CallMethod, ReserveOutcome } from './engine-link.js';
import { GATEWAY_CODES } from './errors.js';
import type { MetricsSnapshot } from './metrics.js';

export interface GatewayWorkerData {
  config: StockadeConfig;
  thread: number;
  port: number;
  /** False when the threads share one port (SO_REUSEPORT). */
  exclusive: boolean;
  /**
   * With an audit sink on the main thread: one Int32 the main thread adds the forwarded audit
   * entries it took to (AuditForwarder's bound); null without one (no entries are built).
   */
  auditTaken: SharedArrayBuffer | null;
  /** The main thread's catalog's `gatesSales`. */
  catalogGatesSales: boolean;
  /** See `GatewayOptions.sharedLimiterModule`. */
  sharedLimiterModule: string | null;
}

export type WorkerToMain =
  | { kind: 'listening'; port: number; error: string | null }
  | { kind: 'reserve'; id: number; buffer: ArrayBuffer; bytes: number; count: number }
  /** A call on the main thread's engine service or its catalog (products, moderation). */
  | { kind: 'call'; id: number; target: 'engine'; method: CallMethod; args: unknown[] }
  | { kind: 'call'; id: number; target: 'catalog'; method: CatalogMethod; args: unknown[] }
  | { kind: 'metrics'; snapshot: MetricsSnapshot }
  /** One event-loop turn's audit entries, and those dropped for want of room since the last. */
  | { kind: 'audit'; entries: GatewayAuditEntry[]; dropped: number }
  | { kind: 'drained' }
  | { kind: 'closed' };

export type MainToWorker =
  | { kind: 'ready'; ready: boolean }
  | {
      kind: 'reserved';
      id: number;
      words: ArrayBuffer;
      /** Flat [index, field, state, ...] for the rejections that name a field or a state. */
      details: (string | number | null)[];
      buffer: ArrayBuffer;
    }
  | { kind: 'reply'; id: number; value: unknown; error: { code: string; message: string } | null }
  | { kind: 'drain' }
  | { kind: 'close' };

/** Result words per reservation: [code | duplicate << 8, reservation number, expiresAt]. */
export const RESULT_STRIDE = 3;
export const RESULT_CODES = ['reserved', ...GATEWAY_CODES] as const;
const resultCodeIndex = new Map<string, number>(RESULT_CODES.map((c, i) => [c, i]));

/** A request is at most 1 + 64 + 1 + 128 + 1 + 128 + 4 bytes (limits checked before). */
const REQUEST_BYTES_MAX = 327;

/** Appends validated reservations to a transferable buffer. */
export class ReserveBatchWriter {
  private buf: Buffer;
  offset = 0;
  count = 0;

  constructor(bytes = 64 * 1024) {
    this.buf = Buffer.from(new ArrayBuffer(bytes));
  }

  add(r: ReserveRequest): void {
    if (this.offset + REQUEST_BYTES_MAX > this.buf.length) this.grow();
    const b = this.buf;
    let o = this.offset;
    o = writeString(b, o, r.sku, 'latin1');
    o = writeString(b, o, r.userId, 'utf8');
    o = writeString(b, o, r.idempotencyKey, 'utf8');
    b.writeUInt32LE(r.qty, o);
    this.offset = o + 4;
    this.count++;
  }

  private grow(): void {
    const next = Buffer.from(new ArrayBuffer(this.buf.length * 2));
    this.buf.copy(next, 0, 0, this.offset);
    this.buf = next;
  }

  /** Hands over the buffer (to transfer) and starts a new one from `spare`. */
  take(spare: ArrayBuffer | undefined): { buffer: ArrayBuffer; bytes: number; count: number } {
    const out = { buffer: this.buf.buffer as ArrayBuffer, bytes: this.offset, count: this.count };
    this.buf = Buffer.from(spare ?? new ArrayBuffer(64 * 1024));
    this.offset = 0;
    this.count = 0;
    return out;
  }
}

function writeString(b: Buffer, o: number, s: string, encoding: 'latin1' | 'utf8'): number {
  const n = b.write(s, o + 1, encoding);
  b[o] = n;
  return o + 1 + n;
}

export function decodeReserveBatch(
  buffer: ArrayBuffer,
  bytes: number,
  count: number,
): ReserveRequest[] {
  const b = Buffer.from(buffer, 0, bytes);
  const out = new Array<ReserveRequest>(count);
  let o = 0;
  for (let i = 0; i < count; i++) {
    const skuEnd = o + 1 + b[o];
    const sku = b.toString('latin1', o + 1, skuEnd);
    const userEnd = skuEnd + 1 + b[skuEnd];
    const userId = b.toString('utf8', skuEnd + 1, userEnd);
    const keyEnd = userEnd + 1 + b[userEnd];
    const idempotencyKey = b.toString('utf8', userEnd + 1, keyEnd);
    out[i] = { sku, userId, qty: b.readUInt32LE(keyEnd), idempotencyKey };
    o = keyEnd + 4;
  }
  return out;
}

/** Encodes results as words (see RESULT_STRIDE) plus the rare field/state details. */
export function encodeResults(results: readonly ReserveOutcome[]): {
  words: Float64Array;
  details: (string | number | null)[];
} {
  const words = new Float64Array(results.length * RESULT_STRIDE);
  const details: (string | number | null)[] = [];
  for (let i = 0, o = 0; i < results.length; i++, o += RESULT_STRIDE) {
    const r = results[i];
    if (r.status === 'reserved') {
      const id = r.reservationId;
      words[o] = (r.duplicate ? 256 : 0) | 0;
      words[o + 1] = Number(id.slice(id.lastIndexOf(':') + 1));
      words[o + 2] = r.expiresAt;
    } else {
      words[o] = resultCodeIndex.get(r.status) ?? resultCodeIndex.get('internal')!;
      if (r.field !== undefined || r.state !== undefined)
        details.push(i, r.field ?? null, r.state ?? null);
    }
  }
  return { words, details };
}
