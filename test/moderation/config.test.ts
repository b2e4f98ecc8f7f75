// Moderation settings: the `moderation.*` fields in the config table, the cross-field rules
// checked by createModerator, and the model-directory checks on both sides of the thread
// boundary (JSON on the main thread, the ONNX graph in the worker).
import t from 'tap';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../../config/index.js';
import { createModerator, loadModelDir } from '../../moderation/index.js';
import { validateModerationSettings as validate } from '../../moderation/index.js';
import { noisePng, testSettings, tinyModel } from './helpers.js';

t.test('moderation.* come from defaults and STOCKADE_MODERATION_* variables', async (t) => {
  const d = loadConfig({ env: {} }).moderation;
  t.same(
    [d.modelDir, d.threads, d.intraOpThreads, d.unsafeLabels, d.reviewThreshold, d.blockThreshold],
    ['./models/moderation', 1, 1, ['nsfw'], 0.5, 0.9],
  );
  t.doesNotThrow(() => validate(d, 1), 'the defaults pass the cross-field rules on one core');
  const c = loadConfig({
    env: {
      STOCKADE_MODERATION_MODEL_DIR: '/srv/models/nsfw',
      STOCKADE_MODERATION_THREADS: '2',
      STOCKADE_MODERATION_BATCH_WAIT_MS: '0',
      STOCKADE_MODERATION_UNSAFE_LABELS: 'nsfw, porn,hentai',
      STOCKADE_MODERATION_BLOCK_THRESHOLD: '0.95',
    },
  }).moderation;
  t.same([c.modelDir, c.threads, c.batchWaitMs], ['/srv/models/nsfw', 2, 0]);
  t.equal(c.blockThreshold, 0.95);
  t.same(c.unsafeLabels, ['nsfw', 'porn', 'hentai']);
  t.throws(() => loadConfig({ env: { STOCKADE_MODERATION_REVIEW_THRESHOLD: '1.5' } }), {
    message: /config.moderation.reviewThreshold must be a number from 0 to 1, got 1.5/,
  });
});

t.test('cross-field rules name the keys', async (t) => {
  const s = testSettings('/nonexistent');
  t.throws(() => validate({ ...s, threads: 2, intraOpThreads: 2 }, 2), {
    name: 'ConfigError',
    code: 'config_invalid',
    message:
      'config.moderation.threads × config.moderation.intraOpThreads must be at most the 2 ' +
      'available cores, got 2 × 2 = 4',
  });
  t.throws(() => validate({ ...s, threads: 3 }, 2), /got 3 × 1 = 3/);
  t.doesNotThrow(() => validate({ ...s, threads: 2 }, 2));
  t.throws(() => validate({ ...s, reviewThreshold: 0.8, blockThreshold: 0.7 }, 2), {
    message:
      'config.moderation.reviewThreshold (0.8) must not exceed ' +
      'config.moderation.blockThreshold (0.7)',
  });
  t.throws(() => validate({ ...s, unsafeLabels: [] }, 2), /unsafeLabels must name at least one/);
  t.throws(() => validate({ ...s, queueMax: 0 }, 2), {
    message: 'config.moderation.queueMax must be an integer from 1 to 100000, got 0',
  });
  // createModerator checks before it starts a single thread or reads the model.
  const tooMany = { ...s, threads: 2, intraOpThreads: 2 };
  await t.rejects(createModerator(tooMany, { cores: 2 }), ConfigError);
});

t.test('the model directory is checked on the main thread', async (t) => {
  const m = tinyModel();
  t.teardown(m.cleanup);
  const spec = loadModelDir(m.dir);
  t.same([spec.name, spec.labels], ['stockade/vit-tiny-random', ['normal', 'nsfw']]);
  t.equal(spec.preprocess.width, 32);
  await t.rejects(createModerator(testSettings(m.dir, { unsafeLabels: ['nsfw', 'gore'] })), {
    name: 'ConfigError',
    message: /unsafeLabels names 'gore', which the model in .* does not have; its labels are: n/,
  });
  const invalid = (message: RegExp) => ({ code: 'model_invalid', message });
  t.throws(() => loadModelDir(join(m.dir, 'missing')), invalid(/does not exist/));
  writeFileSync(join(m.dir, 'config.json'), JSON.stringify({ id2label: { 0: 'a', 2: 'b' } }));
  t.throws(() => loadModelDir(m.dir), invalid(/config.json: id2label keys must be 0..1/));
  writeFileSync(join(m.dir, 'config.json'), '{"id2label": {"0": "a", "1": "b"}}');
  t.equal(loadModelDir(m.dir).name, m.dir.split('/').pop(), 'no _name_or_path: the dir name');
  rmSync(join(m.dir, 'preprocessor_config.json'));
  t.throws(() => loadModelDir(m.dir), invalid(/preprocessor_config.json: cannot read/));
  rmSync(join(m.dir, 'model.onnx'));
  t.throws(() => loadModelDir(m.dir), invalid(/model.onnx: missing/));
});

t.test('the worker checks the ONNX graph against the configs at startup', async (t) => {
  const fixed = tinyModel({ fixedBatchSize: 1 });
  t.teardown(fixed.cleanup);
  await t.rejects(createModerator(testSettings(fixed.dir, { batchSizeMax: 4 })), {
    code: 'model_invalid',
    message: /batch dimension is fixed at 1; export the model with a dynamic batch axis/,
  });
  const one = await createModerator(testSettings(fixed.dir, { batchSizeMax: 1 }));
  t.teardown(() => one.close());
  t.ok(await one.classify(await noisePng(8, 8)), 'fine with batchSizeMax 1');

  const wrongSize = tinyModel();
  t.teardown(wrongSize.cleanup);
  writeFileSync(join(wrongSize.dir, 'preprocessor_config.json'), JSON.stringify({ size: 64 }));
  await t.rejects(createModerator(testSettings(wrongSize.dir)), {
    code: 'model_invalid',
    message: /input is 32×32 but preprocessor_config.json resizes to 64×64/,
  });
  writeFileSync(join(wrongSize.dir, 'model.onnx'), 'not a model');
  await t.rejects(createModerator(testSettings(wrongSize.dir)), {
    code: 'model_invalid',
    message: /onnxruntime cannot load it/,
  });
});
