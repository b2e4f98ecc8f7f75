// Every kind of bad upload gets its own code and a 4xx status, whether it is caught by the
// main-thread sniff or by the worker's header check; and a bad image in a batch does not take
// the good ones down with it.
import t from 'tap';
import { crc32 } from 'node:zlib';
import { checkUpload, createModerator, isModerationError } from '../../moderation/index.js';
import { noiseJpeg, noisePng, noiseRgb, rawImage, solid, solidPng } from './helpers.js';
import { testSettings, tinyModel } from './helpers.js';

/** Rewrites a PNG's IHDR width and height (and its CRC): a header that promises a bomb. */
function pngWithHeader(png: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(png);
  out.writeUInt32BE(width, 16);
  out.writeUInt32BE(height, 20);
  out.writeUInt32BE(crc32(out.subarray(12, 29)), 29);
  return out;
}

/** Rewrites a baseline JPEG's SOF0 dimensions. */
function jpegWithHeader(jpeg: Buffer, width: number, height: number): Buffer {
  const out = Buffer.from(jpeg);
  const sof = out.indexOf(Buffer.from([0xff, 0xc0]));
  out.writeUInt16BE(height, sof + 5);
  out.writeUInt16BE(width, sof + 7);
  return out;
}

const SVG = Buffer.from(
  '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
);

t.test('the main-thread sniff: size, declared type and magic number', async (t) => {
  const png = await noisePng(8, 8);
  const gif = await solid(4, 4, [255, 0, 0]).gif().toBuffer();
  const tiff = await solid(4, 4, [255, 0, 0]).tiff().toBuffer();
  const octets = 'application/octet-stream';
  const cases: [string, () => unknown, string][] = [
    ['too large', () => checkUpload(png, 'image/png', png.length - 1), 'image_too_large'],
    ['empty', () => checkUpload(new Uint8Array(0), undefined, 100), 'image_not_an_image'],
    ['text', () => checkUpload(Buffer.from('hello, world'), undefined, 100), 'image_not_an_image'],
    ['GIF detected', () => checkUpload(gif, undefined, 1e6), 'image_unsupported_type'],
    ['TIFF detected', () => checkUpload(tiff, octets, 1e6), 'image_unsupported_type'],
    ['SVG detected', () => checkUpload(SVG, undefined, 1e6), 'image_unsupported_type'],
    ['GIF declared', () => checkUpload(png, 'image/gif', 1e6), 'image_unsupported_type'],
    ['SVG declared', () => checkUpload(png, 'image/svg+xml', 1e6), 'image_unsupported_type'],
    ['not an image declared', () => checkUpload(png, 'text/plain', 1e6), 'image_unsupported_type'],
    ['mismatch', () => checkUpload(png, 'image/jpeg', 1e6), 'image_type_mismatch'],
  ];
  for (const [name, fn, code] of cases) {
    t.throws(fn, { code }, name);
    try {
      fn();
    } catch (err) {
      t.ok(isModerationError(err) && err.http >= 400 && err.http < 500, `${name}: 4xx`);
    }
  }
  const loud = 'IMAGE/PNG; charset=binary';
  t.equal(checkUpload(png, loud, 1e6), 'png', 'parameters and case are ignored');
  t.equal(checkUpload(png, undefined, 1e6), 'png', 'no declared type: the bytes decide');
});

t.test('through the pool: every bad input is rejected with its code', async (t) => {
  const m = tinyModel();
  t.teardown(m.cleanup);
  const settings = testSettings(m.dir, { maxBytes: 200_000, maxPixels: 250_000 });
  const moderator = await createModerator(settings);
  t.teardown(() => moderator.close());
  const jpeg = await noiseJpeg(200, 150);
  const png = await noisePng(200, 150);
  const webp = await rawImage(noiseRgb(200, 150), 200, 150).webp().toBuffer();
  const jpegGarbage = Buffer.concat([
    Buffer.from([0xff, 0xd8, 0xff, 0xe0]),
    Buffer.alloc(300, 7),
    Buffer.from([0xff, 0xd9]),
  ]);
  const pixels = 'image_too_many_pixels';
  const cut = (b: Buffer, f = 0.6) => b.subarray(0, Math.floor(b.length * f));
  const cases: [string, Uint8Array, string | undefined, string][] = [
    ['truncated JPEG', cut(jpeg), 'image/jpeg', 'image_truncated'],
    ['truncated PNG', cut(png), 'image/png', 'image_truncated'],
    ['truncated WebP', cut(webp), 'image/webp', 'image_truncated'],
    ['JPEG cut inside its header', cut(jpeg, 0.002), undefined, 'image_truncated'],
    ['PNG header saying 100000×100000', pngWithHeader(png, 100_000, 100_000), undefined, pixels],
    ['JPEG header saying 60000×60000', jpegWithHeader(jpeg, 60_000, 60_000), undefined, pixels],
    ['honestly too many pixels', await solidPng(600, 500, [9, 9, 9]), undefined, pixels],
    // A long thin image: few pixels in all, but each side is capped (its decode is slow).
    ['a side of 16,385 pixels', await solidPng(1, 16_385, [9, 9, 9]), undefined, pixels],
    ['too many bytes', Buffer.concat([png, Buffer.alloc(200_000)]), undefined, 'image_too_large'],
    ['JPEG magic, garbage, end marker', jpegGarbage, undefined, 'image_not_an_image'],
    ['SVG', SVG, 'image/svg+xml', 'image_unsupported_type'],
    ['random bytes', Buffer.alloc(500, 0x41), undefined, 'image_not_an_image'],
  ];
  for (const [name, bytes, contentType, code] of cases) {
    const want = { code, name: 'ModerationError' };
    await t.rejects(moderator.classify(bytes, { contentType }), want, name);
  }
  const ok = await moderator.classify(jpeg, { contentType: 'image/jpeg' });
  t.ok(['allow', 'review', 'block'].includes(ok.verdict), 'the pool still answers after all that');
  const s = moderator.stats();
  t.equal(s.completed, 1);
  t.equal(s.rejected + s.failed, cases.length, 'each bad input counted once');
});

t.test('a bad image in a batch fails alone', async (t) => {
  const m = tinyModel();
  t.teardown(m.cleanup);
  const settings = testSettings(m.dir, { batchSizeMax: 4, batchWaitMs: 10_000 });
  const moderator = await createModerator(settings);
  t.teardown(() => moderator.close());
  const good = await noisePng(40, 40, 3);
  const bad = (await noisePng(40, 40, 4)).subarray(0, 400);
  const all = [good, bad, good, good].map((b) => moderator.classify(b));
  const settled = await Promise.allSettled(all);
  t.same(
    settled.map((s) => s.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  const { reason } = settled[1] as PromiseRejectedResult;
  t.match(reason, { code: 'image_truncated', http: 422 });
  t.same(moderator.stats().batchSizeCounts[3], 1, 'one run carried the three good images');
});

t.test('close() does not wait for ever on a batch a worker never answers', async (t) => {
  const m = tinyModel();
  t.teardown(m.cleanup);
  const moderator = await createModerator(testSettings(m.dir, { taskTimeoutMs: 300 }));
  // A worker stuck in native code, as seen from the moderator: its batch never settles.
  const pool = (moderator as unknown as { pool: { run: (task: unknown) => Promise<unknown> } })
    .pool;
  pool.run = () => new Promise(() => {});
  await t.rejects(moderator.classify(await noisePng(40, 40)), { code: 'moderation_timeout' });
  const started = performance.now();
  await moderator.close();
  const ms = performance.now() - started;
  t.ok(ms < 5_000, `close() ended after ${Math.round(ms)} ms (taskTimeoutMs + 1 s at most)`);
});
