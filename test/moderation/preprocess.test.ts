// Preprocessing without threads: decoding each accepted format, the normalization arithmetic,
// EXIF orientation, alpha, greyscale, the resize/crop geometry and the preprocessor_config parse.
import t from 'tap';
import sharp from 'sharp';
import { preprocessImage, preprocessSpecOf } from '../../moderation/index.js';
import type { PreprocessSpec } from '../../moderation/index.js';
import { rawImage, solid, solidPng } from './helpers.js';

const PATH = 'preprocessor_config.json';
const vitSpec = (size = 8, extra: Record<string, unknown> = {}): PreprocessSpec =>
  preprocessSpecOf(PATH, {
    do_resize: true,
    size: { height: size, width: size },
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    ...extra,
  });

/** The largest distance, per channel plane, of any value from `want[c]`. */
function worstPerChannel(got: Float32Array, want: number[]): number[] {
  const plane = got.length / 3;
  return [0, 1, 2].map((c) => {
    let worst = 0;
    for (let i = 0; i < plane; i++) worst = Math.max(worst, Math.abs(got[c * plane + i] - want[c]));
    return worst;
  });
}

const within = (worst: number[], tol: number) => worst.every((w) => w <= tol);

t.test('solid colour: normalization matches the hand computation', async (t) => {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  const spec = vitSpec(8, { image_mean: mean, image_std: std });
  const rgb: [number, number, number] = [200, 100, 50];
  const got = await preprocessImage(await solidPng(20, 12, rgb), spec, 1e6);
  t.equal(got.length, 3 * 8 * 8, 'a [3, 8, 8] tensor');
  // e.g. red: (200 / 255 − 0.485) / 0.229 = (0.7843137 − 0.485) / 0.229 = 1.3070468
  const want = rgb.map((v, c) => (v / 255 - mean[c]) / std[c]);
  t.ok(Math.abs(want[0] - 1.3070468) < 1e-6, 'the hand computation itself');
  t.ok(within(worstPerChannel(got, want), 1e-6), 'every pixel of every channel');
});

t.test('JPEG, PNG and WebP all decode to the same colour', async (t) => {
  const spec = vitSpec(8);
  const base = solid(24, 24, [30, 160, 220]);
  const want = [30, 160, 220].map((v) => (v / 255 - 0.5) / 0.5);
  const formats: [string, Buffer][] = [
    ['jpeg', await base.clone().jpeg({ quality: 95 }).toBuffer()],
    ['png', await base.clone().png().toBuffer()],
    ['webp', await base.clone().webp({ lossless: true }).toBuffer()],
    ['lossy webp', await base.clone().webp({ quality: 90 }).toBuffer()],
  ];
  for (const [name, bytes] of formats) {
    const exact = name === 'png' || name === 'webp';
    // Lossy codecs may move a solid colour by a few levels: 4/255 in [0,255] is 8/255 here.
    const worst = worstPerChannel(await preprocessImage(bytes, spec, 1e6), want);
    t.ok(within(worst, exact ? 1e-6 : 8 / 255), `${name}: worst ${worst.join(', ')}`);
  }
});

/** 16×8 image, left half red and right half blue, stored unrotated. */
function halves(): Buffer {
  const w = 16;
  const h = 8;
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) buf[(y * w + x) * 3 + (x < w / 2 ? 0 : 2)] = 255;
  }
  return buf;
}

t.test('EXIF orientation is honoured before resizing', async (t) => {
  const spec = vitSpec(8, { size: { height: 16, width: 8 } });
  // Orientation 6 means "rotate 90° clockwise to display": left/right become top/bottom.
  const tagged = await rawImage(halves(), 16, 8).png().withMetadata({ orientation: 6 }).toBuffer();
  t.equal((await sharp(tagged).metadata()).orientation, 6, 'the test image carries the tag');
  const rotated = await rawImage(halves(), 16, 8).rotate(90).png().toBuffer();
  const got = await preprocessImage(tagged, spec, 1e6);
  const byHand = await preprocessImage(rotated, spec, 1e6);
  t.same(got, byHand, 'same tensor as the physically rotated image');
  const plane = 8 * 16;
  t.ok(got[0] > 0.9 && got[2 * plane] < -0.9, 'top-left is red');
  t.ok(got[plane - 1] < -0.9 && got[3 * plane - 1] > 0.9, 'bottom-right is blue');
  const plain = await rawImage(halves(), 16, 8).png().toBuffer();
  const untagged = await preprocessImage(plain, spec, 1e6);
  t.notSame(got, untagged, 'and differs from ignoring the tag');

  const jpegTagged = await rawImage(halves(), 16, 8)
    .jpeg({ quality: 95 })
    .withMetadata({ orientation: 6 })
    .toBuffer();
  const { data, info } = await sharp(jpegTagged)
    .rotate(90)
    .raw()
    .toBuffer({ resolveWithObject: true });
  const jpegRotated = await rawImage(data, info.width, info.height).png().toBuffer();
  const a = await preprocessImage(jpegTagged, spec, 1e6);
  const b = await preprocessImage(jpegRotated, spec, 1e6);
  t.ok(
    a.every((v, i) => Math.abs(v - b[i]) < 1e-6),
    'JPEG: same as decoding and rotating by hand',
  );
});

t.test('alpha is flattened onto white; greyscale becomes three equal channels', async (t) => {
  const spec = vitSpec(4);
  const clear = await solid(8, 8, [0, 0, 0], 0).png().toBuffer();
  const white = worstPerChannel(await preprocessImage(clear, spec, 1e6), [1, 1, 1]);
  t.ok(within(white, 1e-6), 'transparent black becomes white');
  const grey = await rawImage(Buffer.alloc(64, 51), 8, 8, 1).toColourspace('b-w').png().toBuffer();
  t.equal((await sharp(grey).metadata()).channels, 1, 'the test image is single-channel');
  const v = (51 / 255 - 0.5) / 0.5;
  const greyWorst = worstPerChannel(await preprocessImage(grey, spec, 1e6), [v, v, v]);
  t.ok(within(greyWorst, 1e-6), 'greyscale');
});

t.test('shortest_edge resizes keeping the aspect ratio, then centre-crops', async (t) => {
  const spec = preprocessSpecOf(PATH, {
    size: { shortest_edge: 8 },
    do_center_crop: true,
    crop_size: { height: 8, width: 8 },
  });
  t.same([spec.width, spec.height, spec.resizeMode], [8, 8, 'shortest_edge']);
  // 32×16: red | green green | blue in four vertical bands → 16×8 → the centre 8×8 is green.
  const w = 32;
  const h = 16;
  const buf = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) buf[(y * w + x) * 3 + (x < 8 ? 0 : x < 24 ? 1 : 2)] = 255;
  }
  const got = await preprocessImage(await rawImage(buf, w, h).png().toBuffer(), spec, 1e6);
  const plane = 64;
  for (const x of [1, 6]) {
    const i = 4 * 8 + x;
    const [r, g, b] = [got[i], got[plane + i], got[2 * plane + i]];
    t.ok(r < -0.9 && g > 0.9 && b < -0.9, `column ${x} is green`);
  }
});

t.test('preprocessor_config.json variants', async (t) => {
  t.same([vitSpec(8).width, vitSpec(8).height, vitSpec(8).kernel], [8, 8, 'linear']);
  const n = preprocessSpecOf(PATH, { size: 224, resample: 3 });
  t.same([n.width, n.height, n.kernel], [224, 224, 'cubic'], 'a bare number is square');
  const se = preprocessSpecOf(PATH, { size: { shortest_edge: 224 } });
  t.same(se.crop, { width: 224, height: 224 }, 'shortest_edge without a crop crops to its square');
  const plain = preprocessSpecOf(PATH, { size: 10, do_normalize: false, do_rescale: false });
  t.same([plain.rescaleFactor, plain.mean, plain.std], [1, [0, 0, 0], [1, 1, 1]]);
  const defaults = preprocessSpecOf(PATH, { size: 10 });
  t.equal(defaults.rescaleFactor, 1 / 255);
  const bad = (pre: Record<string, unknown>, message: RegExp) =>
    t.throws(() => preprocessSpecOf(PATH, pre), { code: 'model_invalid', message });
  bad({ size: 10, do_resize: false }, /do_resize/);
  bad({ size: { long: 3 } }, /size must be/);
  bad({ size: 10, image_mean: [1, 2] }, /image_mean must be/);
  bad({ size: 10, image_std: [1, 0, 1] }, /image_std must not contain 0/);
  bad({ size: 10, resample: 9 }, /resample must be/);
});
