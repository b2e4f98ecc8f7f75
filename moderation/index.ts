/**
 * Image moderation: a piscina pool of worker threads, each holding one onnxruntime session of an
 * image classifier (a ViT exported by Hugging Face Optimum), with main-side admission, dynamic
 * batching, timeouts and abort. The gateway's `POST /v1/moderation/images` is meant to be:
 *
 *   const moderator = await createModerator(loadConfig().moderation);
 *   try {
 *     const r = await moderator.classify(body, { contentType, signal });
 *     reply(200, r);                      // { verdict, scores, model, ms }
 *   } catch (err) {
 *     if (isModerationError(err)) reply(err.http, { code: err.code, message: err.message });
 *     else throw err;
 *   }
 *
 * See docs/moderation.md for the model export, the settings, the verdict rule and the codes.
 */
import { requirePackages } from '../config/index.js';
import type { ModerationSettings } from '../config/index.js';
import type { Moderator, ModeratorOptions } from './moderator.js';
import type { PreprocessSpec } from './model-dir.js';

export type {
  ClassifyOptions,
  ModerationResult,
  ModerationStats,
  Moderator,
  ModeratorOptions,
} from './moderator.js';

// sharp, piscina and onnxruntime-node load only when moderation is used: the face itself is
// light, so the gateway can take `acceptsContentType` and the error codes from here.

/** Starts the moderation pool (see moderator.ts). */
export async function createModerator(
  settings: ModerationSettings,
  options: ModeratorOptions = {},
): Promise<Moderator> {
  requirePackages(['piscina', 'onnxruntime-node', 'sharp'], 'Image moderation');
  const { createModerator: create } = await import('./moderator.js');
  return create(settings, options);
}

/** One image → its normalized model input (see preprocess.ts); loads sharp on first use. */
export async function preprocessImage(
  bytes: Uint8Array,
  spec: PreprocessSpec,
  maxPixels: number,
): Promise<Float32Array> {
  requirePackages(['sharp'], 'Image preprocessing');
  const { preprocessImage: preprocess } = await import('./preprocess.js');
  return preprocess(bytes, spec, maxPixels);
}
export {
  ModerationError,
  isModerationError,
  moderationErrors,
  moderationErrorCodes,
} from './errors.js';
export type { ModerationErrorCode } from './errors.js';
export { loadModelDir, preprocessSpecOf } from './model-dir.js';
export type { ModelSpec, PreprocessSpec, ResizeKernel } from './model-dir.js';
export { acceptsContentType, checkUpload, detectFormat } from './sniff.js';
export type { ImageFormat } from './sniff.js';
export { validateModerationSettings } from './settings.js';
export { softmaxInto, verdictOf, unsafeScore } from './verdict.js';
export type { Verdict, VerdictRule } from './verdict.js';
