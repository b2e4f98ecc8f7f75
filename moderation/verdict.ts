/**
 * From logits to a verdict. Pure functions: the workers call `softmaxInto`, the main thread
 * calls `verdictOf`, and the tests call both without threads.
 *
 *   unsafe = max over unsafeLabels of p(label)
 *   unsafe ≥ blockThreshold  → 'block'
 *   unsafe ≥ reviewThreshold → 'review'
 *   otherwise                → 'allow'
 */
export type Verdict = 'allow' | 'review' | 'block';

export interface VerdictRule {
  /** Indices into the model's labels of the labels that count as unsafe. */
  readonly unsafeIndices: readonly number[];
  readonly reviewThreshold: number;
  readonly blockThreshold: number;
}

/** Numerically stable softmax of `rows` rows of `width` logits, accumulated in doubles. */
export function softmaxInto(
  logits: ArrayLike<number>,
  rows: number,
  width: number,
  out: Float32Array,
  outOffset = 0,
): void {
  for (let r = 0; r < rows; r++) {
    const base = r * width;
    let max = -Infinity;
    for (let j = 0; j < width; j++) max = Math.max(max, logits[base + j]);
    let sum = 0;
    for (let j = 0; j < width; j++) sum += Math.exp(logits[base + j] - max);
    for (let j = 0; j < width; j++) {
      out[outOffset + base + j] = Math.exp(logits[base + j] - max) / sum;
    }
  }
}

/** The largest probability among the unsafe labels of one row. */
export function unsafeScore(probs: ArrayLike<number>, offset: number, rule: VerdictRule): number {
  let p = 0;
  for (const i of rule.unsafeIndices) p = Math.max(p, probs[offset + i]);
  return p;
}

export function verdictOf(probs: ArrayLike<number>, offset: number, rule: VerdictRule): Verdict {
  const p = unsafeScore(probs, offset, rule);
  if (p >= rule.blockThreshold) return 'block';
  if (p >= rule.reviewThreshold) return 'review';
  return 'allow';
}
