// An independent ViT forward pass in plain TypeScript (float64), written from the architecture,
// not from the ONNX graph: the reference the pool's probabilities are checked against. Slow and
// simple on purpose; only ever run on the tiny model.
import type { VitOptions, VitWeights } from '../../scripts/build-vit-model.js';

type Vec = Float64Array;

/** Abramowitz & Stegun 7.1.26 is only 1.5e-7; use the series / continued fraction instead. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax > 6) return Math.sign(x);
  if (ax < 2.5) {
    // Maclaurin series: 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1)); converges fast for |x| < 2.5.
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 100; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc continued fraction (Lentz), accurate for larger |x|.
  let f = ax;
  let c = ax;
  let d = 0;
  for (let k = 1; k < 200; k++) {
    const a = k / 2;
    d = ax + a * d;
    d = 1 / d;
    c = ax + a / c;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

/** rows × in times in × out ([in, out] row-major) plus bias. */
function linear(x: Vec, rows: number, inDim: number, w: Float32Array, b: Float32Array): Vec {
  const outDim = b.length;
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b[o];
      for (let i = 0; i < inDim; i++) acc += x[r * inDim + i] * w[i * outDim + o];
      y[r * outDim + o] = acc;
    }
  }
  return y;
}

function layerNorm(
  x: Vec,
  rows: number,
  dim: number,
  g: Float32Array,
  b: Float32Array,
  eps: number,
): Vec {
  const y = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let mean = 0;
    for (let i = 0; i < dim; i++) mean += x[r * dim + i];
    mean /= dim;
    let v = 0;
    for (let i = 0; i < dim; i++) v += (x[r * dim + i] - mean) ** 2;
    const inv = 1 / Math.sqrt(v / dim + eps);
    for (let i = 0; i < dim; i++) y[r * dim + i] = (x[r * dim + i] - mean) * inv * g[i] + b[i];
  }
  return y;
}

function softmaxRow(x: Vec): void {
  let max = -Infinity;
  for (const v of x) max = Math.max(max, v);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] = Math.exp(x[i] - max);
  for (let i = 0; i < x.length; i++) x[i] /= sum;
}

function attention(h: Vec, T: number, o: VitOptions, l: VitWeights['layers'][number]): Vec {
  const D = o.hiddenSize;
  const H = o.numHeads;
  const hd = D / H;
  const q = linear(h, T, D, l.qW, l.qB);
  const k = linear(h, T, D, l.kW, l.kB);
  const v = linear(h, T, D, l.vW, l.vB);
  const ctx = new Float64Array(T * D);
  const scores = new Float64Array(T);
  for (let head = 0; head < H; head++) {
    for (let i = 0; i < T; i++) {
      for (let j = 0; j < T; j++) {
        let s = 0;
        for (let e = 0; e < hd; e++) s += q[i * D + head * hd + e] * k[j * D + head * hd + e];
        scores[j] = s / Math.sqrt(hd);
      }
      softmaxRow(scores);
      for (let e = 0; e < hd; e++) {
        let acc = 0;
        for (let j = 0; j < T; j++) acc += scores[j] * v[j * D + head * hd + e];
        ctx[i * D + head * hd + e] = acc;
      }
    }
  }
  return linear(ctx, T, D, l.oW, l.oB);
}

/** Patch embedding (a stride-p convolution), class token and position embeddings: [T, D]. */
function embed(pixels: Float32Array, o: VitOptions, w: VitWeights): Vec {
  const { imageSize: S, patchSize: p, hiddenSize: D } = o;
  const grid = S / p;
  const T = grid * grid + 1;
  const x = new Float64Array(T * D);
  for (let d = 0; d < D; d++) x[d] = w.cls[d] + w.pos[d];
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const t = 1 + gy * grid + gx;
      for (let d = 0; d < D; d++) {
        let acc = w.patchB[d];
        for (let c = 0; c < 3; c++) {
          for (let ky = 0; ky < p; ky++) {
            for (let kx = 0; kx < p; kx++) {
              const px = pixels[c * S * S + (gy * p + ky) * S + gx * p + kx];
              acc += w.patchW[((d * 3 + c) * p + ky) * p + kx] * px;
            }
          }
        }
        x[t * D + d] = acc + w.pos[t * D + d];
      }
    }
  }
  return x;
}

/** Class probabilities for one `[3, S, S]` normalized image. */
export function referenceProbs(pixels: Float32Array, o: VitOptions, w: VitWeights): Float64Array {
  const D = o.hiddenSize;
  const T = (o.imageSize / o.patchSize) ** 2 + 1;
  let x = embed(pixels, o, w);
  for (const l of w.layers) {
    const a = attention(layerNorm(x, T, D, l.ln1Scale, l.ln1Bias, o.layerNormEps), T, o, l);
    for (let i = 0; i < x.length; i++) x[i] += a[i];
    const h2 = layerNorm(x, T, D, l.ln2Scale, l.ln2Bias, o.layerNormEps);
    const up = linear(h2, T, D, l.fc1W, l.fc1B);
    for (let i = 0; i < up.length; i++) up[i] = 0.5 * up[i] * (1 + erf(up[i] / Math.SQRT2));
    const down = linear(up, T, o.mlpSize, l.fc2W, l.fc2B);
    x = x.map((v, i) => v + down[i]);
  }
  const cls = layerNorm(x.subarray(0, D), 1, D, w.lnfScale, w.lnfBias, o.layerNormEps);
  const logits = linear(cls, 1, D, w.headW, w.headB);
  softmaxRow(logits);
  return logits;
}
