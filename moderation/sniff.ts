/**
 * Cheap checks on the main thread, before an image is queued: the byte limit, the declared
 * content type and the format told by the first bytes. They cost nanoseconds, so garbage never
 * takes a queue slot or a worker's time. The worker checks the format again from the parsed
 * header (sharp), so a file that fools this sniff still cannot reach a decoder we did not allow.
 */
import { ModerationError } from './errors.js';

export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** Formats the decoder must never be handed, named for the error message. */
type RefusedFormat = 'gif' | 'tiff' | 'svg' | 'bmp' | 'heif' | 'ico' | 'pdf' | 'jpeg2000' | 'jxl';

const SUPPORTED_TYPES: ReadonlyMap<string, ImageFormat> = new Map([
  ['image/jpeg', 'jpeg'],
  ['image/jpg', 'jpeg'],
  ['image/pjpeg', 'jpeg'],
  ['image/png', 'png'],
  ['image/webp', 'webp'],
]);

/** Declared types that say nothing about the format; the bytes decide. */
const UNTYPED = new Set(['', 'application/octet-stream', 'binary/octet-stream']);

/** The media type of a Content-Type header, lower case, without parameters. */
function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Whether an upload declared with this Content-Type may be moderated: a supported image type,
 * or one that says nothing (the bytes then decide). The gateway checks it before reading a body.
 */
export function acceptsContentType(contentType: string | undefined): boolean {
  const declared = mediaType(contentType);
  return SUPPORTED_TYPES.has(declared) || UNTYPED.has(declared);
}

function startsWith(b: Uint8Array, sig: readonly number[], at = 0): boolean {
  if (b.length < at + sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[at + i] !== sig[i]) return false;
  return true;
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));
const RIFF = ascii('RIFF');
const WEBP = ascii('WEBP');
const FTYP = ascii('ftyp');

/** Text formats (SVG) may start with a BOM, whitespace, an XML declaration or a comment. */
function looksLikeSvg(b: Uint8Array): boolean {
  const head = new TextDecoder('utf-8', { fatal: false }).decode(b.subarray(0, 1024));
  const text = head
    .replace(/^\uFEFF/, '')
    .trimStart()
    .toLowerCase();
  if (!text.startsWith('<')) return false;
  return text.includes('<svg');
}

/** The format the magic number says, a refused format, or null for "not an image we know". */
export function detectFormat(b: Uint8Array): ImageFormat | RefusedFormat | null {
  if (startsWith(b, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (startsWith(b, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'png';
  if (startsWith(b, RIFF) && startsWith(b, WEBP, 8)) return 'webp';
  if (startsWith(b, ascii('GIF8'))) return 'gif';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00])) return 'tiff';
  if (startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'tiff';
  if (startsWith(b, ascii('BM'))) return 'bmp';
  if (startsWith(b, FTYP, 4)) return 'heif';
  if (startsWith(b, [0x00, 0x00, 0x01, 0x00])) return 'ico';
  if (startsWith(b, ascii('%PDF'))) return 'pdf';
  if (startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x6a, 0x50, 0x20, 0x20])) return 'jpeg2000';
  if (startsWith(b, [0xff, 0x0a]) || startsWith(b, [0x00, 0x00, 0x00, 0x0c, 0x4a, 0x58, 0x4c])) {
    return 'jxl';
  }
  if (looksLikeSvg(b)) return 'svg';
  return null;
}

function isSupported(f: string): f is ImageFormat {
  return f === 'jpeg' || f === 'png' || f === 'webp';
}

/**
 * Checks an upload against the byte limit and its declared type; returns the detected format
 * or throws the `image_*` error the gateway should answer with.
 */
export function checkUpload(
  image: Uint8Array,
  contentType: string | undefined,
  maxBytes: number,
): ImageFormat {
  if (image.byteLength > maxBytes) {
    throw new ModerationError(
      'image_too_large',
      `image is ${image.byteLength} bytes; moderation.maxBytes is ${maxBytes}`,
    );
  }
  const declared = mediaType(contentType);
  const declaredFormat = SUPPORTED_TYPES.get(declared);
  if (declaredFormat === undefined && !UNTYPED.has(declared)) {
    throw new ModerationError(
      'image_unsupported_type',
      `content type '${declared}' is not supported; send image/jpeg, image/png or image/webp`,
    );
  }
  if (image.byteLength === 0) throw new ModerationError('image_not_an_image', 'image is empty');
  const detected = detectFormat(image);
  if (detected === null) {
    throw new ModerationError('image_not_an_image', 'bytes are not a JPEG, PNG or WebP image');
  }
  if (!isSupported(detected)) {
    throw new ModerationError(
      'image_unsupported_type',
      `image is ${detected.toUpperCase()}; only JPEG, PNG and WebP are accepted`,
    );
  }
  if (declaredFormat !== undefined && declaredFormat !== detected) {
    throw new ModerationError(
      'image_type_mismatch',
      `content type '${declared}' was declared but the bytes are ${detected.toUpperCase()}`,
    );
  }
  return detected;
}
