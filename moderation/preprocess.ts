/**
 * Image bytes → one normalized `[3, H, W]` float slice of the model's NCHW input, with sharp.
 * It runs inside the pool's workers (see `moderator.ts` for why there), never on the gateway
 * thread. sharp itself decodes on libuv's thread pool, so the images of one batch decode in
 * parallel while the worker awaits them.
 *
 * Defences, in order: the header is parsed first (`metadata()`, no pixel decoding) and its
 * format and pixel count are checked, so a 100 000 × 100 000 "decompression bomb" is refused
 * before a byte of it is inflated; `limitInputPixels` repeats the limit inside libvips; and
 * `failOn: 'error'` makes truncated or corrupt pixel data an error instead of grey padding.
 * `'error'` rather than sharp's default `'warning'` because phone cameras routinely write JPEGs
 * with harmless warnings ("extraneous bytes before marker") that sellers cannot fix.
 */
import sharp from 'sharp';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { ModerationError } from './errors.js';
import type { PreprocessSpec } from './model-dir.js';

/** Per channel, the normalized float for each byte value: 768 entries, built once per spec. */
export function normalizationTable(spec: PreprocessSpec): Float32Array {
  const lut = new Float32Array(3 * 256);
  for (let c = 0; c < 3; c++) {
    for (let v = 0; v < 256; v++) {
      lut[c * 256 + v] = (v * spec.rescaleFactor - spec.mean[c]) / spec.std[c];
    }
  }
  return lut;
}

/** True when the container says more bytes should follow than we have. */
function looksCutShort(b: Uint8Array): boolean {
  if (b[0] === 0x52 && b.length >= 12) {
    // WebP: RIFF size at bytes 4..8 counts everything after the first 8 bytes.
    const riffSize = b[4] | (b[5] << 8) | (b[6] << 16) | (b[7] << 24);
    return b.length < (riffSize >>> 0) + 8;
  }
  const tail = b.subarray(Math.max(0, b.length - 64));
  if (b[0] === 0x89) return !Buffer.from(tail).includes('IEND');
  if (b[0] === 0xff) return !Buffer.from(tail).includes(Buffer.from([0xff, 0xd9]));
  return false;
}

function headerError(bytes: Uint8Array, err: unknown): ModerationError {
  const message = (err as Error).message ?? String(err);
  // Decoders say "premature end" for garbage too, so the container's own length decides.
  const detail = firstLine(message);
  if (looksCutShort(bytes)) {
    const why = `image data ends early: ${detail}`;
    return new ModerationError('image_truncated', why, { cause: err });
  }
  return new ModerationError('image_not_an_image', `cannot parse image: ${detail}`, { cause: err });
}

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}

const ALLOWED = new Set(['jpeg', 'png', 'webp']);

/** Reads the header only, and refuses what must not be decoded. */
/** The longest side accepted, whatever `moderation.maxPixels` allows in area. */
export const SIDE_PIXELS_MAX = 16_384;

async function checkHeader(bytes: Uint8Array, maxPixels: number): Promise<Metadata> {
  let meta: Metadata;
  try {
    // limitInputPixels: false here so an oversized header reaches our own, clearer check.
    meta = await sharp(bytes, { failOn: 'error', limitInputPixels: false }).metadata();
  } catch (err) {
    throw headerError(bytes, err);
  }
  if (!meta.format || !ALLOWED.has(meta.format)) {
    const format = meta.format ?? 'an unknown format';
    throw new ModerationError(
      'image_unsupported_type',
      `image is ${format}; only JPEG, PNG and WebP are accepted`,
    );
  }
  const { width, height } = meta;
  if (!width || !height) {
    throw new ModerationError('image_not_an_image', 'image header has no dimensions');
  }
  // A very long thin image costs far more to decode than its pixel count says (libvips works
  // row by row): 1×25,000,000 took ~3 s here, 5000×5000 26 ms. No product photo is that shape.
  if (width > SIDE_PIXELS_MAX || height > SIDE_PIXELS_MAX) {
    throw new ModerationError(
      'image_too_many_pixels',
      `image is ${width}×${height}; neither side may pass ${SIDE_PIXELS_MAX} pixels`,
    );
  }
  if (width * height > maxPixels) {
    throw new ModerationError(
      'image_too_many_pixels',
      `image is ${width}×${height} = ${width * height} pixels; ` +
        `moderation.maxPixels is ${maxPixels}`,
    );
  }
  return meta;
}

/** Builds the resize (and crop) for the image's displayed, i.e. EXIF-rotated, size. */
function geometry(pipeline: Sharp, spec: PreprocessSpec, meta: Metadata): Sharp {
  let w = spec.resizeWidth;
  let h = spec.resizeHeight;
  if (spec.resizeMode === 'shortest_edge') {
    // autoOrient holds the dimensions after the EXIF rotation; HF truncates the long side.
    const ow = meta.autoOrient?.width ?? meta.width;
    const oh = meta.autoOrient?.height ?? meta.height;
    const s = spec.shortestEdge;
    w = ow <= oh ? s : Math.max(s, Math.trunc((s * ow) / oh));
    h = ow <= oh ? Math.max(s, Math.trunc((s * oh) / ow)) : s;
  }
  let out = pipeline.resize(w, h, { fit: 'fill', kernel: spec.kernel });
  if (spec.crop) {
    const { width: cw, height: ch } = spec.crop;
    if (cw > w || ch > h) {
      // Smaller than the crop: stretch instead, as the model needs exactly this size.
      return pipeline.resize(cw, ch, { fit: 'fill', kernel: spec.kernel });
    }
    const left = Math.trunc((w - cw) / 2);
    const top = Math.trunc((h - ch) / 2);
    out = out.extract({ left, top, width: cw, height: ch });
  }
  return out;
}

/** Decodes to `spec.width × spec.height` interleaved 8-bit RGB. */
export async function decodeRgb(
  bytes: Uint8Array,
  spec: PreprocessSpec,
  maxPixels: number,
): Promise<Buffer> {
  const meta = await checkHeader(bytes, maxPixels);
  const options = { failOn: 'error', limitInputPixels: maxPixels, sequentialRead: true } as const;
  const pipeline = sharp(bytes, options)
    .rotate() // honour EXIF orientation before anything looks at width and height
    .flatten({ background: '#ffffff' }); // alpha composited on white, as HF's convert_rgb does
  let data: Buffer;
  let info: OutputInfo;
  try {
    ({ data, info } = await geometry(pipeline, spec, meta)
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true }));
  } catch (err) {
    // The header parsed, so a failure now is in the pixel data: cut short or corrupt.
    const message = firstLine((err as Error).message ?? String(err));
    const why = `image data is truncated or corrupt: ${message}`;
    throw new ModerationError('image_truncated', why, { cause: err });
  }
  if (info.channels !== 3 || info.width !== spec.width || info.height !== spec.height) {
    const got = `${info.width}×${info.height}×${info.channels}`;
    throw new Error(`preprocess produced ${got}, expected ${spec.width}×${spec.height}×3`);
  }
  return data;
}

/** Writes one image as planar, normalized floats at `out[offset .. offset + 3·H·W)`. */
export function writeNormalized(
  rgb: Uint8Array,
  lut: Float32Array,
  out: Float32Array,
  offset: number,
): void {
  const plane = rgb.length / 3;
  const g = offset + plane;
  const b = g + plane;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[offset + i] = lut[rgb[p]];
    out[g + i] = lut[256 + rgb[p + 1]];
    out[b + i] = lut[512 + rgb[p + 2]];
  }
}

/** One image → a fresh `[3, H, W]` Float32Array; for tests, the benchmark and single use. */
export async function preprocessImage(
  bytes: Uint8Array,
  spec: PreprocessSpec,
  maxPixels: number,
): Promise<Float32Array> {
  const rgb = await decodeRgb(bytes, spec, maxPixels);
  const out = new Float32Array(3 * spec.width * spec.height);
  writeNormalized(rgb, normalizationTable(spec), out, 0);
  return out;
}
