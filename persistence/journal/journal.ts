/**
 * The journal: a durable, ordered log of event payloads (see actors/event-codec.ts), one stream
 * per shard. The engine depends only on this interface; `FileJournal` (the embedded default)
 * and `KafkaJournal` (production) implement it.
 *
 * Contract:
 * - `append(shard, payload)` resolves once the payload is durable (on disk after fsync, or
 *   acknowledged by all in-sync Kafka replicas) and not before. It rejects with a
 *   `JournalError` if the payload may not be durable; the caller must then rebuild its state
 *   from what `read` returns, because a failed append may or may not have landed.
 * - At most one append per shard is in flight at a time. Callers group everything decided
 *   while an append is in flight into the next one (group commit); implementations reject a
 *   second concurrent append rather than reorder.
 * - `read(shard, from, visit)` calls `visit` for every durable payload at or after position
 *   `from`, in append order, and resolves to the position after the last one. A torn or
 *   corrupt tail is never handed to `visit`.
 */
import { StockadeError } from '../../actors/index.js';

export type JournalPosition = number;

export interface Journal {
  readonly kind: 'file' | 'kafka' | 'memory';
  append(shard: number, payload: Uint8Array): Promise<JournalPosition>;
  read(
    shard: number,
    from: JournalPosition,
    visit: (payload: Uint8Array, position: JournalPosition) => void,
  ): Promise<JournalPosition>;
  /** Position after the last payload known durable for the shard (0 before any). */
  durablePosition(shard: number): JournalPosition;
  /**
   * Resolves once nothing this instance sent for the shard can still land: an append that
   * rejected (timed out) may have left a send running underneath. Absent: appends never outlive
   * their promise (the file journal writes before it syncs).
   */
  settled?(shard: number): Promise<void>;
  close(): Promise<void>;
}

export type JournalErrorCode =
  | 'journal_unavailable'
  | 'journal_corrupt'
  | 'journal_mismatch'
  | 'journal_locked'
  | 'journal_fenced'
  | 'journal_unreplicated';

/**
 * An error thrown by a `read` visitor (e.g. a payload that does not decode), carried out of the
 * journal's own error handling as its `cause`: a journal reports its own faults as
 * JournalErrors and passes a visitor's error on unchanged.
 */
export class VisitorError extends Error {}

/** Calls `visit`, marking what it throws as the visitor's (see VisitorError). */
export function visitGuarded(
  visit: (payload: Uint8Array, position: JournalPosition) => void,
  payload: Uint8Array,
  position: JournalPosition,
): void {
  try {
    visit(payload, position);
  } catch (err) {
    throw new VisitorError('journal visitor failed', { cause: err });
  }
}

/** A journal fault. `journal_unavailable` is retriable: the write may succeed later. */
export class JournalError extends StockadeError<JournalErrorCode> {
  constructor(code: JournalErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'JournalError';
  }
}
