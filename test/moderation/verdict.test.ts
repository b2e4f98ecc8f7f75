// The verdict rule and the softmax, without threads.
import t from 'tap';
import { softmaxInto, unsafeScore, verdictOf } from '../../moderation/index.js';

t.test('the thresholds split allow / review / block, boundaries inclusive', async (t) => {
  const rule = { unsafeIndices: [1, 2], reviewThreshold: 0.5, blockThreshold: 0.9 };
  const v = (p: number[]) => verdictOf(p, 0, rule);
  t.equal(v([1, 0, 0]), 'allow');
  t.equal(v([0.51, 0.49, 0]), 'allow');
  t.equal(v([0.5, 0.5, 0]), 'review', 'at reviewThreshold');
  t.equal(v([0.1, 0.1, 0.8]), 'review', 'the max over the unsafe labels, not the sum');
  t.equal(v([0.1, 0, 0.9]), 'block', 'at blockThreshold');
  t.equal(unsafeScore([0, 0.3, 0.6, 0.1], 1, rule), 0.6, 'reads the row at its offset');
  const strict = { unsafeIndices: [1], reviewThreshold: 0.7, blockThreshold: 0.7 };
  t.equal(verdictOf([0.3, 0.7], 0, strict), 'block', 'equal thresholds: no review band');
});

t.test('softmax is stable for large logits and sums to one per row', async (t) => {
  const out = new Float32Array(4);
  softmaxInto([1000, 1001, -5, 5], 2, 2, out);
  t.ok(Math.abs(out[0] + out[1] - 1) < 1e-6 && Math.abs(out[2] + out[3] - 1) < 1e-6);
  t.ok(Math.abs(out[1] - 1 / (1 + Math.exp(-1))) < 1e-6, 'no overflow at 1000');
  t.ok(out[3] > 0.9999);
});
