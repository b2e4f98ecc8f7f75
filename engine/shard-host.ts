import assert from 'node:assert/strict';
import {
  BinaryEventLog,
  Shard,
  Status,
  RESULT_STRIDE,
  decodeEvents,
  nullEventLog,
} from '../actors/index.js';
import type {
  Clock,
  ControlResult,
  ShardOptions,
  SkuDefinition,
  SkuEvent,
  SkuUpdate,
} from '../actors/index.js';
import { JournalError } from '../persistence/journal/index.js';
import type { Journal, JournalPosition } from '../persistence/journal/index.js';

export interface RecoveryStats {
  events: number;
  payloads: number;
  bytes: number;
  ms: number;
  eventsPerSecond: number;
}

/** A batch or control call whose reply waits until the events before it are durable. */
interface Waiting {
  /** Events emitted up to and including this call's; it is released when that many are durable. */
  upTo: number;
  results: Float64Array | null;
  count: number;
  release: () => void;
}

export interface ShardHostHooks {
  /** Durable events, decoded, while someone subscribes (see `setForwarding`). */
  onEvents?: (events: SkuEvent[]) => void;
  onAppendFailed?: (error: Error) => void;
  /**
   * A bug surfaced in a journal callback (the shard's state can no longer be trusted). Without
   * this hook it is thrown from the callback, which would end a worker as an uncaught error.
   */
  onFault?: (error: unknown) => void;
}

/**
 * One shard with its journal: decides batches on the pure `Shard`, appends their events as
 * group commits, and releases each reply only when everything decided up to it is durable.
 *
 *   batch 1 ─decide─▶ events ─┐
 *   batch 2 ─decide─▶ events ─┼─▶ one append (write + fsync) ─▶ release replies 1, 2, 3 in order
 *   batch 3 ─decide─▶ events ─┘      while it is in flight, batches 4, 5... are decided and
 *                                    their events wait for the next append (pipelining)
 *
 * Stock is held from the moment of decision, so concurrent buyers can never be sold the same
 * unit. Replies are released strictly in order, so no reply (not even a duplicate's, or a
 * `sold_out` that depends on an earlier hold) gets ahead of the events it depends on.
 *
 * If an append fails, the shard stops deciding, answers every unreleased request with the
 * retriable `journal_unavailable`, rebuilds its state from what the journal actually holds
 * (the failed append may or may not have landed: a retry with the same idempotency key then
 * gets the original answer either way) and resumes. Pure of threads: the worker wires it to
 * messages, the simulation drives it directly.
 */
export class ShardHost {
  shard: Shard;
  private log: BinaryEventLog | null;
  private readonly waiting: Waiting[] = [];
  private waitingHead = 0;
  /** Events decided so far (since the last rebuild), and how many of them are durable. */
  private emitted = 0;
  private durable = 0;
  /** Events in the append in flight (decided before it started). */
  private pendingInFlight = 0;
  private appending = false;
  private rebuilding: Promise<void> | null = null;
  private forwarding = false;
  /** Set by `abandon`: nothing more is appended, released or rebuilt. */
  private abandoned = false;
  /** The latest append (what `abandon` waits for). */
  private lastAppend: Promise<unknown> = Promise.resolve();
  /** The journal position after the last payload whose events went to subscribers, if any. */
  private forwardedTo = 0;
  /** The journal position after the last durable payload: it only moves forward. */
  private position = 0;
  appendsFailed = 0;
  appends = 0;
  recovery: RecoveryStats | null = null;

  constructor(
    readonly index: number,
    private readonly options: ShardOptions,
    private readonly journal: Journal | null,
    private readonly clock: Clock,
    private readonly hooks: ShardHostHooks = {},
  ) {
    this.log = journal ? new BinaryEventLog() : null;
    this.shard = new Shard(options, this.log ?? nullEventLog, clock.now());
  }

  /** Rebuilds the shard from its journal. Call once before the first batch. */
  async recover(): Promise<RecoveryStats> {
    const started = performance.now();
    const shard = new Shard(this.options, this.log ?? nullEventLog, this.clock.now());
    let events = 0;
    let payloads = 0;
    let bytes = 0;
    // Payloads past what subscribers were sent: after a failed append that landed anyway (a
    // Kafka send that timed out after the broker took it), its events are in the journal but
    // were never forwarded; they go out once the rebuild has read everything.
    const unforwarded: Uint8Array[] = [];
    let end = 0;
    if (this.journal) {
      end = await this.journal.read(this.index, 0, (payload, position) => {
        events += shard.replayPayload(payload);
        payloads++;
        bytes += payload.length;
        if (this.forwarding && position > this.forwardedTo) unforwarded.push(payload);
      });
    }
    this.forwardedTo = end;
    this.position = end;
    for (const payload of unforwarded) this.forward(payload);
    this.shard = shard;
    this.shard.commandsApplied = 0;
    const ms = performance.now() - started;
    this.recovery = {
      events,
      payloads,
      bytes,
      ms,
      eventsPerSecond: ms > 0 ? (events / ms) * 1000 : 0,
    };
    return this.recovery;
  }

  get isRebuilding(): boolean {
    return this.rebuilding !== null;
  }

  /** Decides a batch into `out` and calls `release` once its answers may be sent. */
  applyBatch(bytes: Uint8Array, count: number, out: Float64Array, release: () => void): void {
    if (this.refusing) {
      fillStatus(out, count, Status.journal_unavailable);
      release();
      return;
    }
    this.shard.applyBatch(bytes, count, this.clock.now(), out);
    this.afterDecision(out, count, release);
  }

  /** Runs the expiry timer; the `expired` events are journaled like any others. */
  tick(): number {
    if (this.refusing) return 0;
    const n = this.shard.tick(this.clock.now());
    if (n > 0) this.afterDecision(null, 0, () => {});
    return n;
  }

  define(def: SkuDefinition): Promise<ControlResult> {
    return this.control(() => this.shard.define(def, this.clock.now()));
  }

  update(sku: string, update: SkuUpdate): Promise<ControlResult> {
    return this.control(() => this.shard.update(sku, update, this.clock.now()));
  }

  private control(decide: () => ControlResult): Promise<ControlResult> {
    if (this.refusing) return Promise.resolve({ status: Status.journal_unavailable });
    const result = decide();
    return new Promise((resolve) => {
      const results = new Float64Array(RESULT_STRIDE);
      this.afterDecision(results, 1, () =>
        resolve(
          results[0] === Status.journal_unavailable
            ? { status: Status.journal_unavailable }
            : result,
        ),
      );
    });
  }

  setForwarding(on: boolean): void {
    this.forwarding = on;
    // With no journal, events are only encoded while someone listens.
    if (!this.journal) {
      this.log = on ? new BinaryEventLog() : null;
      this.shard.log = this.log ?? nullEventLog;
    }
  }

  private afterDecision(out: Float64Array | null, count: number, release: () => void): void {
    const log = this.log;
    if (log) this.emitted = this.durable + this.pendingInFlight + log.count;
    if (!this.journal) {
      if (log && this.forwarding) this.forward(log.take());
      release();
      return;
    }
    if (this.emitted === this.durable && this.waitingHead === this.waiting.length) {
      release(); // nothing undurable before it: the common case once a sale is sold out
      return;
    }
    this.waiting.push({ upTo: this.emitted, results: out, count, release });
    this.pump();
  }

  /**
   * While rebuilding, and once given up (abandoned, or a rebuild failed for a reason waiting
   * will not cure), requests are refused with journal_unavailable, not decided.
   */
  private get refusing(): boolean {
    return this.rebuilding !== null || this.abandoned;
  }

  /**
   * Gives the shard up, as a crash would, for a shard that runs inline (a crashed worker's host
   * simply stops existing): no further append starts, the append in flight releases nothing when
   * it settles, a rebuild in progress stops at its next attempt. (Whoever abandons it stops
   * passing it batches and drops any reply it still gives.) Resolves once the append in flight,
   * if any, has settled, and so has anything the journal still sends underneath an append that
   * timed out, so a replacement that reads the journal after it sees everything this host will
   * ever write.
   */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.lastAppend.then(noop, noop);
    await this.journal?.settled?.(this.index).then(noop, noop);
  }

  private pump(): void {
    if (this.abandoned || this.appending || this.rebuilding || !this.log || this.log.count === 0)
      return;
    const payload = this.log.take()!;
    this.appending = true;
    this.pendingInFlight = this.emitted - this.durable;
    const target = this.emitted;
    this.appends++;
    let append: Promise<JournalPosition>;
    try {
      append = this.journal!.append(this.index, payload);
    } catch (err) {
      // A journal that throws instead of rejecting.
      append = Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
    this.lastAppend = append;
    append.then(
      (position) => {
        if (this.abandoned) return;
        try {
          if (target > this.emitted) assert.fail(`shard ${this.index}: more durable than decided`);
          if (position <= this.position) {
            assert.fail(`shard ${this.index}: journal position ${position} after ${this.position}`);
          }
          this.appending = false;
          this.pendingInFlight = 0;
          this.durable = target;
          this.position = position;
          this.forwardedTo = position;
          if (this.forwarding) this.forward(payload);
          this.releaseDurable();
          this.pump();
        } catch (err) {
          this.fault(err);
        }
      },
      (err: unknown) => {
        if (this.abandoned) return;
        this.appending = false;
        this.pendingInFlight = 0;
        void this.onAppendFailed(err instanceof Error ? err : new Error(String(err)));
      },
    );
  }

  private fault(err: unknown): void {
    if (this.hooks.onFault) this.hooks.onFault(err);
    else throw err;
  }

  private releaseDurable(): void {
    const w = this.waiting;
    while (this.waitingHead < w.length && w[this.waitingHead].upTo <= this.durable) {
      const item = w[this.waitingHead];
      w[this.waitingHead++] = DONE;
      item.release();
    }
    if (this.waitingHead === w.length) {
      w.length = 0;
      this.waitingHead = 0;
    }
  }

  private async onAppendFailed(error: Error): Promise<void> {
    this.appendsFailed++;
    this.hooks.onAppendFailed?.(error);
    let done: () => void = noop;
    this.rebuilding = new Promise((resolve) => (done = resolve));
    // Everything not yet released may or may not be in the journal: answer it retriably.
    const w = this.waiting;
    for (let i = this.waitingHead; i < w.length; i++) {
      const item = w[i];
      if (item.results) fillStatus(item.results, item.count, Status.journal_unavailable);
      item.release();
    }
    w.length = 0;
    this.waitingHead = 0;
    this.log = new BinaryEventLog();
    // Rebuild from what the journal holds; retry while it cannot be read. A journal that reads
    // but does not make sense (journal_corrupt, a replay that fails) will not heal by waiting:
    // that is a fault of the shard, reported and restarted as a crash is.
    for (let attempt = 0; !this.abandoned; attempt++) {
      try {
        this.durable = 0;
        this.emitted = 0;
        await this.recover();
        break;
      } catch (err) {
        if (!(err instanceof JournalError && err.retriable)) {
          this.abandoned = true; // its state no longer matches its journal: until replaced
          this.rebuilding = null;
          done();
          this.fault(err);
          return;
        }
        this.hooks.onAppendFailed?.(err);
        await new Promise((r) => setTimeout(r, Math.min(1000, 50 * 2 ** attempt)));
      }
    }
    this.rebuilding = null;
    done();
  }

  private forward(payload: Uint8Array | null): void {
    if (payload && this.hooks.onEvents) this.hooks.onEvents(decodeEvents(payload));
  }

  /** Resolves once every decision so far is durable (or answered, after a failure). */
  async flush(): Promise<void> {
    while (this.rebuilding) await this.rebuilding;
    if (this.journal && this.waitingHead < this.waiting.length) {
      await new Promise<void>((resolve) => this.afterDecision(null, 0, resolve));
    }
  }
}

function noop(): void {}

const DONE: Waiting = { upTo: 0, results: null, count: 0, release: () => {} };

function fillStatus(out: Float64Array, count: number, status: number): void {
  for (let i = 0; i < count; i++) {
    out[i * RESULT_STRIDE] = status;
    out[i * RESULT_STRIDE + 1] = 0;
    out[i * RESULT_STRIDE + 2] = 0;
  }
}
