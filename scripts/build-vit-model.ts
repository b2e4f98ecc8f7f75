/**
 * Builds a genuine ViT image classifier as ONNX, with seeded random weights, in the layout a
 * Hugging Face Optimum export has: `model.onnx`, `config.json`, `preprocessor_config.json`.
 * Nothing can be downloaded where Stockade's tests run, so this is how the moderation pool gets a
 * real model to load: tiny for tests, ViT-Base-sized for the benchmark.
 *
 *   npx tsx scripts/build-vit-model.ts --out test/fixtures/models/vit-tiny --size tiny
 *   npx tsx scripts/build-vit-model.ts --out models/vit-base --size base --seed 7
 *
 * The graph is the ViT forward pass spelled out in plain ONNX ops (opset 17), the same shape
 * `ViTForImageClassification` exports to:
 *
 *   pixel_values [B,3,S,S]
 *     └─ Conv(k=p, stride=p) → Reshape/Transpose → [B,N,D]      patch embedding
 *     └─ Concat(Expand(cls), patches) + position embeddings     [B,T,D], T = N + 1
 *     └─ L × pre-norm encoder block:
 *          x += Wo·MHSA(LayerNorm(x))       Q/K/V MatMuls, heads via Reshape+Transpose,
 *                                           softmax(QKᵀ/√d)·V
 *          x += W2·GELU(W1·LayerNorm(x))    GELU = x·½·(1+erf(x/√2))
 *     └─ LayerNorm → Gather(token 0) → MatMul + bias → logits [B,labels]
 *
 * The batch dimension is symbolic (`batch_size`) so the pool can run several images in one
 * `session.run`. This file depends on onnx-proto, a devDependency, which is why it lives in
 * `scripts/` and not in the shipped `moderation/` folder.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { endianness } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';

// onnx-proto is CommonJS (`module.exports = $root`), so its namespace is the default export.
const { onnx } = onnxProto;

export interface VitOptions {
  /** Square input side in pixels; must be a multiple of `patchSize`. */
  imageSize: number;
  patchSize: number;
  hiddenSize: number;
  numHeads: number;
  numLayers: number;
  /** Width of the MLP inside each encoder block (ViT-Base: 3072 = 4 × hidden). */
  mlpSize: number;
  labels: string[];
  seed: number;
  layerNormEps: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  /** Written to `config.json` as `_name_or_path`; the pool reports it as the model name. */
  name: string;
  /** null (the default) for a symbolic `batch_size`; a number fixes it (to test rejection). */
  fixedBatchSize: number | null;
}

export const VIT_TINY: Readonly<VitOptions> = Object.freeze<VitOptions>({
  imageSize: 32,
  patchSize: 8,
  hiddenSize: 32,
  numHeads: 2,
  numLayers: 2,
  mlpSize: 64,
  labels: ['normal', 'nsfw'],
  seed: 1,
  layerNormEps: 1e-12,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
  name: 'stockade/vit-tiny-random',
  fixedBatchSize: null,
});

export const VIT_BASE: Readonly<VitOptions> = Object.freeze<VitOptions>({
  ...VIT_TINY,
  imageSize: 224,
  patchSize: 16,
  hiddenSize: 768,
  numHeads: 12,
  numLayers: 12,
  mlpSize: 3072,
  name: 'stockade/vit-base-patch16-224-random',
});

/** Matrices are stored `[in, out]` row-major, i.e. ready for `x · W`. */
export interface VitLayerWeights {
  ln1Scale: Float32Array;
  ln1Bias: Float32Array;
  qW: Float32Array;
  qB: Float32Array;
  kW: Float32Array;
  kB: Float32Array;
  vW: Float32Array;
  vB: Float32Array;
  oW: Float32Array;
  oB: Float32Array;
  ln2Scale: Float32Array;
  ln2Bias: Float32Array;
  fc1W: Float32Array;
  fc1B: Float32Array;
  fc2W: Float32Array;
  fc2B: Float32Array;
}

export interface VitWeights {
  /** Conv kernel `[D, 3, p, p]` (OIHW). */
  patchW: Float32Array;
  patchB: Float32Array;
  /** `[D]` */
  cls: Float32Array;
  /** `[T, D]`, T = (S/p)² + 1 */
  pos: Float32Array;
  layers: VitLayerWeights[];
  lnfScale: Float32Array;
  lnfBias: Float32Array;
  /** `[D, labels]` */
  headW: Float32Array;
  headB: Float32Array;
}

export interface BuiltVitModel {
  dir: string;
  modelPath: string;
  options: VitOptions;
  weights: VitWeights;
  paramCount: number;
  modelBytes: number;
}

/** mulberry32: tiny, fast and good enough to make weights reproducible from a seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Uniform in [center - std·√3, center + std·√3], which has standard deviation `std`. Uniform
 * rather than normal because it is one PRNG call per value and the ViT-Base build draws 86M.
 */
function draw(rng: () => number, n: number, std: number, center = 0): Float32Array {
  const out = new Float32Array(n);
  const half = std * Math.sqrt(3);
  for (let i = 0; i < n; i++) out[i] = center + (rng() * 2 - 1) * half;
  return out;
}

/**
 * Variance 1/fan_in keeps activations near unit scale through the blocks, so the random model's
 * outputs depend visibly on the image (HF's 0.02 init would make every image score ~0.5/0.5,
 * which would make the reference check weak).
 */
export function makeVitWeights(o: VitOptions): VitWeights {
  const rng = mulberry32(o.seed);
  const D = o.hiddenSize;
  const M = o.mlpSize;
  const patchFanIn = 3 * o.patchSize * o.patchSize;
  const tokens = (o.imageSize / o.patchSize) ** 2 + 1;
  const patchW = draw(rng, D * patchFanIn, 1 / Math.sqrt(patchFanIn));
  const patchB = draw(rng, D, 0.02);
  const cls = draw(rng, D, 0.5);
  const pos = draw(rng, tokens * D, 0.5);
  const layers: VitLayerWeights[] = [];
  for (let i = 0; i < o.numLayers; i++) {
    layers.push({
      ln1Scale: draw(rng, D, 0.1, 1),
      ln1Bias: draw(rng, D, 0.1),
      qW: draw(rng, D * D, 1 / Math.sqrt(D)),
      qB: draw(rng, D, 0.02),
      kW: draw(rng, D * D, 1 / Math.sqrt(D)),
      kB: draw(rng, D, 0.02),
      vW: draw(rng, D * D, 1 / Math.sqrt(D)),
      vB: draw(rng, D, 0.02),
      oW: draw(rng, D * D, 1 / Math.sqrt(D)),
      oB: draw(rng, D, 0.02),
      ln2Scale: draw(rng, D, 0.1, 1),
      ln2Bias: draw(rng, D, 0.1),
      fc1W: draw(rng, D * M, 1 / Math.sqrt(D)),
      fc1B: draw(rng, M, 0.02),
      fc2W: draw(rng, M * D, 1 / Math.sqrt(M)),
      fc2B: draw(rng, D, 0.02),
    });
  }
  const lnfScale = draw(rng, D, 0.1, 1);
  const lnfBias = draw(rng, D, 0.1);
  const headW = draw(rng, D * o.labels.length, 1 / Math.sqrt(D));
  const headB = draw(rng, o.labels.length, 0.1);
  return { patchW, patchB, cls, pos, layers, lnfScale, lnfBias, headW, headB };
}

type Attr = number | number[] | string;

/** Accumulates nodes and initializers; every helper returns the name of the value it made. */
class GraphBuilder {
  readonly nodes: Onnx.INodeProto[] = [];
  readonly initializers: Onnx.ITensorProto[] = [];
  private counter = 0;

  floats(name: string, dims: number[], data: Float32Array): string {
    assert.equal(
      data.length,
      dims.reduce((a, b) => a * b, 1),
      `${name}: size does not match dims`,
    );
    // raw_data is one memcpy per tensor; float_data would encode 86M varint-framed floats.
    const rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData });
    return name;
  }

  scalar(name: string, value: number): string {
    return this.floats(name, [], Float32Array.of(value));
  }

  int64s(name: string, values: number[], dims: number[] = [values.length]): string {
    const data = BigInt64Array.from(values.map((v) => BigInt(v)));
    const rawData = new Uint8Array(data.buffer);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData });
    return name;
  }

  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, out?: string): string {
    const output = out ?? `${op.toLowerCase()}_${this.counter++}`;
    const attribute = Object.entries(attrs).map(([name, v]) => attributeOf(name, v));
    const name = `${op}_${this.counter++}`;
    this.nodes.push({ opType: op, name, input: inputs, output: [output], attribute });
    return output;
  }

  linear(x: string, w: string, b: string): string {
    return this.node('Add', [this.node('MatMul', [x, w]), b]);
  }
}

function attributeOf(name: string, v: Attr): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (Number.isInteger(v) && name !== 'epsilon') return { name, type: T.INT, i: v };
  return { name, type: T.FLOAT, f: v };
}

function tensorInfo(name: string, dims: (number | string)[]): Onnx.IValueInfoProto {
  const dim = dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d }));
  const elemType = onnx.TensorProto.DataType.FLOAT;
  return { name, type: { tensorType: { elemType, shape: { dim } } } };
}

/** Patch embedding + class token + position embeddings: pixel_values → [B, T, D]. */
function embed(g: GraphBuilder, o: VitOptions, w: VitWeights): string {
  const D = o.hiddenSize;
  const p = o.patchSize;
  const tokens = (o.imageSize / p) ** 2 + 1;
  const pre = 'vit.embeddings';
  const conv = g.node(
    'Conv',
    [
      'pixel_values',
      g.floats(`${pre}.patch_embeddings.projection.weight`, [D, 3, p, p], w.patchW),
      g.floats(`${pre}.patch_embeddings.projection.bias`, [D], w.patchB),
    ],
    { kernel_shape: [p, p], strides: [p, p] },
  );
  const flat = g.node('Reshape', [conv, g.int64s('shape_b_d_n', [0, D, -1])]);
  const patches = g.node('Transpose', [flat], { perm: [0, 2, 1] });
  // The class token is [1,1,D]; Expand it to [B,1,D] using the batch size read at run time.
  const shape = g.node('Shape', [patches]);
  const batch = g.node('Slice', [shape, g.int64s('zero_1d', [0]), g.int64s('one_1d', [1])]);
  const clsShape = g.node('Concat', [batch, g.int64s('one_d', [1, D])], { axis: 0 });
  const cls = g.node('Expand', [g.floats(`${pre}.cls_token`, [1, 1, D], w.cls), clsShape]);
  const seq = g.node('Concat', [cls, patches], { axis: 1 });
  return g.node('Add', [seq, g.floats(`${pre}.position_embeddings`, [1, tokens, D], w.pos)]);
}

/** One pre-norm encoder block: x + MHSA(LN(x)), then + MLP(LN(·)). */
function encoderBlock(
  g: GraphBuilder,
  o: VitOptions,
  l: VitLayerWeights,
  i: number,
  x: string,
): string {
  const D = o.hiddenSize;
  const H = o.numHeads;
  const pre = `vit.encoder.layer.${i}`;
  const f = (name: string, dims: number[], data: Float32Array) =>
    g.floats(`${pre}.${name}`, dims, data);
  const ln = (input: string, name: string, s: Float32Array, b: Float32Array) =>
    g.node('LayerNormalization', [input, f(`${name}.weight`, [D], s), f(`${name}.bias`, [D], b)], {
      axis: -1,
      epsilon: o.layerNormEps,
    });
  const dense = (input: string, name: string, w: Float32Array, b: Float32Array) => {
    const [inDim, outDim] = [w.length / b.length, b.length];
    return g.linear(input, f(`${name}.weight`, [inDim, outDim], w), f(`${name}.bias`, [outDim], b));
  };

  const h = ln(x, 'layernorm_before', l.ln1Scale, l.ln1Bias);
  const q = dense(h, 'attention.attention.query', l.qW, l.qB);
  const k = dense(h, 'attention.attention.key', l.kW, l.kB);
  const v = dense(h, 'attention.attention.value', l.vW, l.vB);
  // [B,T,D] → [B,T,H,D/H] → heads first; K is transposed so QKᵀ is one batched MatMul.
  const heads = g.int64s(`${pre}.heads_shape`, [0, 0, H, D / H]);
  const split = (t: string, perm: number[]) =>
    g.node('Transpose', [g.node('Reshape', [t, heads])], { perm });
  const scores = g.node('MatMul', [split(q, [0, 2, 1, 3]), split(k, [0, 2, 3, 1])]);
  const scaled = g.node('Div', [scores, g.scalar(`${pre}.sqrt_head_dim`, Math.sqrt(D / H))]);
  const probs = g.node('Softmax', [scaled], { axis: -1 });
  const ctx = g.node('MatMul', [probs, split(v, [0, 2, 1, 3])]);
  const merged = g.node('Reshape', [
    g.node('Transpose', [ctx], { perm: [0, 2, 1, 3] }),
    g.int64s(`${pre}.merge_shape`, [0, 0, D]),
  ]);
  const x1 = g.node('Add', [x, dense(merged, 'attention.output.dense', l.oW, l.oB)]);

  const h2 = ln(x1, 'layernorm_after', l.ln2Scale, l.ln2Bias);
  const up = dense(h2, 'intermediate.dense', l.fc1W, l.fc1B);
  const erf = g.node('Erf', [g.node('Div', [up, g.scalar(`${pre}.sqrt2`, Math.SQRT2)])]);
  const gate = g.node('Add', [erf, g.scalar(`${pre}.one`, 1)]);
  const gelu = g.node('Mul', [g.node('Mul', [up, g.scalar(`${pre}.half`, 0.5)]), gate]);
  return g.node('Add', [x1, dense(gelu, 'output.dense', l.fc2W, l.fc2B)]);
}

/** Assembles the ModelProto (not yet encoded). */
export function vitModelProto(o: VitOptions, w: VitWeights): Onnx.IModelProto {
  const g = new GraphBuilder();
  const D = o.hiddenSize;
  const L = o.labels.length;
  const batch = o.fixedBatchSize ?? 'batch_size';
  let x = embed(g, o, w);
  for (let i = 0; i < o.numLayers; i++) x = encoderBlock(g, o, w.layers[i], i, x);
  const y = g.node(
    'LayerNormalization',
    [
      x,
      g.floats('vit.layernorm.weight', [D], w.lnfScale),
      g.floats('vit.layernorm.bias', [D], w.lnfBias),
    ],
    { axis: -1, epsilon: o.layerNormEps },
  );
  const clsToken = g.node('Gather', [y, g.int64s('token_0', [0], [])], { axis: 1 });
  g.node(
    'Add',
    [
      g.node('MatMul', [clsToken, g.floats('classifier.weight', [D, L], w.headW)]),
      g.floats('classifier.bias', [L], w.headB),
    ],
    {},
    'logits',
  );
  return {
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    producerName: 'stockade/scripts/build-vit-model',
    producerVersion: '1',
    graph: {
      name: 'vit_image_classification',
      node: g.nodes,
      initializer: g.initializers,
      input: [tensorInfo('pixel_values', [batch, 3, o.imageSize, o.imageSize])],
      output: [tensorInfo('logits', [batch, L])],
    },
  };
}

function validateOptions(o: VitOptions): void {
  const int = (name: keyof VitOptions, min: number) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      throw new Error(`vit option ${name} must be an integer ≥ ${min}, got ${String(v)}`);
    }
  };
  for (const name of ['imageSize', 'patchSize', 'hiddenSize', 'numHeads', 'mlpSize'] as const) {
    int(name, 1);
  }
  int('numLayers', 0);
  if (o.imageSize % o.patchSize !== 0) {
    throw new Error('vit option imageSize must be a multiple of patchSize');
  }
  if (o.hiddenSize % o.numHeads !== 0) {
    throw new Error('vit option hiddenSize must be a multiple of numHeads');
  }
  if (o.labels.length < 2) throw new Error('vit option labels needs at least two labels');
}

function hfConfigs(o: VitOptions): { config: object; preprocessor: object } {
  const id2label = Object.fromEntries(o.labels.map((l, i) => [String(i), l]));
  const label2id = Object.fromEntries(o.labels.map((l, i) => [l, i]));
  const config = {
    _name_or_path: o.name,
    architectures: ['ViTForImageClassification'],
    model_type: 'vit',
    hidden_size: o.hiddenSize,
    num_hidden_layers: o.numLayers,
    num_attention_heads: o.numHeads,
    intermediate_size: o.mlpSize,
    hidden_act: 'gelu',
    image_size: o.imageSize,
    patch_size: o.patchSize,
    num_channels: 3,
    layer_norm_eps: o.layerNormEps,
    qkv_bias: true,
    id2label,
    label2id,
  };
  const preprocessor = {
    image_processor_type: 'ViTImageProcessor',
    do_convert_rgb: true,
    do_resize: true,
    size: { height: o.imageSize, width: o.imageSize },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: o.imageMean,
    image_std: o.imageStd,
  };
  return { config, preprocessor };
}

/** Writes `model.onnx`, `config.json` and `preprocessor_config.json` into `dir`. */
export function buildVitModel(dir: string, options: Partial<VitOptions> = {}): BuiltVitModel {
  assert.equal(endianness(), 'LE', 'ONNX raw_data is little-endian; this host is not');
  const o: VitOptions = { ...VIT_TINY, ...options };
  validateOptions(o);
  const weights = makeVitWeights(o);
  const bytes = onnx.ModelProto.encode(vitModelProto(o, weights)).finish();
  mkdirSync(dir, { recursive: true });
  const modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, bytes);
  const { config, preprocessor } = hfConfigs(o);
  const json = (name: string, value: object) =>
    writeFileSync(join(dir, name), JSON.stringify(value, null, 2) + '\n');
  json('config.json', config);
  json('preprocessor_config.json', preprocessor);
  const paramCount = countParams(weights);
  return { dir, modelPath, options: o, weights, paramCount, modelBytes: bytes.length };
}

function countParams(w: VitWeights): number {
  let n = w.patchW.length + w.patchB.length + w.cls.length + w.pos.length;
  for (const l of w.layers) for (const t of Object.values(l) as Float32Array[]) n += t.length;
  return n + w.lnfScale.length + w.lnfBias.length + w.headW.length + w.headB.length;
}

function cli(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      size: { type: 'string', default: 'tiny' },
      image: { type: 'string' },
      patch: { type: 'string' },
      hidden: { type: 'string' },
      heads: { type: 'string' },
      layers: { type: 'string' },
      mlp: { type: 'string' },
      labels: { type: 'string' },
      seed: { type: 'string' },
      name: { type: 'string' },
    },
  });
  if (!values.out || (values.size !== 'tiny' && values.size !== 'base')) {
    process.stderr.write(
      'usage: npx tsx scripts/build-vit-model.ts --out DIR [--size tiny|base] [--image N] ' +
        '[--patch N] [--hidden N] [--heads N] [--layers N] [--mlp N] [--labels a,b] [--seed N]\n',
    );
    process.exit(2);
  }
  const num = (s: string | undefined) => (s === undefined ? undefined : Number(s));
  const picked: Partial<VitOptions> = {
    imageSize: num(values.image),
    patchSize: num(values.patch),
    hiddenSize: num(values.hidden),
    numHeads: num(values.heads),
    numLayers: num(values.layers),
    mlpSize: num(values.mlp),
    seed: num(values.seed),
    labels: values.labels?.split(',').map((s) => s.trim()),
    name: values.name,
  };
  const overrides = Object.fromEntries(Object.entries(picked).filter(([, v]) => v !== undefined));
  const preset = values.size === 'base' ? VIT_BASE : VIT_TINY;
  const started = performance.now();
  const built = buildVitModel(resolve(values.out), { ...preset, ...overrides });
  const ms = Math.round(performance.now() - started);
  process.stdout.write(
    `wrote ${built.modelPath} (${built.paramCount.toLocaleString('en-US')} params, ` +
      `${(built.modelBytes / 2 ** 20).toFixed(1)} MiB) in ${ms} ms; ` +
      `model '${built.options.name}' in ${basename(built.dir)}\n`,
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  cli(process.argv.slice(2));
}
