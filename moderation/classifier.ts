/**
 * The worker side of the pool: one onnxruntime session, opened once when the worker starts,
 * and the batch step — decode every image of a batch concurrently, pack the survivors into one
 * NCHW tensor, one `session.run`, softmax. Only `moderation-worker.ts` imports this.
 */
import * as ort from 'onnxruntime-node';
import { isModerationError, ModerationError } from './errors.js';
import type { ModerationErrorCode } from './errors.js';
import type { BatchReply, BatchTask, ItemError, WorkerInit } from './messages.js';
import { ItemStatus } from './messages.js';
import { decodeRgb, normalizationTable, writeNormalized } from './preprocess.js';
import { softmaxInto } from './verdict.js';

const INPUT = 'pixel_values';

function modelInvalid(message: string): ModerationError {
  return new ModerationError('model_invalid', message);
}

/** Checks the graph against what the configs promised, so a mismatch fails at startup. */
type Shape = readonly (number | string)[];

function checkSession(session: ort.InferenceSession, init: WorkerInit): Shape {
  const at = init.modelPath;
  const input = session.inputMetadata.find((m) => m.name === INPUT);
  if (!input || !input.isTensor || input.type !== 'float32') {
    const names = session.inputNames.join(', ');
    throw modelInvalid(`${at}: no float32 input named '${INPUT}' (inputs: ${names})`);
  }
  const output = session.outputMetadata[0];
  if (!output || !output.isTensor) throw modelInvalid(`${at}: no tensor output`);
  const [batch, channels, height, width] = input.shape;
  const { width: w, height: h } = init.preprocess;
  if (input.shape.length !== 4 || channels !== 3) {
    const shape = input.shape.join(', ');
    throw modelInvalid(`${at}: input ${INPUT} must be [batch, 3, height, width], got [${shape}]`);
  }
  const fits = (dim: number | string, want: number) => typeof dim === 'string' || dim === want;
  if (!fits(height, h) || !fits(width, w)) {
    throw modelInvalid(
      `${at}: input is ${String(height)}×${String(width)} but preprocessor_config.json ` +
        `resizes to ${h}×${w}`,
    );
  }
  if (typeof batch === 'number' && init.batchSizeMax > 1) {
    throw modelInvalid(
      `${at}: the batch dimension is fixed at ${batch}; export the model with a dynamic ` +
        `batch axis or set config.moderation.batchSizeMax to 1`,
    );
  }
  const labels = output.shape[output.shape.length - 1];
  if (typeof labels === 'number' && labels !== init.labelCount) {
    throw modelInvalid(
      `${at}: the model outputs ${labels} logits but config.json id2label has ` +
        `${init.labelCount} labels`,
    );
  }
  return input.shape;
}

export class Classifier {
  readonly inputShape: Shape;
  private readonly session: ort.InferenceSession;
  private readonly init: WorkerInit;
  private readonly lut: Float32Array;
  /** Reused by every batch: one worker runs one batch at a time. */
  private readonly input: Float32Array;
  private readonly imageFloats: number;

  private constructor(session: ort.InferenceSession, init: WorkerInit, inputShape: Shape) {
    this.session = session;
    this.init = init;
    this.inputShape = inputShape;
    this.lut = normalizationTable(init.preprocess);
    this.imageFloats = 3 * init.preprocess.width * init.preprocess.height;
    this.input = new Float32Array(this.imageFloats * init.batchSizeMax);
  }

  static async open(init: WorkerInit): Promise<Classifier> {
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(init.modelPath, {
        executionProviders: ['cpu'],
        graphOptimizationLevel: 'all',
        executionMode: 'sequential',
        intraOpNumThreads: init.intraOpThreads,
        interOpNumThreads: 1,
      });
    } catch (err) {
      const message = `${init.modelPath}: onnxruntime cannot load it: ${(err as Error).message}`;
      throw new ModerationError('model_invalid', message, { cause: err });
    }
    const classifier = new Classifier(session, init, checkSession(session, init));
    // The first run allocates the arena and picks kernels; pay for it now, not on a request.
    await classifier.infer(1);
    return classifier;
  }

  private async infer(images: number): Promise<Float32Array> {
    const { width, height } = this.init.preprocess;
    const data = this.input.subarray(0, images * this.imageFloats);
    const feeds = { [INPUT]: new ort.Tensor('float32', data, [images, 3, height, width]) };
    const out = await this.session.run(feeds);
    const logits = out[this.session.outputNames[0]];
    const values = logits.data as Float32Array;
    if (values.length !== images * this.init.labelCount) {
      const want = `${images} images × ${this.init.labelCount} labels`;
      throw new Error(`model returned ${values.length} logits for ${want}`);
    }
    return values;
  }

  async classifyBatch(task: BatchTask): Promise<BatchReply> {
    const n = task.lengths.length;
    const status = new Uint8Array(n);
    const errors: ItemError[] = [];
    const started = performance.now();
    const rgb = await this.decodeAll(task, status, errors);
    // Gather the survivors into consecutive rows; an image cancelled while we decoded is dropped.
    const rows: number[] = [];
    for (let i = 0; i < n; i++) {
      if (status[i] !== ItemStatus.ok) continue;
      if (Atomics.load(task.cancelled, i) !== 0) {
        status[i] = ItemStatus.cancelled;
        continue;
      }
      writeNormalized(rgb[i]!, this.lut, this.input, rows.length * this.imageFloats);
      rows.push(i);
    }
    const decoded = performance.now();
    const probs = new Float32Array(n * this.init.labelCount);
    if (rows.length > 0) await this.runRows(rows, status, errors, probs);
    const preprocessMs = decoded - started;
    const inferenceMs = rows.length > 0 ? performance.now() - decoded : 0;
    const ranSize = rows.length;
    return { kind: 'batch', status, probs, errors, ranSize, preprocessMs, inferenceMs };
  }

  private async decodeAll(
    task: BatchTask,
    status: Uint8Array,
    errors: ItemError[],
  ): Promise<(Buffer | null)[]> {
    // One image at a time: sharp decodes on libuv's thread pool, which the whole process
    // shares (the file journal's fdatasync runs there too), so a worker never takes more than
    // one of its threads, whatever the batch size. An image cancelled meanwhile is skipped.
    const spec = this.init.preprocess;
    let at = 0;
    const rgb: (Buffer | null)[] = [];
    for (let i = 0; i < task.lengths.length; i++) {
      const bytes = new Uint8Array(task.bytes, at, task.lengths[i]);
      at += task.lengths[i];
      if (Atomics.load(task.cancelled, i) !== 0) {
        status[i] = ItemStatus.cancelled;
        rgb.push(null);
        continue;
      }
      try {
        rgb.push(await decodeRgb(bytes, spec, this.init.maxPixels));
      } catch (err) {
        status[i] = ItemStatus.failed;
        errors.push(itemError(i, err));
        rgb.push(null);
      }
    }
    return rgb;
  }

  private async runRows(
    rows: number[],
    status: Uint8Array,
    errors: ItemError[],
    probs: Float32Array,
  ): Promise<void> {
    const L = this.init.labelCount;
    let logits: Float32Array;
    try {
      logits = await this.infer(rows.length);
    } catch (err) {
      for (const i of rows) {
        status[i] = ItemStatus.failed;
        const message = `model run failed: ${(err as Error).message}`;
        errors.push({ index: i, code: 'moderation_inference_failed', message });
      }
      return;
    }
    const rowProbs = new Float32Array(rows.length * L);
    softmaxInto(logits, rows.length, L, rowProbs);
    for (let r = 0; r < rows.length; r++) {
      probs.set(rowProbs.subarray(r * L, (r + 1) * L), rows[r] * L);
    }
  }
}

function itemError(index: number, err: unknown): ItemError {
  if (isModerationError(err)) return { index, code: err.code, message: err.message };
  // Anything else from the decoder is an unexpected fault, not a property of the image.
  const code: ModerationErrorCode = 'moderation_inference_failed';
  const message = `preprocessing failed: ${(err as Error)?.message ?? String(err)}`;
  return { index, code, message };
}
