/**
 * The main-side API of the moderation pool: admission, dynamic batching, deadlines, abort.
 *
 *   classify() ── sniff + size check (main, ~µs) ── PendingList (≤ queueMax waiting)
 *        │                                                │ a worker is idle and
 *        │                                                │ (batchSizeMax wait, or the oldest
 *        │                                                │  has waited batchWaitMs)
 *        ▼                                                ▼
 *   Promise<ModerationResult> ◀── verdict (main) ◀── piscina worker: decode all → 1 session.run
 *
 * Where batching happens, and why here. The batcher runs on the main thread and groups *encoded*
 * images; the worker that receives a batch decodes its images (concurrently, on libuv's pool)
 * and runs them through the model in one call. Grouping on the main thread is the only place
 * that sees every waiting image: piscina hands one task at a time to a worker, so a worker
 * cannot batch what it cannot see. Grouping encoded bytes rather than decoded tensors keeps it to
 * one round trip per batch (decode-then-batch would cost two), and moves ~50 KB per JPEG across
 * the thread boundary instead of 600 KB of floats. The price is that a batch's decoding is not
 * overlapped with that worker's previous model run; decoding a 224×224 input takes a few ms
 * against hundreds for ViT-Base, and with threads > 1 the other workers keep the cores busy.
 *
 * A batch is only sent when a worker is idle, so piscina's own queue stays empty and images wait
 * here, where they can still join a batch, time out or be aborted cheaply. Abort and timeout
 * answer the caller at once; an image already sent is flagged in a SharedArrayBuffer so the
 * worker leaves it out of the model run if it has not started. Workers are never terminated to
 * cancel a task (piscina's abort would do that): each holds a loaded model, and the other
 * images of its batch are still wanted.
 */
import { access } from 'node:fs/promises';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
// On glibc, a native library first opened by a worker thread is unloaded when that worker exits,
// which crashes libvips; loading sharp here keeps it resident
// (https://github.com/lovell/sharp/issues/2263). Nothing runs on this thread.
import 'sharp';
import { Piscina } from 'piscina';
import { settledWithin } from '../actors/index.js';
import type { ModerationSettings } from '../config/index.js';
import { ModerationError } from './errors.js';
import type { ModerationErrorCode } from './errors.js';
import type { BatchReply, BatchTask, Reply, Task, WorkerInit } from './messages.js';
import { ItemStatus, TaskKind } from './messages.js';
import { loadModelDir } from './model-dir.js';
import type { ModelSpec } from './model-dir.js';
import { PendingImage, PendingList, State } from './pending.js';
import { checkUpload } from './sniff.js';
import { unsafeIndicesOf, validateModerationSettings } from './settings.js';
import { verdictOf } from './verdict.js';
import type { Verdict, VerdictRule } from './verdict.js';

export interface ModerationResult {
  verdict: Verdict;
  /** Probability per model label; they sum to 1. */
  scores: Record<string, number>;
  /** `_name_or_path` from the model's config.json, else the model directory's name. */
  model: string;
  /** Wall time from `classify()` to the answer, queue wait included. */
  ms: number;
}

export interface ClassifyOptions {
  /** The upload's Content-Type; checked against the bytes when given. */
  contentType?: string;
  signal?: AbortSignal;
}

export interface ModerationStats {
  /** Images accepted into the queue. */
  submitted: number;
  /** Refused before queueing: too large, wrong type, not an image (overload counted apart). */
  rejected: number;
  overloaded: number;
  completed: number;
  /** Answered with an error by a worker (bad image data, inference fault). */
  failed: number;
  timedOut: number;
  aborted: number;
  waiting: number;
  inFlight: number;
  busyWorkers: number;
  /** `session.run` calls, and the images they carried. */
  runs: number;
  imagesRun: number;
  /** `batchSizeCounts[k]` = runs that carried k images. */
  batchSizeCounts: number[];
  /** Images sent to a worker but dropped before the run because they were cancelled. */
  cancelledBeforeRun: number;
  /** Worker threads that died outside a task (piscina starts a replacement). */
  workerErrors: number;
}

export interface ModeratorOptions {
  /** Cores to validate `threads × intraOpThreads` against; default `os.availableParallelism()`. */
  cores?: number;
}

function workerFile(): string {
  // Same extension as this module: `.ts` under tsx (tests), `.js` once compiled to dist/.
  const self = fileURLToPath(import.meta.url);
  return fileURLToPath(new URL(`./moderation-worker${extname(self)}`, import.meta.url));
}

/** Validates settings, loads the model dir, starts the pool and waits until a worker is ready. */
export async function createModerator(
  settings: ModerationSettings,
  options: ModeratorOptions = {},
): Promise<Moderator> {
  validateModerationSettings(settings, options.cores);
  const model = loadModelDir(settings.modelDir);
  const rule: VerdictRule = {
    unsafeIndices: unsafeIndicesOf(settings, model),
    reviewThreshold: settings.reviewThreshold,
    blockThreshold: settings.blockThreshold,
  };
  const init: WorkerInit = {
    modelPath: model.modelPath,
    intraOpThreads: settings.intraOpThreads,
    priority: settings.priority,
    batchSizeMax: settings.batchSizeMax,
    maxPixels: settings.maxPixels,
    labelCount: model.labels.length,
    preprocess: model.preprocess,
  };
  // The workers lower their own priority (moderation.priority), and a thread inherits the
  // scheduling policy and nice value of the thread that creates it. libuv's thread pool is one
  // per process and is created by whichever thread first queues work on it: touch it from this
  // thread first, so it is never born lowered under a moderation worker (the journal's fsyncs
  // run on it).
  await access(model.modelPath);
  const pool = new Piscina<Task, Reply>({
    filename: workerFile(),
    minThreads: settings.threads,
    maxThreads: settings.threads,
    idleTimeout: Number.POSITIVE_INFINITY,
    concurrentTasksPerWorker: 1,
    // We send a batch only to an idle worker, so this bound is never reached; it is a backstop.
    maxQueue: settings.threads,
    workerData: init,
  });
  const moderator = new Moderator(settings, model, rule, pool);
  await moderator.ready();
  return moderator;
}

const codeOf = (code: ModerationErrorCode, message: string) => new ModerationError(code, message);

export class Moderator {
  readonly model: ModelSpec;
  /** As validated; e.g. the gateway caps request bodies at `settings.maxBytes`. */
  readonly settings: ModerationSettings;
  private readonly rule: VerdictRule;
  private readonly pool: Piscina<Task, Reply>;
  private readonly list = new PendingList();
  private readonly labelCount: number;
  private busyWorkers = 0;
  private closing: Promise<void> | null = null;
  private readonly batches = new Set<Promise<void>>();
  private deadlineTimer: NodeJS.Timeout | null = null;
  private batchTimer: NodeJS.Timeout | null = null;
  private pumpScheduled: NodeJS.Immediate | null = null;
  private readonly counts = {
    submitted: 0,
    rejected: 0,
    overloaded: 0,
    completed: 0,
    failed: 0,
    timedOut: 0,
    aborted: 0,
    runs: 0,
    imagesRun: 0,
    cancelledBeforeRun: 0,
    workerErrors: 0,
  };
  private readonly batchSizeCounts: number[];
  private readonly onDeadline = () => this.expire();
  private readonly onBatchTimer = () => {
    this.batchTimer = null;
    this.pump();
  };
  private readonly onPumpImmediate = () => {
    this.pumpScheduled = null;
    this.pump();
  };

  constructor(
    settings: ModerationSettings,
    model: ModelSpec,
    rule: VerdictRule,
    pool: Piscina<Task, Reply>,
  ) {
    this.settings = settings;
    this.model = model;
    this.rule = rule;
    this.pool = pool;
    this.labelCount = model.labels.length;
    this.batchSizeCounts = new Array<number>(settings.batchSizeMax + 1).fill(0);
    // A worker that dies outside a task is replaced by piscina; the task it held fails on its
    // own promise. Without a listener, 'error' would throw on this thread.
    pool.on('error', () => {
      this.counts.workerErrors++;
    });
  }

  /** Resolves once a worker has opened the model; rejects with `model_invalid` otherwise. */
  async ready(): Promise<void> {
    const ping = () => this.pool.run({ kind: TaskKind.ping });
    const replies = await Promise.allSettled(Array.from({ length: this.settings.threads }, ping));
    for (const r of replies) {
      const failure =
        r.status === 'rejected'
          ? new ModerationError('model_invalid', `a worker failed to start: ${String(r.reason)}`, {
              cause: r.reason,
            })
          : r.value.kind === 'init_failed'
            ? new ModerationError(r.value.code, r.value.message)
            : null;
      if (failure) {
        await this.pool.destroy();
        throw failure;
      }
    }
  }

  /**
   * Classifies one uploaded image. Rejects with a `ModerationError` whose `code` and
   * `http` status the gateway can answer with. The moderator reads `image` until the promise
   * settles; do not reuse its buffer before then.
   */
  // async so that every refusal below is a rejection, never a synchronous throw; the body up to
  // `return` still runs synchronously, so images are admitted in call order.
  async classify(image: Uint8Array, opts: ClassifyOptions = {}): Promise<ModerationResult> {
    if (this.closing) throw codeOf('moderation_closed', 'the moderator is closed');
    const signal = opts.signal ?? null;
    if (signal?.aborted) {
      this.counts.aborted++;
      throw codeOf('moderation_aborted', 'aborted before it was queued');
    }
    try {
      checkUpload(image, opts.contentType, this.settings.maxBytes);
    } catch (err) {
      this.counts.rejected++;
      throw err;
    }
    if (this.list.waiting >= this.settings.queueMax) {
      this.counts.overloaded++;
      const message = `${this.list.waiting} images wait (moderation.queueMax)`;
      throw codeOf('moderation_overloaded', message);
    }
    return new Promise<ModerationResult>((resolve, reject) => {
      this.admit(image, signal, resolve, reject);
    });
  }

  private admit(
    image: Uint8Array,
    signal: AbortSignal | null,
    resolve: (r: ModerationResult) => void,
    reject: (err: unknown) => void,
  ): void {
    const p = new PendingImage(
      image,
      performance.now(),
      this.settings.taskTimeoutMs,
      signal,
      resolve as (v: unknown) => void,
      reject,
    );
    if (signal) {
      p.onAbort = () => this.fail(p, codeOf('moderation_aborted', 'aborted by the caller'));
      signal.addEventListener('abort', p.onAbort, { once: true });
    }
    this.list.append(p);
    this.counts.submitted++;
    this.armDeadline();
    // Pump at the end of this event-loop turn, so images that arrive together share a batch.
    this.pumpScheduled ??= setImmediate(this.onPumpImmediate);
  }

  /** Sends batches while a worker is idle and a batch is due. */
  private pump(): void {
    const { threads, batchSizeMax, batchWaitMs } = this.settings;
    while (this.busyWorkers < threads && this.list.waiting > 0) {
      const waited = performance.now() - this.list.waitHead!.admittedAt;
      if (this.list.waiting < batchSizeMax && waited < batchWaitMs) {
        this.batchTimer ??= setTimeout(this.onBatchTimer, Math.ceil(batchWaitMs - waited));
        return;
      }
      this.dispatch(this.list.takeWaiting(Math.min(this.list.waiting, batchSizeMax)));
    }
  }

  private dispatch(items: PendingImage[]): void {
    let total = 0;
    for (const p of items) total += p.bytes.byteLength;
    const bytes = new ArrayBuffer(total);
    const view = new Uint8Array(bytes);
    const lengths = new Uint32Array(items.length);
    const cancelled = new Int32Array(new SharedArrayBuffer(4 * items.length));
    let at = 0;
    for (let i = 0; i < items.length; i++) {
      const p = items[i];
      view.set(p.bytes, at);
      at += p.bytes.byteLength;
      lengths[i] = p.bytes.byteLength;
      p.cancelled = cancelled;
      p.slot = i;
    }
    const task: BatchTask = { kind: TaskKind.batch, bytes, lengths, cancelled };
    this.busyWorkers++;
    const done = this.pool
      .run(task, { transferList: [bytes] })
      .then(
        (reply) => this.onReply(items, reply),
        (err: unknown) => this.failBatch(items, err),
      )
      .finally(() => {
        this.batches.delete(done);
        this.busyWorkers--;
        this.pump();
      });
    this.batches.add(done);
  }

  private onReply(items: PendingImage[], reply: Reply): void {
    if (reply.kind !== 'batch') {
      const err = reply.kind === 'init_failed' ? codeOf(reply.code, reply.message) : null;
      this.failBatch(items, err ?? new Error(`unexpected reply '${reply.kind}' to a batch`));
      return;
    }
    this.record(reply);
    for (const e of reply.errors) {
      const p = items[e.index];
      if (p.state === State.settled) continue;
      this.counts.failed++;
      this.fail(p, codeOf(e.code, e.message), false);
    }
    for (let i = 0; i < items.length; i++) {
      const p = items[i];
      if (p.state === State.settled || reply.status[i] !== ItemStatus.ok) continue;
      this.answer(p, reply.probs, i * this.labelCount);
    }
  }

  private record(reply: BatchReply): void {
    if (reply.ranSize > 0) {
      this.counts.runs++;
      this.counts.imagesRun += reply.ranSize;
      this.batchSizeCounts[reply.ranSize]++;
    }
    for (let i = 0; i < reply.status.length; i++) {
      if (reply.status[i] === ItemStatus.cancelled) this.counts.cancelledBeforeRun++;
    }
  }

  private failBatch(items: PendingImage[], err: unknown): void {
    const closed = this.closing !== null;
    for (const p of items) {
      if (p.state === State.settled) continue;
      this.counts.failed++;
      const e =
        err instanceof ModerationError
          ? err
          : new ModerationError(
              closed ? 'moderation_closed' : 'moderation_inference_failed',
              `moderation worker failed: ${(err as Error)?.message ?? String(err)}`,
              { cause: err },
            );
      this.fail(p, e, false);
    }
  }

  private answer(p: PendingImage, probs: Float32Array, offset: number): void {
    const scores: Record<string, number> = {};
    const labels = this.model.labels;
    for (let j = 0; j < labels.length; j++) scores[labels[j]] = probs[offset + j];
    const result: ModerationResult = {
      verdict: verdictOf(probs, offset, this.rule),
      scores,
      model: this.model.name,
      ms: performance.now() - p.admittedAt,
    };
    this.release(p);
    this.counts.completed++;
    p.resolve(result);
  }

  /** Settles `p` with an error; for timeouts and aborts, also flags it for its worker. */
  private fail(p: PendingImage, err: ModerationError, cancel = true): void {
    if (p.state === State.settled) return;
    if (cancel) {
      if (p.state === State.inFlight) Atomics.store(p.cancelled, p.slot, 1);
      if (err.code === 'moderation_timeout') this.counts.timedOut++;
      else if (err.code === 'moderation_aborted') this.counts.aborted++;
    }
    this.release(p);
    p.reject(err);
  }

  private release(p: PendingImage): void {
    if (p.signal && p.onAbort) p.signal.removeEventListener('abort', p.onAbort);
    p.onAbort = null;
    this.list.remove(p);
    if (this.list.head === null && this.deadlineTimer !== null) {
      // Nothing left to time out: do not keep the process alive for taskTimeoutMs.
      clearTimeout(this.deadlineTimer);
      this.deadlineTimer = null;
    }
  }

  private armDeadline(): void {
    const head = this.list.head;
    if (this.deadlineTimer !== null || head === null) return;
    const delayMs = Math.max(0, Math.ceil(head.deadline - performance.now()));
    this.deadlineTimer = setTimeout(this.onDeadline, delayMs);
  }

  private expire(): void {
    this.deadlineTimer = null;
    const now = performance.now();
    const ms = this.settings.taskTimeoutMs;
    for (let p = this.list.head; p !== null && p.deadline <= now; p = this.list.head) {
      const where = p.state === State.waiting ? 'waiting for a worker' : 'in the model';
      const message = `no verdict within ${ms} ms (moderation.taskTimeoutMs; ${where})`;
      this.fail(p, codeOf('moderation_timeout', message));
    }
    this.armDeadline();
  }

  stats(): ModerationStats {
    return {
      ...this.counts,
      waiting: this.list.waiting,
      inFlight: this.list.inFlight,
      busyWorkers: this.busyWorkers,
      batchSizeCounts: [...this.batchSizeCounts],
    };
  }

  /**
   * Stops taking images, fails the waiting ones with `moderation_closed`, lets the batches
   * already in a worker finish and answer (for at most `taskTimeoutMs` plus a second: a batch
   * stuck in native code fails with `moderation_closed` instead of holding the close up), then
   * stops the workers. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.pumpScheduled) clearImmediate(this.pumpScheduled);
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.pumpScheduled = null;
    this.batchTimer = null;
    while (this.list.waitHead !== null) {
      const err = codeOf('moderation_closed', 'the moderator closed before this image ran');
      this.fail(this.list.waitHead, err);
    }
    await settledWithin(Promise.allSettled([...this.batches]), this.settings.taskTimeoutMs + 1_000);
    while (this.list.head !== null) {
      this.fail(
        this.list.head,
        codeOf('moderation_closed', 'the moderator closed while this image ran'),
      );
    }
    if (this.deadlineTimer) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = null;
    await this.pool.destroy();
  }
}
