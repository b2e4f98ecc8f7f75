import { field } from '../field.js';

/**
 * Image moderation: the worker pool that runs the ONNX classifier. Cross-field rules
 * (threads × intraOpThreads ≤ cores, reviewThreshold ≤ blockThreshold) are checked where the
 * pool is created, by `createModerator`, because they depend on the machine and on each other.
 */
export const moderationFields = [
  field({
    key: 'moderation.modelDir',
    kind: 'string',
    min: 1,
    default: './models/moderation',
    env: 'STOCKADE_MODERATION_MODEL_DIR',
    doc:
      'Directory exported by Hugging Face Optimum: model.onnx, config.json, ' +
      'preprocessor_config.json.',
  }),
  field({
    key: 'moderation.threads',
    kind: 'int',
    min: 1,
    max: 64,
    default: 1,
    env: 'STOCKADE_MODERATION_THREADS',
    doc:
      'Worker threads in the pool, each with its own model session; ' +
      'threads × intraOpThreads must not exceed the cores.',
  }),
  field({
    key: 'moderation.intraOpThreads',
    kind: 'int',
    min: 1,
    max: 64,
    default: 1,
    env: 'STOCKADE_MODERATION_INTRA_OP_THREADS',
    doc:
      'onnxruntime intra-op threads per session (the defaults leave the other cores to the ' +
      'purchase path).',
  }),
  field({
    key: 'moderation.priority',
    kind: 'enum',
    values: ['idle', 'low', 'normal'],
    default: 'idle',
    env: 'STOCKADE_MODERATION_PRIORITY',
    doc:
      'CPU priority of the model threads: `idle` (Linux SCHED_IDLE: they run only on CPU time ' +
      'nothing else wants, so a sale never waits for them), `low` (nice 19), `normal`.',
  }),
  field({
    key: 'moderation.queueMax',
    kind: 'int',
    min: 1,
    max: 100_000,
    default: 64,
    env: 'STOCKADE_MODERATION_QUEUE_MAX',
    doc: 'Images waiting for a worker before new ones are rejected as `moderation_overloaded`.',
  }),
  field({
    key: 'moderation.taskTimeoutMs',
    kind: 'int',
    min: 1,
    max: 600_000,
    default: 10_000,
    env: 'STOCKADE_MODERATION_TASK_TIMEOUT_MS',
    doc:
      'Longest an image may take, queue wait included, before it fails with ' +
      '`moderation_timeout`.',
  }),
  field({
    key: 'moderation.batchSizeMax',
    kind: 'int',
    min: 1,
    max: 256,
    default: 8,
    env: 'STOCKADE_MODERATION_BATCH_SIZE_MAX',
    doc: 'Images run together in one model call.',
  }),
  field({
    key: 'moderation.batchWaitMs',
    kind: 'int',
    min: 0,
    max: 10_000,
    default: 5,
    env: 'STOCKADE_MODERATION_BATCH_WAIT_MS',
    doc:
      'How long the oldest waiting image may wait for others to fill its batch while a ' +
      'worker is idle.',
  }),
  field({
    key: 'moderation.maxBytes',
    kind: 'int',
    min: 1,
    max: 1_073_741_824,
    default: 10_485_760,
    env: 'STOCKADE_MODERATION_MAX_BYTES',
    doc: 'Largest upload accepted, in bytes (`image_too_large` beyond).',
  }),
  field({
    key: 'moderation.maxPixels',
    kind: 'int',
    min: 1,
    max: 268_402_689,
    default: 25_000_000,
    env: 'STOCKADE_MODERATION_MAX_PIXELS',
    doc:
      'Largest width × height accepted, read from the header before decoding ' +
      '(`image_too_many_pixels`).',
  }),
  field({
    key: 'moderation.unsafeLabels',
    kind: 'list',
    default: ['nsfw'],
    env: 'STOCKADE_MODERATION_UNSAFE_LABELS',
    doc: 'Model labels (from config.json id2label) whose probability counts as unsafe.',
  }),
  field({
    key: 'moderation.reviewThreshold',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.5,
    env: 'STOCKADE_MODERATION_REVIEW_THRESHOLD',
    doc: 'Unsafe probability from which an image is held for human review.',
  }),
  field({
    key: 'moderation.blockThreshold',
    kind: 'number',
    min: 0,
    max: 1,
    default: 0.9,
    env: 'STOCKADE_MODERATION_BLOCK_THRESHOLD',
    doc: 'Unsafe probability from which an image is blocked outright.',
  }),
] as const;
