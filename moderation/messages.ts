/**
 * Everything that crosses the main ↔ worker boundary of the moderation pool, and the only
 * module both sides import. Values here survive structured clone: plain objects, typed arrays,
 * and error *codes* (never error instances: clone drops their class).
 *
 *   main (moderator.ts)                         worker (moderation-worker.ts → classifier.ts)
 *   ───────────────────                         ─────────────────────────────────────────────
 *   WorkerInit  ── piscina workerData ────────▶ open one InferenceSession, warm it up
 *   PingTask    ──────────────────────────────▶ PingReply   (session ready, or why not)
 *   BatchTask   ── bytes transferred ─────────▶ preprocess all, one session.run
 *               ◀──────────────────────────── BatchReply  (probabilities + per-image status)
 *   cancelled[] ── SharedArrayBuffer ────────▶ read just before session.run: skip dead images
 */
import type { ModerationSettings } from '../config/index.js';
import type { ModerationErrorCode } from './errors.js';
import type { PreprocessSpec } from './model-dir.js';

export interface WorkerInit {
  readonly modelPath: string;
  readonly intraOpThreads: number;
  /** Priority the worker thread takes before it opens the session (its ORT threads inherit it). */
  readonly priority: ModerationSettings['priority'];
  readonly batchSizeMax: number;
  readonly maxPixels: number;
  readonly labelCount: number;
  readonly preprocess: PreprocessSpec;
}

export const TaskKind = { ping: 1, batch: 2 } as const;

export interface PingTask {
  readonly kind: typeof TaskKind.ping;
}

export interface BatchTask {
  readonly kind: typeof TaskKind.batch;
  /** The batch's images back to back; transferred, not copied. */
  readonly bytes: ArrayBuffer;
  /** Byte length of each image in `bytes`, in order. */
  readonly lengths: Uint32Array;
  /**
   * On a SharedArrayBuffer: the main thread stores 1 at `i` (Atomics) when image `i` timed out
   * or was aborted, so the worker leaves it out of the model run if it has not started yet.
   */
  readonly cancelled: Int32Array;
}

export type Task = PingTask | BatchTask;

export interface PingReply {
  readonly kind: 'ready';
  readonly inputShape: readonly (number | string)[];
}

/** The worker could not open or check its session; every task gets this answer. */
export interface InitFailedReply {
  readonly kind: 'init_failed';
  readonly code: ModerationErrorCode;
  readonly message: string;
}

export const ItemStatus = { ok: 0, cancelled: 1, failed: 2 } as const;

export interface ItemError {
  readonly index: number;
  readonly code: ModerationErrorCode;
  readonly message: string;
}

export interface BatchReply {
  readonly kind: 'batch';
  /** `ItemStatus` per image. */
  readonly status: Uint8Array;
  /** `images × labels` probabilities; rows of images that are not `ok` are zero. */
  readonly probs: Float32Array;
  /** One entry per `failed` image. */
  readonly errors: readonly ItemError[];
  /** Images that went into the one `session.run`; 0 when none did. */
  readonly ranSize: number;
  readonly preprocessMs: number;
  readonly inferenceMs: number;
}

export type Reply = PingReply | InitFailedReply | BatchReply;
