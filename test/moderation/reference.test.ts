// The reference check: what the pool answers for an image equals an independent forward pass of
// the same ViT, computed here in plain TypeScript from the seeded weights the builder returned.
// Also checks that the ONNX file really holds those weights and that batching does not change
// any image's answer.
import t from 'tap';
import { readFileSync } from 'node:fs';
import onnxProto from 'onnx-proto';
import { createModerator, loadModelDir, preprocessImage } from '../../moderation/index.js';
import { makeVitWeights, VIT_TINY } from '../../scripts/build-vit-model.js';
import { noisePng, noiseRgb, rawImage, testSettings, tinyModel } from './helpers.js';
import { erf, referenceProbs } from './vit-reference.js';

const { onnx } = onnxProto;

t.test('the reference erf is accurate', async (t) => {
  const known: [number, number][] = [
    [0, 0],
    [0.5, 0.5204998778130465],
    [1, 0.8427007929497149],
    [-2, -0.9953222650189527],
    [3, 0.9999779095030014],
  ];
  for (const [x, y] of known) t.ok(Math.abs(erf(x) - y) < 1e-13, `erf(${x})`);
});

t.test('the same seed gives the same weights; another seed does not', async (t) => {
  const a = makeVitWeights({ ...VIT_TINY, seed: 5 });
  const b = makeVitWeights({ ...VIT_TINY, seed: 5 });
  const c = makeVitWeights({ ...VIT_TINY, seed: 6 });
  t.same(a.layers[1].fc2W, b.layers[1].fc2W);
  t.notSame(a.layers[1].fc2W, c.layers[1].fc2W);
});

t.test('model.onnx holds the weights the builder returned, with a dynamic batch', async (t) => {
  const m = tinyModel({ seed: 3 });
  t.teardown(m.cleanup);
  const model = onnx.ModelProto.decode(readFileSync(m.modelPath));
  const init = new Map(model.graph!.initializer!.map((i) => [i.name, i]));
  const floats = (name: string) => {
    const raw = init.get(name)!.rawData!;
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  };
  t.same(floats('vit.encoder.layer.1.attention.attention.key.weight'), m.weights.layers[1].kW);
  t.same(floats('vit.embeddings.patch_embeddings.projection.weight'), m.weights.patchW);
  t.same(floats('classifier.bias'), m.weights.headB);
  const batchDim = model.graph!.input![0].type!.tensorType!.shape!.dim![0];
  t.equal(batchDim.dimParam, 'batch_size');
  const ops = new Set(model.graph!.node!.map((n) => n.opType));
  for (const op of ['Conv', 'Concat', 'LayerNormalization', 'Softmax', 'Erf', 'MatMul', 'Gather']) {
    t.ok(ops.has(op), `graph uses ${op}`);
  }
  t.equal(Number(model.opsetImport?.[0].version), 17);
});

t.test('pool probabilities equal the TypeScript forward pass within 1e-4', async (t) => {
  const m = tinyModel({ seed: 11 });
  t.teardown(m.cleanup);
  const spec = loadModelDir(m.dir).preprocess;
  const moderator = await createModerator(testSettings(m.dir, { batchSizeMax: 4 }));
  t.teardown(() => moderator.close());
  // 32×32 noise images: the resize to 32×32 is the identity, so the pixels are known exactly.
  const images = await Promise.all([1, 2, 3, 4, 5].map((seed) => noisePng(32, 32, seed)));
  const classify = (img: Buffer) => moderator.classify(img, { contentType: 'image/png' });
  const results = await Promise.all(images.map(classify));
  let spread = 0;
  for (let k = 0; k < images.length; k++) {
    const rgb = noiseRgb(32, 32, k + 1);
    const pixels = new Float32Array(3 * 32 * 32);
    for (let i = 0; i < 32 * 32; i++) {
      for (let c = 0; c < 3; c++) pixels[c * 1024 + i] = (rgb[i * 3 + c] / 255 - 0.5) / 0.5;
    }
    const tensor = await preprocessImage(images[k], spec, 1e6);
    t.same(tensor, pixels, `image ${k}: preprocessing is exact`);
    const want = referenceProbs(pixels, m.options, m.weights);
    const got = [results[k].scores.normal, results[k].scores.nsfw];
    for (let j = 0; j < 2; j++) {
      t.ok(Math.abs(got[j] - want[j]) < 1e-4, `image ${k} label ${j}: ${got[j]} vs ${want[j]}`);
    }
    spread = Math.max(spread, Math.abs(got[1] - results[0].scores.nsfw));
  }
  t.ok(spread > 0.01, `the random model's answers depend on the image (spread ${spread})`);
  t.equal(moderator.stats().runs, 2, 'five images in two runs of at most four');
});

t.test('a bigger image goes through resize and still matches the reference', async (t) => {
  const labels = ['a', 'b', 'nsfw'];
  const m = tinyModel({ seed: 12, imageSize: 48, patchSize: 16, numLayers: 1, labels });
  t.teardown(m.cleanup);
  const spec = loadModelDir(m.dir).preprocess;
  const moderator = await createModerator(testSettings(m.dir));
  t.teardown(() => moderator.close());
  const jpeg = await rawImage(noiseRgb(100, 70, 9), 100, 70)
    .jpeg()
    .toBuffer();
  const r = await moderator.classify(jpeg);
  const want = referenceProbs(await preprocessImage(jpeg, spec, 1e6), m.options, m.weights);
  t.same(Object.keys(r.scores), ['a', 'b', 'nsfw']);
  for (const [j, label] of ['a', 'b', 'nsfw'].entries()) {
    t.ok(Math.abs(r.scores[label] - want[j]) < 1e-4, `${label}: ${r.scores[label]} vs ${want[j]}`);
  }
});
