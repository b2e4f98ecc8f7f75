/**
 * `POST /v1/moderation/images`, product images and the sale gate, against real MariaDB and
 * Redis and the tiny generated ViT. Verdicts are made deterministic by the thresholds rather
 * than by the model's output: with review = block = 0 every image is `block` (the unsafe
 * probability is ≥ 0), with review = block = 1 every image is `allow` (a softmax of two finite
 * logits never reaches 1 exactly), with review 0 and block 1, every image is `review`.
 */
import t from 'tap';
import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { ERROR_CATALOGUE } from '../../engine/index.js';
import { isModerationError, moderationErrors } from '../../moderation/index.js';
import { noisePng, tinyModel } from '../moderation/helpers.js';
import { request, startServer } from './helpers.js';
import { startCatalogServer, upload } from './catalog-helpers.js';

const model = tinyModel();
t.teardown(model.cleanup);

/** Uploads a 32×32 noise PNG (seeded) as an image of product `id`. */
async function addImage(url: string, id: string, seed: number) {
  return upload(`${url}/v1/products/${id}/images`, await noisePng(32, 32, seed), 'image/png');
}

const ALLOW = { reviewThreshold: 1, blockThreshold: 1 };
const BLOCK = { reviewThreshold: 0, blockThreshold: 0 };
const REVIEW = { reviewThreshold: 0, blockThreshold: 1 };

t.test(
  'the pool’s codes are exactly the catalogue’s image_, moderation_ and model_ codes',
  async (t) => {
    // One catalogue: a pool code added there must be one isModerationError knows. (The sale
    // gate's moderation_required is the catalog's, not the pool's.)
    const gate = ['moderation_required'];
    const ours = Object.keys(ERROR_CATALOGUE).filter(
      (c) => /^(image|moderation|model)_/.test(c) && !gate.includes(c),
    );
    t.same(ours.sort(), Object.keys(moderationErrors).sort());
    for (const code of ours) t.ok(isModerationError({ code }), `${code} is a moderation error`);
  },
);

t.test('POST /v1/moderation/images: a verdict, and every bad input its code', async (t) => {
  const s = await startCatalogServer(t, {
    modelDir: model.dir,
    moderation: { maxBytes: 20_000 },
  });
  if (!s) return;
  const url = `${s.url}/v1/moderation/images`;
  const png = await noisePng(32, 32, 5);
  const ok = await upload(url, png, 'image/png');
  t.equal(ok.status, 200);
  t.match(ok.body, { verdict: /^(allow|review|block)$/, model: 'stockade/vit-tiny-random' });
  t.type(ok.body.ms, 'number');
  const scores = ok.body.scores as Record<string, number>;
  t.ok(Math.abs(scores.normal + scores.nsfw - 1) < 1e-5, 'scores are probabilities');
  const entry = s.audit.entries.find((e) => e.kind === 'moderation');
  t.match(entry, { outcome: ok.body.verdict, productId: null, model: 'stockade/vit-tiny-random' });
  t.match(entry?.imageSha256, /^[0-9a-f]{64}$/, 'the audit entry names the image by hash');

  const notImage = await upload(url, 'hello, not an image', 'image/png');
  t.equal(notImage.status, 422);
  t.equal(notImage.body.error?.code, 'image_not_an_image');
  const empty = await upload(url, new Uint8Array(0), 'image/png');
  t.equal(empty.status, 422, 'an empty body is not an image');
  const text = await upload(url, png, 'text/plain');
  t.equal(text.status, 415);
  t.equal(text.body.error?.code, 'image_unsupported_type');
  const json = await upload(url, '{}', 'application/json');
  t.equal(json.status, 415, 'JSON is not an image either');
  const mismatch = await upload(url, png, 'image/jpeg');
  t.equal(mismatch.status, 415);
  t.equal(mismatch.body.error?.code, 'image_type_mismatch');
  // The gateway takes what the moderator takes: an untyped upload is judged by its bytes.
  const untyped = await upload(url, png, 'application/octet-stream');
  t.equal(untyped.status, 200, 'application/octet-stream: the bytes decide');
  const truncated = await upload(url, png.subarray(0, Math.floor(png.length / 2)), 'image/png');
  t.equal(truncated.status, 422);
  t.equal(truncated.body.error?.code, 'image_truncated');
  const big = await noisePng(100, 100, 6);
  t.ok(big.length > 20_000, `a ${big.length}-byte image is over moderation.maxBytes`);
  const tooLarge = await upload(url, big, 'image/png');
  t.equal(tooLarge.status, 413);
  t.equal(tooLarge.body.error?.code, 'image_too_large');
  const verdicts = s.audit.entries.filter((e) => e.kind === 'moderation');
  t.equal(verdicts.length, 2, 'refused uploads produce no verdict');
  const get = await request(url, 'GET');
  t.equal(get.status, 405);
});

t.test('an upload larger than gateway.bodyBytesMax but within moderation.maxBytes', async (t) => {
  const s = await startCatalogServer(t, {
    modelDir: model.dir,
    moderation: { ...ALLOW, maxBytes: 200_000 },
    overrides: { gateway: { bodyBytesMax: 1024 } },
  });
  if (!s) return;
  const big = await noisePng(100, 100, 7);
  t.ok(big.length > 1024);
  const r = await upload(`${s.url}/v1/moderation/images`, big, 'image/png');
  t.equal(r.status, 200, 'images are bounded by moderation.maxBytes');
  t.equal(r.body.verdict, 'allow');
});

t.test('a blocked image blocks the product, and its sale, until an admin overrides', async (t) => {
  const s = await startCatalogServer(t, { modelDir: model.dir, moderation: BLOCK });
  if (!s) return;
  await request(`${s.url}/v1/products/lamp`, 'PUT', { name: 'Lamp', sku: 'lamp-1' });
  const before = await request(`${s.url}/v1/products/lamp`, 'GET');
  t.equal(before.body.moderationState, 'pending', 'cached while pending');

  const png = await noisePng(32, 32, 8);
  const r = await upload(`${s.url}/v1/products/lamp/images`, png, 'image/png');
  t.equal(r.status, 200);
  t.match(r.body, { productId: 'lamp', verdict: 'block', moderationState: 'blocked' });
  const sha = r.body.sha256 as string;
  const after = await request(`${s.url}/v1/products/lamp`, 'GET');
  t.equal(after.body.moderationState, 'blocked', 'the verdict invalidated the cached product');
  const image = { sha256: sha, verdict: 'block', model: 'stockade/vit-tiny-random' };
  t.match(after.body.images, [image]);
  const verdict = s.audit.entries.find((e) => e.kind === 'moderation' && e.productId === 'lamp');
  t.match(verdict, { outcome: 'block', sku: 'lamp-1', moderationState: 'blocked' });

  const define = { stock: 10, perUserLimit: 1 };
  const refused = await request(`${s.url}/v1/skus/lamp-1`, 'PUT', define);
  t.equal(refused.status, 409, 'the sale cannot be defined');
  t.equal(refused.body.error.code, 'moderation_required');
  t.match(refused.body.error.message, /'lamp' is blocked/);
  t.match(refused.body.error.message, sha.slice(0, 12), 'the message names the image');
  const none = await request(`${s.url}/v1/skus/lamp-1`, 'GET');
  t.equal(none.status, 404, 'and nothing reached the engine');

  const named = await request(`${s.url}/v1/skus/other`, 'PUT', { ...define, productId: 'lamp' });
  t.equal(named.status, 409, 'naming the product in the body gates that SKU too');
  const unknown = await request(`${s.url}/v1/skus/x`, 'PUT', { ...define, productId: 'ghost' });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'unknown_product');
  const badFlag = await request(`${s.url}/v1/skus/x`, 'PUT', { ...define, moderationOverride: 1 });
  t.equal(badFlag.status, 422);
  t.equal(badFlag.body.error.field, 'moderationOverride');

  const forced = await request(`${s.url}/v1/skus/lamp-1`, 'PUT', {
    ...define,
    moderationOverride: true,
  });
  t.equal(forced.status, 201, 'an admin override lets the sale be defined');
  t.equal(forced.body.sku.available, 10);
  const overridden = await request(`${s.url}/v1/products/lamp`, 'GET');
  t.equal(overridden.body.moderationOverride, true, 'the override is recorded on the product');
  const o = s.audit.entries.find((e) => e.outcome === 'override');
  t.match(o, { kind: 'moderation', sku: 'lamp-1', productId: 'lamp', moderationState: 'blocked' });
  const update = await request(`${s.url}/v1/skus/lamp-1`, 'PUT', { perUserLimit: 2 });
  t.equal(update.status, 200, 'the override stands for later changes of the sale');

  await addImage(s.url, 'lamp', 9);
  const reset = await request(`${s.url}/v1/products/lamp`, 'GET');
  t.equal(reset.body.moderationOverride, false, 'a new verdict ends the override');
  const again = await request(`${s.url}/v1/skus/lamp-1`, 'PUT', { perUserLimit: 3 });
  t.equal(again.status, 409, 'so the sale is gated again');
});

t.test('allowed images open the sale; none, or one in review, do not', async (t) => {
  const s = await startCatalogServer(t, { modelDir: model.dir, moderation: ALLOW });
  if (!s) return;
  await request(`${s.url}/v1/products/cup`, 'PUT', { name: 'Cup', sku: 'cup-1' });
  const pending = await request(`${s.url}/v1/skus/cup-1`, 'PUT', { stock: 5 });
  t.equal(pending.status, 409, 'a product without any image is pending');
  t.match(pending.body.error.message, /'cup' is pending \(no image moderated yet\)/);
  for (const seed of [1, 2]) {
    const r = await addImage(s.url, 'cup', seed);
    t.match(r.body, { verdict: 'allow', moderationState: 'allowed' });
  }
  const open = await request(`${s.url}/v1/skus/cup-1`, 'PUT', { stock: 5 });
  t.equal(open.status, 201, 'every image allowed: the sale is defined');
  const free = await request(`${s.url}/v1/skus/no-product`, 'PUT', { stock: 5 });
  t.equal(free.status, 201, 'a SKU that no product names is not gated');
  const gone = await addImage(s.url, 'ghost', 3);
  t.equal(gone.status, 404);
  t.equal(gone.body.error?.code, 'unknown_product');

  // Aggregation over several images, through the store: review wins over allow, block over all.
  const sha = (n: number) => n.toString(16).padStart(64, '0');
  const img = (n: number, verdict: 'allow' | 'review' | 'block') => ({
    sha256: sha(n),
    verdict,
    scores: { normal: 0.5, nsfw: 0.5 },
    model: 'm',
    moderatedAt: Date.now(),
  });
  t.match(await s.store.recordImageVerdict('cup', img(1, 'review')), { state: 'review' });
  const held = await request(`${s.url}/v1/skus/cup-1`, 'PUT', { perUserLimit: 1 });
  t.equal(held.status, 409, 'one image in review holds the sale');
  t.match(held.body.error.message, /'cup' is review \(images 0{12}…: review\)/);
  t.match(await s.store.recordImageVerdict('cup', img(2, 'block')), { state: 'blocked' });
  t.match(await s.store.recordImageVerdict('cup', img(2, 'allow')), { state: 'review' });
  t.match(await s.store.recordImageVerdict('cup', img(1, 'allow')), { state: 'allowed' });
  t.equal((await s.store.recordImageVerdict('ghost', img(1, 'allow'))).status, 'unknown_product');
});

t.test('review thresholds put the product in review', async (t) => {
  const s = await startCatalogServer(t, { modelDir: model.dir, moderation: REVIEW });
  if (!s) return;
  await request(`${s.url}/v1/products/vase`, 'PUT', { name: 'Vase' });
  const r = await addImage(s.url, 'vase', 4);
  t.match(r.body, { verdict: 'review', moderationState: 'review', version: 2 });
});

t.test('requireModeration off: products do not gate sales', async (t) => {
  const s = await startCatalogServer(t, {
    overrides: { products: { requireModeration: false } },
  });
  if (!s) return;
  await request(`${s.url}/v1/products/pen`, 'PUT', { name: 'Pen', sku: 'pen-1' });
  const r = await request(`${s.url}/v1/skus/pen-1`, 'PUT', { stock: 3 });
  t.equal(r.status, 201);
  // A named product must exist whether or not moderation gates the sale.
  const unknown = await request(`${s.url}/v1/skus/pen-2`, 'PUT', { stock: 3, productId: 'nope' });
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error?.code, 'unknown_product');
  const img = await addImage(s.url, 'pen', 1);
  t.equal(img.status, 404, 'products without moderation');
  t.equal(img.body.error?.code, 'feature_disabled');
  t.match(img.body.error?.message, /--moderation/);
});

t.test('gateway worker threads forward products and moderation to the main thread', async (t) => {
  const s = await startCatalogServer(t, {
    modelDir: model.dir,
    moderation: BLOCK,
    overrides: { gateway: { threads: 2, threadPorts: 'consecutive' } },
  });
  if (!s) return;
  const worker = `http://127.0.0.1:${s.ports[1]}`;
  const put = await request(`${worker}/v1/products/w1`, 'PUT', { name: 'W', sku: 'w-1' });
  t.equal(put.status, 201, 'PUT through the worker thread');
  const get = await request(`${s.url}/v1/products/w1`, 'GET');
  t.equal(get.body.name, 'W', 'read back through the main thread');
  const png = await noisePng(32, 32, 2);
  const m = await upload(`${worker}/v1/moderation/images`, png, 'image/png');
  t.equal(m.status, 200);
  t.equal(m.body.verdict, 'block');
  const bad = await upload(`${worker}/v1/moderation/images`, 'nope', 'image/png');
  t.equal(bad.body.error?.code, 'image_not_an_image', 'moderation errors cross threads');
  const pi = await upload(`${worker}/v1/products/w1/images`, png, 'image/png');
  t.equal(pi.body.moderationState, 'blocked');
  const gated = await request(`${worker}/v1/skus/w-1`, 'PUT', { stock: 1 });
  t.equal(gated.status, 409, 'the gate holds on the worker thread too');
  t.equal(gated.body.error.code, 'moderation_required');
  const wg = await request(`${worker}/v1/products/w1`, 'GET');
  t.equal(wg.body.moderationState, 'blocked');
  t.equal(
    s.audit.entries.filter((e) => e.kind === 'moderation').length,
    2,
    'verdicts from the worker thread are audited once each',
  );
});

t.test('without --products and --moderation the routes say so', async (t) => {
  const s = await startServer();
  t.teardown(() => s.close());
  // A feature this server runs without: a definite 404 saying how to turn it on, not a
  // retriable 503 a client would retry for ever.
  const get = await request(`${s.url}/v1/products/p`, 'GET');
  t.equal(get.status, 404);
  t.equal(get.body.error.code, 'feature_disabled');
  t.equal(get.body.error.retriable, false);
  t.match(get.body.error.message, /--products/);
  const put = await request(`${s.url}/v1/products/p`, 'PUT', { name: 'P' });
  t.equal(put.body.error.code, 'feature_disabled');
  const png = await noisePng(32, 32, 1);
  const m = await upload(`${s.url}/v1/moderation/images`, png, 'image/png');
  t.equal(m.status, 404);
  t.equal(m.body.error?.code, 'feature_disabled');
  const sku = await request(`${s.url}/v1/skus/s1`, 'PUT', { stock: 2 });
  t.equal(sku.status, 201, 'sales are not gated without products');
  const named = await request(`${s.url}/v1/skus/s2`, 'PUT', { stock: 2, productId: 'p' });
  t.equal(named.status, 404, 'a sale naming a product cannot be checked without products');
  t.equal(named.body.error?.code, 'feature_disabled');
});

t.test('uploads in progress are bounded by moderation.queueMax per gateway thread', async (t) => {
  const s = await startCatalogServer(t, { modelDir: model.dir, moderation: { queueMax: 1 } });
  if (!s) return;
  const url = `${s.url}/v1/moderation/images`;
  const png = await noisePng(32, 32, 7);
  // An upload that declares its size and then sends only half of it holds the one place.
  const { port } = new URL(s.url);
  const slow = connect({ host: '127.0.0.1', port: Number(port) });
  await once(slow, 'connect');
  slow.write(
    'POST /v1/moderation/images HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n' +
      `Content-Length: ${png.length}\r\n\r\n`,
  );
  slow.write(png.subarray(0, 10));
  // Poll the gateway's own count: the slow upload is admitted once uWS has read its headers.
  const deadline = Date.now() + 5000;
  let busy = await upload(url, png, 'image/png');
  while (busy.status === 200 && Date.now() < deadline) busy = await upload(url, png, 'image/png');
  t.equal(busy.status, 503, 'a second upload is refused while the first one is still arriving');
  t.equal(busy.body.error?.code, 'moderation_overloaded');
  slow.destroy();
  // The client that left gives its place back.
  let again = await upload(url, png, 'image/png');
  for (let i = 0; again.status === 503 && i < 50; i++) {
    await delay(20);
    again = await upload(url, png, 'image/png');
  }
  t.equal(again.status, 200, 'once the first client is gone, uploads are taken again');
});
