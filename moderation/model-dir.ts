/**
 * Reads a model directory as Hugging Face Optimum exports it
 * (`optimum-cli export onnx --model <id> --task image-classification <dir>`):
 *
 *   <dir>/model.onnx                 the graph: input `pixel_values` [B,3,H,W], output `logits`
 *   <dir>/config.json                `id2label` (index → label), `_name_or_path`
 *   <dir>/preprocessor_config.json   `size`, `do_resize`, `resample`, `do_center_crop`,
 *                                    `crop_size`, `do_rescale`, `rescale_factor`,
 *                                    `do_normalize`, `image_mean`, `image_std`
 *
 * This runs on the main thread and never touches onnxruntime: it reads two small JSON files so
 * that a bad directory fails `createModerator` with a message naming the file and the key. The
 * workers check the ONNX graph itself against this spec when they load it.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { ModerationError } from './errors.js';

export type ResizeKernel = 'nearest' | 'linear' | 'cubic' | 'lanczos3';

export type Rgb = readonly [number, number, number];

/** How one image becomes one `[3, height, width]` slice of the input tensor. */
export interface PreprocessSpec {
  /** 'fill' stretches to `resizeWidth × resizeHeight` (ViTImageProcessor); 'shortest_edge'
   * scales so the short side is `shortestEdge`, keeping the aspect ratio. */
  readonly resizeMode: 'fill' | 'shortest_edge';
  readonly resizeWidth: number;
  readonly resizeHeight: number;
  readonly shortestEdge: number;
  /** Centre crop after resizing, or false. */
  readonly crop: false | { readonly width: number; readonly height: number };
  /** The tensor's spatial size: the crop if there is one, else the resize. */
  readonly width: number;
  readonly height: number;
  readonly kernel: ResizeKernel;
  /** Applied as `(pixel × rescaleFactor − mean[c]) / std[c]`; 1, 0 and 1 when disabled. */
  readonly rescaleFactor: number;
  readonly mean: Rgb;
  readonly std: Rgb;
}

export interface ModelSpec {
  readonly dir: string;
  readonly modelPath: string;
  /** `_name_or_path` from config.json, else the directory's name. */
  readonly name: string;
  /** Label of each logit, by index. */
  readonly labels: readonly string[];
  readonly preprocess: PreprocessSpec;
}

type Json = Record<string, unknown>;

function invalid(file: string, message: string, cause?: unknown): ModerationError {
  return new ModerationError('model_invalid', `${file}: ${message}`, { cause });
}

function readJson(path: string): Json {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw invalid(path, `cannot read or parse: ${(err as Error).message}`, err);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid(path, 'must hold a JSON object');
  }
  return parsed as Json;
}

function labelsOf(path: string, config: Json): string[] {
  const id2label = config.id2label;
  if (id2label === null || typeof id2label !== 'object' || Array.isArray(id2label)) {
    throw invalid(path, 'id2label must be an object like {"0": "normal", "1": "nsfw"}');
  }
  const entries = Object.entries(id2label as Json);
  const labels: string[] = new Array<string>(entries.length);
  for (const [key, label] of entries) {
    const index = Number(key);
    if (!Number.isInteger(index) || index < 0 || index >= entries.length) {
      throw invalid(path, `id2label keys must be 0..${entries.length - 1}, got '${key}'`);
    }
    if (typeof label !== 'string' || label.length === 0) {
      throw invalid(path, `id2label['${key}'] must be a non-empty string`);
    }
    labels[index] = label;
  }
  if (labels.length < 2) throw invalid(path, 'id2label must name at least two labels');
  if (new Set(labels).size !== labels.length) throw invalid(path, 'id2label has duplicate labels');
  return labels;
}

function positiveInt(path: string, key: string, v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 8192) {
    throw invalid(path, `${key} must be an integer from 1 to 8192, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** `size` is `{height, width}`, `{shortest_edge}` or a bare number (square). */
function sizeOf(
  path: string,
  size: unknown,
): Pick<PreprocessSpec, 'resizeMode' | 'resizeWidth' | 'resizeHeight' | 'shortestEdge'> {
  if (typeof size === 'number') {
    const s = positiveInt(path, 'size', size);
    return { resizeMode: 'fill', resizeWidth: s, resizeHeight: s, shortestEdge: 0 };
  }
  if (size !== null && typeof size === 'object') {
    const o = size as Json;
    if ('height' in o || 'width' in o) {
      const h = positiveInt(path, 'size.height', o.height);
      const w = positiveInt(path, 'size.width', o.width);
      return { resizeMode: 'fill', resizeWidth: w, resizeHeight: h, shortestEdge: 0 };
    }
    if ('shortest_edge' in o) {
      const s = positiveInt(path, 'size.shortest_edge', o.shortest_edge);
      return { resizeMode: 'shortest_edge', resizeWidth: 0, resizeHeight: 0, shortestEdge: s };
    }
  }
  const got = JSON.stringify(size);
  throw invalid(path, `size must be {height, width}, {shortest_edge} or a number, got ${got}`);
}

function rgbOf(path: string, key: string, v: unknown, fallback: Rgb): Rgb {
  if (v === undefined) return fallback;
  const arr = typeof v === 'number' ? [v, v, v] : v;
  const finite = (x: unknown) => typeof x === 'number' && Number.isFinite(x);
  if (!Array.isArray(arr) || arr.length !== 3 || !arr.every(finite)) {
    throw invalid(path, `${key} must be a number or 3 numbers, got ${JSON.stringify(v)}`);
  }
  return [arr[0] as number, arr[1] as number, arr[2] as number];
}

/** PIL resample codes, as preprocessor configs store them, to sharp kernels. */
function kernelOf(path: string, resample: unknown): ResizeKernel {
  if (resample === undefined) return 'linear';
  switch (resample) {
    case 0:
      return 'nearest';
    case 1:
      return 'lanczos3';
    case 2:
      return 'linear';
    case 3:
      return 'cubic';
    default:
      throw invalid(
        path,
        'resample must be 0 (nearest), 1 (lanczos), 2 (bilinear) or 3 (bicubic), ' +
          `got ${JSON.stringify(resample)}`,
      );
  }
}

function cropOf(path: string, pre: Json): PreprocessSpec['crop'] {
  if (pre.do_center_crop !== true) return false;
  const c = pre.crop_size;
  if (typeof c === 'number') {
    const s = positiveInt(path, 'crop_size', c);
    return { width: s, height: s };
  }
  if (c !== null && typeof c === 'object') {
    const o = c as Json;
    return {
      width: positiveInt(path, 'crop_size.width', o.width),
      height: positiveInt(path, 'crop_size.height', o.height),
    };
  }
  throw invalid(path, 'do_center_crop is true but crop_size is not {height, width} or a number');
}

/** Reads preprocessor_config.json into the spec the workers apply to every image. */
export function preprocessSpecOf(path: string, pre: Json): PreprocessSpec {
  if (pre.do_resize === false) {
    throw invalid(
      path,
      'do_resize false is not supported: the pool batches images, so every ' +
        'image must be resized to the model input size',
    );
  }
  const size = sizeOf(path, pre.size);
  let crop = cropOf(path, pre);
  // A shortest-edge resize keeps the aspect ratio; without a crop the tensors of two images
  // would differ in shape and could not share a batch, so crop to the square it implies.
  if (size.resizeMode === 'shortest_edge' && crop === false) {
    crop = { width: size.shortestEdge, height: size.shortestEdge };
  }
  const rescale = pre.do_rescale === false ? 1 : (pre.rescale_factor ?? 1 / 255);
  if (typeof rescale !== 'number' || !(rescale > 0) || !Number.isFinite(rescale)) {
    throw invalid(path, `rescale_factor must be a positive number, got ${JSON.stringify(rescale)}`);
  }
  const normalize = pre.do_normalize !== false;
  const half: Rgb = [0.5, 0.5, 0.5];
  const mean = normalize ? rgbOf(path, 'image_mean', pre.image_mean, half) : ([0, 0, 0] as const);
  const std = normalize ? rgbOf(path, 'image_std', pre.image_std, half) : ([1, 1, 1] as const);
  if (std.some((s) => s === 0)) throw invalid(path, 'image_std must not contain 0');
  return {
    ...size,
    crop,
    width: crop ? crop.width : size.resizeWidth,
    height: crop ? crop.height : size.resizeHeight,
    kernel: kernelOf(path, pre.resample),
    rescaleFactor: rescale,
    mean,
    std,
  };
}

/** Loads and validates a model directory; throws `model_invalid` naming the file and key. */
export function loadModelDir(dir: string): ModelSpec {
  const abs = resolve(dir);
  if (!existsSync(abs) || !statSync(abs).isDirectory()) {
    throw invalid(abs, 'model directory does not exist (set moderation.modelDir)');
  }
  const modelPath = join(abs, 'model.onnx');
  if (!existsSync(modelPath)) {
    throw invalid(modelPath, 'missing; export the model with Optimum first');
  }
  const configPath = join(abs, 'config.json');
  const config = readJson(configPath);
  const prePath = join(abs, 'preprocessor_config.json');
  const preprocess = preprocessSpecOf(prePath, readJson(prePath));
  const named = config._name_or_path;
  const name = typeof named === 'string' && named.length > 0 ? named : basename(abs);
  return { dir: abs, modelPath, name, labels: labelsOf(configPath, config), preprocess };
}
